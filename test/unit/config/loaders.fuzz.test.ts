// Fuzz of the config loaders (dfdaemon.yaml, dfinit.yaml, scheduler.yaml, dynconfig.yaml): arbitrary YAML
// documents, YAML text mutated byte by byte and with YAML's own hazards (anchors, tags, merge keys, deep nesting),
// and valid configs with one value replaced or one key added. Each load gives a config, or one DfError
// INVALID_CONFIG on one line; a replaced value that is refused is named in the error (its key or its section); an
// added key is a warning naming it. Never another exception type, never a hang.
// Input counts: test/helpers/fuzz.ts (FUZZ_RUNS, FUZZ_SEED), docs/security.md "Fuzzing".

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { isMap, parseDocument, stringify } from 'yaml';
import { SYSTEM_DIRS } from '../../../src/config/dirs.js';
import { parseDfinitConfig } from '../../../src/config/dfinit.js';
import { parseLocalDynconfig } from '../../../src/config/dynconfig.js';
import { loadDfdaemonConfig, parseDfdaemonConfig } from '../../../src/config/load.js';
import { joinKey } from '../../../src/config/schema-kit.js';
import { DfError } from '../../../src/core/errors.js';
import { parseSchedulerConfig } from '../../../src/scheduler/embedded/config.js';
import { fuzzParameters, fuzzRuns, hostileString, mutatedBytes } from '../../helpers/fuzz.js';

/** CI input counts of each loader (times FUZZ_RUNS): documents, texts, replaced values, added keys. */
interface Runs {
  documents: number;
  texts: number;
  replaced: number;
  added: number;
}
/** dfdaemon.yaml builds its schema per load (~12 ms); the others load in ~2 ms. */
const RUNS_DFDAEMON: Runs = { documents: 120, texts: 120, replaced: 200, added: 60 };
const RUNS_OTHERS: Runs = { documents: 250, texts: 250, replaced: 300, added: 100 };

/** A single load may take this long (the 70 000-character strings included); longer is a hang. */
const LOAD_BOUND_MS = 3_000;

type Parse = (text: string) => { config: unknown; warnings: string[] };

interface Loader {
  name: string;
  parse: Parse;
  runs: Runs;
  /** Valid documents the structure-aware mutations start from. */
  seeds: string[];
}

const dirs = { ...SYSTEM_DIRS };

const DFDAEMON_FULL = `
host:
  ip: 10.0.0.5
  hostname: node-1
server:
  adaptiveRateLimit:
    cpuThreshold: 100
    memoryThreshold: 90
    collectInterval: 3s
    shedCooldown: 5s
    bucketCount: 50
    bucketInterval: 200ms
download:
  server:
    socketPath: /var/run/dragonfly/dfdaemon.sock
    requestRateLimit: 400
    requestBufferSize: 50
    transferBufferSize: 8MiB
  concurrentPieceCount: 8
  pieceTimeout: 360s
  bandwidthLimit: 50GB
  backToSourceBandwidthLimit: 50GB
storage:
  dir: /var/lib/dragonfly
  keep: true
  writeBufferSize: 512KiB
  readBufferSize: 512KiB
  server: { ip: 0.0.0.0, tcpPort: 4005, maxConnections: 2048 }
backend:
  maxRetries: 1
  requestHeader: { X-Auth: secret }
  enableCacheTemporaryRedirect: true
  cacheTemporaryRedirectTTL: 10m
upload:
  server: { ip: 0.0.0.0, port: 4000, requestRateLimit: 400, requestBufferSize: 50, maxConnections: 1024 }
  bandwidthLimit: 50GB
manager:
  addr: http://manager.local:65003
scheduler:
  announceInterval: 300s
  scheduleTimeout: 3h
  maxScheduleCount: 5
seedPeer:
  enable: false
  type: super
dynconfig:
  refreshInterval: 1m
gc:
  interval: 900s
  policy:
    taskTTL: 30d
    diskThreshold: 0
    diskHighThresholdPercent: 80
    diskLowThresholdPercent: 60
proxy:
  server:
    ip: 127.0.0.1
    port: 4001
    requestRateLimit: 4000
    maxConnections: 2048
    basicAuth: { username: u, password: p }
  rules:
    - regex: 'blobs/sha256.*'
    - regex: 'p2p/.*'
      useTLS: true
      redirect: mirror.local:5000
      filteredQueryParams: [X-Amz-Signature]
  registryMirror:
    addr: https://index.docker.io
    enableTaskIDBasedBlobDigest: false
  disableBackToSource: false
  prefetch: false
  prefetchBandwidthLimit: 10GB
embeddedScheduler:
  ip: 0.0.0.0
  port: 8002
metrics:
  server: { ip: 0.0.0.0, port: 4002, maxConnections: 64 }
health:
  server: { ip: 0.0.0.0, port: 4003, maxConnections: 64 }
network:
  enableIPv6: false
security:
  enable: false
  trustedSchedulers: [10.0.0.0/8, 192.168.1.1]
  allowedPrivateSources: [registry.internal, 10.1.0.0/16]
`;

