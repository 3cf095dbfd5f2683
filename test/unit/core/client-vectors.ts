// Loads the upstream known-answer vectors kept as the project's test data (test/data/client-vectors.json),
// resolved from the compiled test's location: dist/test/unit/core/ → the repo's test/data/.

import { readFileSync } from 'node:fs';

const VECTORS_URL = new URL('../../../../test/data/client-vectors.json', import.meta.url);

// The file is asserted as it stands; tests index into it by the section names it uses.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Vectors = Record<string, any>;

export function loadClientVectors(): Vectors {
  return JSON.parse(readFileSync(VECTORS_URL, 'utf8')) as Vectors;
}

/** One entry of a section, shaped as the file has it. */
export type VectorEntry = Vectors[string];
