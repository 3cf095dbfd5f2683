// dfstore against MinIO (scripts/install-object-stores.sh), which checks SigV4 signatures and multipart uploads as
// AWS does: the cases of helpers/dfstore-cases.ts.

import { dfstoreCases } from '../helpers/dfstore-cases.js';
import { MinioStore } from '../helpers/minio.js';

dfstoreCases(new MinioStore('models'));
