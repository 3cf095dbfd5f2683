// A module loader hook (node:module register) that appends the URL of every module Node loads through its ESM
// loader to a file: our own modules, and each package's entry (a CommonJS package's own require() calls are not
// seen in Node 20, its entry is). Installed by loaded-modules-register.ts; read by loaded-modules.ts.

import { appendFileSync } from 'node:fs';
import type { InitializeHook, LoadHook } from 'node:module';

let out = '';

export const initialize: InitializeHook<{ out: string }> = (data) => {
  out = data.out;
};

export const load: LoadHook = (url, context, next) => {
  appendFileSync(out, `${url}\n`);
  return next(url, context);
};
