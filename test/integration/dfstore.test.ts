// dfstore against s3rver (in-process): the cases of helpers/dfstore-cases.ts.

import { dfstoreCases } from '../helpers/dfstore-cases.js';
import { S3rverStore } from '../helpers/s3rver.js';

dfstoreCases(new S3rverStore('models'));
