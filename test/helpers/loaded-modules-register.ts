// `node --import THIS_FILE program.js`: records the modules the program loads into $LOADED_MODULES_OUT (see
// loaded-modules-hook.ts).

import { register } from 'node:module';

const out = process.env.LOADED_MODULES_OUT;
if (!out) throw new Error('LOADED_MODULES_OUT is not set: the file to record loaded modules in');
register('./loaded-modules-hook.js', import.meta.url, { data: { out } });
