// s3:// against MinIO (scripts/install-object-stores.sh): the cases every object storage scheme passes, on the
// S3 server most self-hosted stores run.

import { objectStoreCases } from '../helpers/object-store-cases.js';
import { MinioStore } from '../helpers/minio.js';

objectStoreCases(new MinioStore('models'));
