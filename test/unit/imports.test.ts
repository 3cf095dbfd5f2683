// The import graph of src/ (every import, export-from, `import type` and literal `import()`; src/gen left out):
// no cycles, and imports point down the layers of the design (docs/design.md, "Layout").

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { isRelative, listFiles, moduleImports, REPO_ROOT } from '../helpers/module-imports.js';

const SRC = join(REPO_ROOT, 'src');

/**
 * The top-level directories of src/, highest layer first. A module may import its own directory and any directory
 * of a lower layer; never a directory of its own layer (sideways) or of a higher one. A new directory must be put
 * in a layer here.
 * - design: `cli` → `daemon`/`proxy` → `scheduler`/`vortex`/`backend`/`storage` → `config` → `core`.
 * - `init` (dfinit's runtime config files) is only used by cli/dfinit.ts and uses config and core: beside daemon
 *   and proxy, a part that one binary drives.
 * - `grpc` (gRPC server helpers) is used by the daemon and by the embedded scheduler and uses core only: below the
 *   parts that serve gRPC, above config.
 * - `http-client` (undici's agent without undici's index) is used by the backends, the proxy and the embedded
 *   scheduler and uses nothing of ours: beside grpc.
 */
const LAYERS: readonly (readonly string[])[] = [
  ['cli'],
  ['daemon', 'proxy', 'init'],
  ['scheduler', 'vortex', 'backend', 'storage'],
  ['grpc', 'http-client'],
  ['config'],
  ['core'],
];

/** Generated code: anyone but core (which imports nothing of ours) may import it. */
const GEN = 'gen';

/** "Only daemon/dfdaemon.ts knows every part" (design): the composition root may import any layer below cli. */
const COMPOSITION_ROOT = 'daemon/dfdaemon.ts';

/**
 * Imports that break the layer rule today, listed so that they are seen, not allowed in general: the test fails on
 * any other, and on an entry here that no longer occurs (delete it then).
 */
const KNOWN_LAYER_VIOLATIONS: readonly string[] = [
  // daemon and proxy share a layer; the daemon implements the proxy's P2PDownloader port (type import).
  'daemon/proxy-downloads.ts -> proxy/p2p.ts',
  // vortex and storage share a layer; the piece server reads pieces through Storage (type import).
  'vortex/piece-server.ts -> storage/storage.ts',
];

/**
 * Import cycles allowed for now (none). Each entry is one cycle, exactly: any other cycle fails, and so does an
 * entry that is no longer a cycle.
 */
const KNOWN_CYCLES: readonly (readonly string[])[] = [];

interface Edge {
  from: string;
  to: string;
  line: number;
}

/** The modules of src/ (paths relative to src/, '/' separators) and the edges between them. */
function loadGraph(): { files: string[]; edges: Edge[]; unresolved: string[] } {
  const files = listFiles(SRC, '.ts', [GEN]);
  const edges: Edge[] = [];
  const unresolved: string[] = [];
  for (const file of files) {
    for (const imp of moduleImports(file, readFileSync(join(SRC, file), 'utf8'))) {
      if (!isRelative(imp.specifier)) continue;
      const target = posix.normalize(posix.join(posix.dirname(file), imp.specifier));
      // NodeNext: './x.js' is the compiled name of './x.ts'.
      const candidates = [target.replace(/\.js$/, '.ts'), target, `${target}.ts`, `${target}/index.ts`];
      const to = candidates.find(
        (c) => !c.startsWith('../') && existsSync(join(SRC, c)) && c.endsWith('.ts'),
      );
      if (to === undefined) unresolved.push(`${file}:${imp.line} '${imp.specifier}'`);
      else edges.push({ from: file, to, line: imp.line });
    }
  }
  return { files, edges, unresolved };
}

const topDir = (file: string): string => (file.includes('/') ? file.slice(0, file.indexOf('/')) : '');
const layerOf = (dir: string): number => LAYERS.findIndex((l) => l.includes(dir));

