// gs:// against fake-gcs-server (scripts/install-object-stores.sh): the cases every object storage scheme passes.

import { objectStoreCases } from '../helpers/object-store-cases.js';
import { FakeGcsStore } from '../helpers/fake-gcs.js';

objectStoreCases(new FakeGcsStore('datasets'));
