// abs:// against Azurite (scripts/install-object-stores.sh): the cases every object storage scheme passes.

import { objectStoreCases } from '../helpers/object-store-cases.js';
import { AzuriteStore } from '../helpers/azurite.js';

objectStoreCases(new AzuriteStore('checkpoints'));