/** Why an import breaks the layer rule, or undefined when it does not. */
function layerViolation(from: string, to: string): string | undefined {
  const a = topDir(from);
  const b = topDir(to);
  if (a === b) return undefined;
  if (b === GEN) return a === 'core' ? 'core imports nothing of ours' : undefined;
  const la = layerOf(a);
  const lb = layerOf(b);
  if (la < 0 || lb < 0) return `src/${la < 0 ? a : b}/ is in no layer of LAYERS`;
  if (from === COMPOSITION_ROOT && lb > 0) return undefined;
  if (lb > la) return undefined;
  return lb === la ? `sideways: ${a} and ${b} share a layer` : `up: ${b} is above ${a}`;
}

/** The cycles of a graph: for every edge that lies on one, the shortest cycle through it (rotated, deduplicated). */
function findCycles(
  nodes: readonly string[],
  edges: ReadonlyArray<{ from: string; to: string }>,
): string[][] {
  const next = new Map<string, string[]>(nodes.map((n) => [n, []]));
  for (const e of edges) next.get(e.from)?.push(e.to);
  // Tarjan's strongly connected components: an edge lies on a cycle iff both ends are in one component.
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const component = new Map<string, number>();
  const stack: string[] = [];
  let counter = 0;
  let components = 0;
  const strongConnect = (v: string): void => {
    index.set(v, counter);
    low.set(v, counter);
    counter++;
    stack.push(v);
    for (const w of next.get(v) ?? []) {
      if (!index.has(w)) {
        strongConnect(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (!component.has(w)) {
        low.set(v, Math.min(low.get(v)!, index.get(w)!));
      }
    }
    if (low.get(v) === index.get(v)) {
      let w: string;
      do {
        w = stack.pop()!;
        component.set(w, components);
      } while (w !== v);
      components++;
    }
  };
  for (const n of nodes) if (!index.has(n)) strongConnect(n);

  const cycles = new Map<string, string[]>();
  for (const { from, to } of edges) {
    if (component.get(from) === undefined || component.get(from) !== component.get(to)) continue;
    // Breadth-first from `to` back to `from`, inside the component.
    const prev = new Map<string, string>([[to, to]]);
    const queue = [to];
    while (queue.length > 0 && !prev.has(from)) {
      const v = queue.shift()!;
      for (const w of next.get(v) ?? []) {
        if (!prev.has(w) && component.get(w) === component.get(from)) {
          prev.set(w, v);
          queue.push(w);
        }
      }
    }
    const path = [from];
    for (let v = from; v !== to; v = prev.get(v)!) path.push(prev.get(v)!);
    // path is from ← … ← to backwards: the cycle is from → to → … → from.
    const cycle = [from, ...path.slice(1).reverse()];
    const c = canonical(cycle);
    cycles.set(c.join(' -> '), c);
  }
  return [...cycles.values()];
}

/** A cycle rotated to start at its smallest node, so that one cycle has one spelling. */
function canonical(cycle: readonly string[]): string[] {
  let best = 0;
  for (let i = 1; i < cycle.length; i++) if (cycle[i]! < cycle[best]!) best = i;
  return [...cycle.slice(best), ...cycle.slice(0, best)];
}

const spell = (cycle: readonly string[]): string => [...cycle, cycle[0]].join(' -> ');

test('the import parser sees every form of import and nothing in comments or strings', () => {
  const text = [
    "import a from './a.js';",
    "import type { B } from './b.js';",
    "import { type C } from './c.js';",
    "import './d.js';",
    "export * from './e.js';",
    "export type { F } from './f.js';",
    "const g = await import('./g.js');",
    "type H = typeof import('./h.js');",
    "import i = require('./i.js');",
    "// import x from './comment.js';",
    'const s = "import y from \'./string.js\'";',
    "const t = `export * from './template.js'`;",
    "const j = require('./j.js');",
  ].join('\n');
  assert.deepEqual(
    moduleImports('x.ts', text).map((i) => `${i.line} ${i.kind} ${i.specifier}`),
    [
      '1 static ./a.js',
      '2 type ./b.js',
      '3 type ./c.js',
      '4 static ./d.js',
      '5 static ./e.js',
      '6 type ./f.js',
      '7 dynamic ./g.js',
      '8 type ./h.js',
      '9 static ./i.js',
      '13 dynamic ./j.js',
    ],
  );
});

test('cycles: one per edge on a cycle, shortest, each spelled once', () => {
  const edges = (s: string) => s.split(' ').map((e) => ({ from: e[0]!, to: e[1]! }));
  assert.deepEqual(findCycles(['a', 'b', 'c'], edges('ab bc')), []);
  assert.deepEqual(findCycles(['a', 'b'], edges('ab ba')), [['a', 'b']]);
  assert.deepEqual(findCycles(['a'], edges('aa')), [['a']]);
  assert.deepEqual(
    findCycles(['a', 'b', 'c', 'd'], edges('ab ba bc cd db')).map((c) => c.join('')),
    ['ab', 'bcd'],
  );
});

test('src/ is found from the compiled test, and every relative import resolves to a file of src/', () => {
  const { files, edges, unresolved } = loadGraph();
  assert.ok(files.length > 50, `only ${files.length} modules under ${SRC}`);
  assert.ok(files.includes('cli/dfdaemon.ts'));
  assert.ok(edges.length > files.length);
  assert.deepEqual(unresolved, [], `imports that name no module of src/:\n  ${unresolved.join('\n  ')}`);
});

test(`no import cycles in src/ (besides KNOWN_CYCLES: ${KNOWN_CYCLES.length})`, () => {
  const { files, edges } = loadGraph();
  const found = findCycles(files, edges).map(spell);
  const known = KNOWN_CYCLES.map((c) => spell(canonical(c)));
  const unexpected = found.filter((c) => !known.includes(c));
  const gone = known.filter((c) => !found.includes(c));
  assert.deepEqual(
    unexpected,
    [],
    `import cycles (type imports count; move shared types to a module of their own):\n  ${unexpected.join('\n  ')}`,
  );
  assert.deepEqual(gone, [], `no longer cycles; delete them from KNOWN_CYCLES:\n  ${gone.join('\n  ')}`);
});

test('imports point down the layers: cli → daemon/proxy/init → scheduler/vortex/backend/storage → grpc → config → core', () => {
  const { edges } = loadGraph();
  const violations = new Map<string, string>();
  for (const e of edges) {
    const why = layerViolation(e.from, e.to);
    const key = `${e.from} -> ${e.to}`;
    if (why !== undefined && !violations.has(key))
      violations.set(key, `${e.from}:${e.line} -> ${e.to} (${why})`);
  }
  const unexpected = [...violations].filter(([k]) => !KNOWN_LAYER_VIOLATIONS.includes(k)).map(([, v]) => v);
  const gone = KNOWN_LAYER_VIOLATIONS.filter((k) => !violations.has(k));
  assert.deepEqual(unexpected, [], `imports against the layers:\n  ${unexpected.join('\n  ')}`);
  assert.deepEqual(
    gone,
    [],
    `no longer imported; delete them from KNOWN_LAYER_VIOLATIONS:\n  ${gone.join('\n  ')}`,
  );
});

test('the layer rule itself', () => {
  assert.equal(layerViolation('cli/dfget.ts', 'daemon/x.ts'), undefined);
  assert.equal(layerViolation('daemon/a.ts', 'daemon/grpc/b.ts'), undefined);
  assert.equal(layerViolation('scheduler/a.ts', 'gen/scheduler.ts'), undefined);
  assert.equal(layerViolation('daemon/dfdaemon.ts', 'proxy/server.ts'), undefined);
  assert.match(layerViolation('core/a.ts', 'gen/common.ts')!, /core imports nothing/);
  assert.match(layerViolation('core/a.ts', 'config/b.ts')!, /^up/);
  assert.match(layerViolation('storage/a.ts', 'daemon/b.ts')!, /^up/);
  assert.match(layerViolation('daemon/gc.ts', 'proxy/server.ts')!, /^sideways/);
  assert.match(layerViolation('backend/a.ts', 'vortex/b.ts')!, /^sideways/);
  assert.match(layerViolation('newdir/a.ts', 'core/b.ts')!, /in no layer/);
});
