// Loads ../shared/reference/vortex/vectors.json at run time (never copied into the project), resolved from the
// compiled test's location: dist/test/unit/vortex/ → the directory that holds the repo.

import { readFileSync } from 'node:fs';

const VECTORS_URL = new URL('../../../../../shared/reference/vortex/vectors.json', import.meta.url);

// The file is asserted as it stands; tests index into it by the names it uses.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type VortexVectors = Record<string, any>;

export function loadVortexVectors(): VortexVectors {
  return JSON.parse(readFileSync(VECTORS_URL, 'utf8')) as VortexVectors;
}
