// Loads the Vortex known-answer vectors kept as the project's test data (test/data/vortex-vectors.json),
// resolved from the compiled test's location: dist/test/unit/vortex/ → the repo's test/data/.

import { readFileSync } from 'node:fs';

const VECTORS_URL = new URL('../../../../test/data/vortex-vectors.json', import.meta.url);

// The file is asserted as it stands; tests index into it by the names it uses.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type VortexVectors = Record<string, any>;

export function loadVortexVectors(): VortexVectors {
  return JSON.parse(readFileSync(VECTORS_URL, 'utf8')) as VortexVectors;
}