const DFINIT_SEEDS = [
  `
proxy:
  addr: http://127.0.0.1:4001
containerRuntime:
  containerd:
    configPath: /etc/containerd/config.toml
    proxyAllRegistries: true
    registries:
      - hostNamespace: docker.io
        serverAddr: https://index.docker.io
        capabilities: [pull, resolve]
      - hostNamespace: ghcr.io
        serverAddr: https://ghcr.io
        skipVerify: true
        ca: [/etc/a.pem]
`,
  `
proxy: { addr: http://127.0.0.1:4001 }
containerRuntime:
  docker:
    configPath: /etc/docker/daemon.json
`,
  `
containerRuntime:
  crio:
    configPath: /etc/containers/registries.conf
    unqualifiedSearchRegistries: [docker.io, quay.io]
    registries:
      - prefix: docker.io
        location: docker.io
`,
];

const SCHEDULER_FULL = `
server:
  listenIP: 0.0.0.0
  port: 8002
scheduler:
  algorithm: default
  backToSourceCount: 200
  retryBackToSourceLimit: 4
  retryLimit: 5
  retryInterval: 500ms
  swarm: true
  seedPeerChildLimit: 4
  candidateParentLimit: 8
  filterParentLimit: 15
  maxHosts: 10000
  gc:
    pieceDownloadTimeout: 30m
    peerGCInterval: 10s
    peerTTL: 24h
    taskGCInterval: 30m
    hostGCInterval: 5m
    hostTTL: 1h
`;

const DYNCONFIG_FULL = `
scheduler:
  addr: scheduler-headless.default.svc:8002
  addrs: [10.0.0.1:8002, '[::1]:8002']
clientConfig:
  blockList:
    task:
      download:
        applications: [blocked-app]
        urls: ['^https://blocked\\.example/.*']
        tags: [t]
        priorities: [1, 2]
seedClientConfig:
  blockList:
    persistentTask:
      upload:
        urls: []
`;

const LOADERS: Loader[] = [
  {
    name: 'dfdaemon.yaml',
    parse: (text) =>
      parseDfdaemonConfig(text, 'dfdaemon.yaml', { dirs, hostname: 'h', detectHostIp: () => '10.0.0.9' }),
    runs: RUNS_DFDAEMON,
    seeds: [DFDAEMON_FULL, 'host:\n  hostname: x\n'],
  },
  {
    name: 'dfinit.yaml',
    parse: (text) => parseDfinitConfig(text, 'dfinit.yaml'),
    runs: RUNS_OTHERS,
    seeds: DFINIT_SEEDS,
  },
  {
    name: 'scheduler.yaml',
    parse: (text) => parseSchedulerConfig(text, 'scheduler.yaml'),
    runs: RUNS_OTHERS,
    seeds: [SCHEDULER_FULL],
  },
  {
    name: 'dynconfig.yaml',
    parse: (text) => parseLocalDynconfig(text, 'dynconfig.yaml'),
    runs: RUNS_OTHERS,
    seeds: [DYNCONFIG_FULL],
  },
];

// ---- the oracle ------------------------------------------------------------------------------------------------

type Outcome = { ok: true; warnings: string[] } | { ok: false; message: string };

/** Loads `text`: a config with one-line warnings, or one DfError INVALID_CONFIG on one line, in bounded time. */
function load(loader: Loader, text: string): Outcome {
  const what = `${loader.name} ${JSON.stringify(text.slice(0, 300))}`;
  const started = performance.now();
  let outcome: Outcome;
  try {
    const { config, warnings } = loader.parse(text);
    assert.equal(typeof config, 'object', what);
    for (const w of warnings) {
      assert.equal(typeof w, 'string', what);
      assert.doesNotMatch(w, /[\r\n]/, `${what}: a warning on one line: ${JSON.stringify(w)}`);
    }
    outcome = { ok: true, warnings };
  } catch (e) {
    assert.ok(e instanceof DfError, `${what}: threw ${e instanceof Error ? e.stack : String(e)}`);
    assert.equal(e.code, 'INVALID_CONFIG', `${what}: ${e.message}`);
    assert.ok(e.message.length > 0, what);
    assert.doesNotMatch(e.message, /[\r\n]/, `${what}: one line: ${JSON.stringify(e.message)}`);
    outcome = { ok: false, message: e.message };
  }
  const ms = performance.now() - started;
  assert.ok(ms < LOAD_BOUND_MS, `${what}: took ${Math.round(ms)} ms`);
  return outcome;
}

// ---- inputs ----------------------------------------------------------------------------------------------------

/** Every key of the seeds (so random documents use the real sections), and keys that trip up JS objects. */
function keyPool(loader: Loader): string[] {
  const keys = new Set<string>([
    '__proto__',
    'constructor',
    'toString',
    'hasOwnProperty',
    '<<',
    '',
    '0',
    'a.b',
  ]);
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') {
      for (const [k, child] of Object.entries(v)) {
        keys.add(k);
        walk(child);
      }
    }
  };
  for (const s of loader.seeds) walk(parseDocument(s).toJS());
  return [...keys];
}

/** Scalars a config value might be, and might not be. */
const scalar: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(
    0,
    -1,
    1,
    65535,
    65536,
    2 ** 31,
    2 ** 53,
    1e308,
    -1e308,
    0.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    true,
    false,
    null,
    '10s',
    '-1s',
    '0s',
    '1e400s',
    '99999999999999999999h',
    '1GiB',
    '-5MB',
    '9999999999PB',
    '512KiB',
    '1.5.6.7',
    '127.0.0.1',
    '::1',
    '10.0.0.0/8',
    '10.0.0.0/33',
    'http://127.0.0.1:4001',
    'http://',
    'unix:///x',
    '/abs/path',
    'rel/path',
    '(?<',
    '[',
    '.*',
  ),
  fc.integer(),
  fc.double(),
  hostileString(40),
);

function documentValue(keys: string[]): fc.Arbitrary<unknown> {
  const key = fc.oneof(
    { arbitrary: fc.constantFrom(...keys), weight: 4 },
    { arbitrary: fc.string(), weight: 1 },
  );
  const { tree } = fc.letrec<{ tree: unknown; node: unknown }>((tie) => ({
    tree: fc.oneof({ depthSize: 'small', withCrossShrink: true }, scalar, tie('node')),
    node: fc.oneof(fc.dictionary(key, tie('tree'), { maxKeys: 6 }), fc.array(tie('tree'), { maxLength: 4 })),
  }));
  return fc.oneof(
    { arbitrary: fc.dictionary(key, tree, { maxKeys: 8 }), weight: 4 },
    { arbitrary: tree, weight: 1 },
  );
}

/** YAML's own hazards, spliced into otherwise valid documents. */
const YAML_HAZARDS: readonly string[] = [
  'a: &a [1, 2]\nb: [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n',
  'x: &x {y: 1}\nz:\n  <<: *x\n',
  'host: !!binary aGVsbG8=\n',
  'download: !!set {a, b}\n',
  'download: !!omap [concurrentPieceCount: -5]\n',
  'gc: {policy: {taskTTL: !!timestamp 2001-12-14}}\n',
  'host: !!js/function "function () {}"\n',
  'host: !custom {a: 1}\n',
  '%YAML 1.1\n---\nhost: {hostname: yes}\n',
  '---\na: 1\n---\nb: 2\n',
  'host: *undefined\n',
  '? [a, b]\n: 1\n',
  'a: 1\na: 2\n',
  '"\\ud800": 1\n',
  '"a\\nb": 1\n',
  '\t\tkey: value\n',
  'key: "unterminated\n',
  '- just\n- a\n- list\n',
  'just a scalar\n',
  '\uFEFFhost: {}\n',
];

/** Hazards that take tens of milliseconds each: loaded once per loader, not per random input. */
const COSTLY_HAZARDS: readonly string[] = [
  'host: ' + '['.repeat(5000) + ']'.repeat(5000) + '\n',
  'host: ' + '{a: '.repeat(2000) + '1' + '}'.repeat(2000) + '\n',
  Array.from({ length: 1500 }, (_, i) => ' '.repeat(i) + 'k:').join('\n') + '\n',
  'host:\n  hostname: ' + 'a'.repeat(1_000_000) + '\n',
  'a: &a [' + 'x, '.repeat(1000) + ']\nb: [' + '*a, '.repeat(99) + ']\n',
];

function textInputs(loader: Loader): fc.Arbitrary<string> {
  const seedBytes = loader.seeds.map((s) => Buffer.from(s));
  return fc.oneof(
    mutatedBytes(seedBytes).map((b) => b.toString('utf8')),
    mutatedBytes(seedBytes).map((b) => b.toString('latin1')),
    fc
      .tuple(fc.constantFrom(...loader.seeds), fc.constantFrom(...YAML_HAZARDS), fc.boolean())
      .map(([s, h, before]) => (before ? h + s : s + h)),
    fc.constantFrom(...YAML_HAZARDS),
    fc.string({ unit: 'binary', maxLength: 200 }),
  );
}

type YamlPath = Array<string | number>;

/** The paths of every value (mapping entries and list items) of a document, and of the mappings among them. */
function pathsOf(
  value: unknown,
  at: YamlPath = [],
  out: { values: YamlPath[]; mappings: YamlPath[] } = { values: [], mappings: [] },
) {
  if (Array.isArray(value)) {
    value.forEach((v, i) => {
      out.values.push([...at, i]);
      pathsOf(v, [...at, i], out);
    });
  } else if (value && typeof value === 'object') {
    out.mappings.push(at);
    for (const [k, v] of Object.entries(value)) {
      out.values.push([...at, k]);
      pathsOf(v, [...at, k], out);
    }
  }
  return out;
}

const dotted = (p: YamlPath): string => p.reduce<string>((acc, k) => joinKey(acc, k), '');

/** A valid seed with the value at one path replaced (or removed), and that path. */
function replacedValue(loader: Loader): fc.Arbitrary<{ text: string; path: YamlPath }> {
  const seeds = loader.seeds.map((s) => ({ text: s, paths: pathsOf(parseDocument(s).toJS()).values }));
  return fc
    .tuple(fc.nat(), fc.nat(), fc.oneof(scalar, documentValue(keyPool(loader))), fc.boolean())
    .map(([si, pi, value, remove]) => {
      const seed = seeds[si % seeds.length]!;
      const p = seed.paths[pi % seed.paths.length]!;
      const doc = parseDocument(seed.text);
      if (remove) doc.deleteIn(p);
      else doc.setIn(p, doc.createNode(value));
      return { text: doc.toString(), path: p };
    });
}

/** Keys no schema has: an unknown one must be a warning naming it. */
const UNKNOWN_KEYS = [
  '__proto__',
  'constructor',
  'toString',
  'hasOwnProperty',
  'valueOf',
  '<<',
  'zzUnknown',
  '0',
  'x y',
];

/** A valid seed with one unknown key added to one of its mappings (not a free-form one such as requestHeader). */
function addedKey(loader: Loader): fc.Arbitrary<{ text: string; key: string }> {
  const seeds = loader.seeds.map((s) => ({
    text: s,
    mappings: pathsOf(parseDocument(s).toJS()).mappings.filter(
      (p) => !p.some((k) => /header/i.test(String(k))),
    ),
  }));
  return fc
    .tuple(
      fc.nat(),
      fc.nat(),
      fc.oneof(fc.constantFrom(...UNKNOWN_KEYS), fc.stringMatching(/^zz[a-zA-Z0-9_-]{1,12}$/)),
    )
    .map(([si, pi, key]) => {
      const seed = seeds[si % seeds.length]!;
      const p = seed.mappings[pi % seed.mappings.length]!;
      const doc = parseDocument(seed.text);
      const node = p.length === 0 ? doc.contents : doc.getIn(p, true);
      assert.ok(isMap(node), `${loader.name}: ${dotted(p)} is a mapping`);
      node.set(doc.createNode(key), doc.createNode(1));
      return { text: doc.toString(), key: joinKey(dotted(p), key) };
    });
}

// ---- the targets -----------------------------------------------------------------------------------------------

for (const loader of LOADERS) {
  describe(`fuzz: ${loader.name}`, () => {
    test('the seeds load without warnings', () => {
      for (const s of loader.seeds) assert.deepEqual(load(loader, s), { ok: true, warnings: [] }, s);
    });

    test('deep nesting, a 1 MB value and a wide alias load or fail with one INVALID_CONFIG line', () => {
      for (const h of COSTLY_HAZARDS) load(loader, h);
    });

    test(`${fuzzRuns(loader.runs.documents)} arbitrary documents load or fail with one INVALID_CONFIG line`, () => {
      const keys = keyPool(loader);
      fc.assert(
        fc.property(documentValue(keys), (value) => void load(loader, stringify(value))),
        fuzzParameters(loader.runs.documents),
      );
    });

    test(`${fuzzRuns(loader.runs.texts)} mutated texts and YAML hazards load or fail with one INVALID_CONFIG line`, () => {
      fc.assert(
        fc.property(textInputs(loader), (text) => void load(loader, text)),
        fuzzParameters(loader.runs.texts),
      );
    });

    test(`${fuzzRuns(loader.runs.replaced)} valid configs with one value replaced: refused values are named`, () => {
      fc.assert(
        fc.property(replacedValue(loader), ({ text, path: p }) => {
          const outcome = load(loader, text);
          if (outcome.ok) return;
          // The replaced key, or the section it is in (a value can make a sibling invalid, e.g. low > high).
          const section = dotted(p.slice(0, Math.max(1, p.length - 1)));
          assert.ok(
            outcome.message.includes(section),
            `${loader.name}: replacing ${dotted(p)} gave an error not naming ${section}: ${outcome.message}\n${text}`,
          );
        }),
        fuzzParameters(loader.runs.replaced),
      );
    });

    test(`${fuzzRuns(loader.runs.added)} valid configs with one unknown key: loaded, with a warning naming it`, () => {
      fc.assert(
        fc.property(addedKey(loader), ({ text, key }) => {
          const outcome = load(loader, text);
          assert.ok(
            outcome.ok,
            `${loader.name}: adding ${key} failed the load: ${!outcome.ok && outcome.message}`,
          );
          assert.ok(
            outcome.warnings.some((w) => w.includes(`unknown key ${key}`)),
            `${loader.name}: no warning names ${key}: ${JSON.stringify(outcome.warnings)}`,
          );
        }),
        fuzzParameters(loader.runs.added),
      );
    });
  });
}

test('fuzz: dfdaemon.yaml files that are not config text (a directory, binary, empty) fail with one clear error', () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'df-config-fuzz-'));
  try {
    const binary = path.join(tmp, 'binary.yaml');
    fs.writeFileSync(binary, Buffer.from([0xff, 0xfe, 0, 1, 2, 0x80, 0x0a, 0x3a]));
    const empty = path.join(tmp, 'empty.yaml');
    fs.writeFileSync(empty, '');
    for (const file of [
      tmp,
      binary,
      path.join(tmp, 'missing.yaml'),
      path.join(binary, 'below-a-file.yaml'),
    ]) {
      assert.throws(
        () => loadDfdaemonConfig(file, { dirs }),
        (e: unknown) => e instanceof DfError && e.code === 'INVALID_CONFIG' && !/[\r\n]/.test(e.message),
        file,
      );
    }
    assert.ok(loadDfdaemonConfig(empty, { dirs, detectHostIp: () => '10.0.0.9' }).config);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});
