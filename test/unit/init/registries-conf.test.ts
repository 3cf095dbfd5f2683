import { test } from 'node:test';
import assert from 'node:assert/strict';
import { freshRegistriesConf, planRegistriesConf } from '../../../src/init/registries-conf.js';
import { parseToml } from '../../../src/init/toml.js';

const O = {
  unqualifiedSearchRegistries: ['registry.example.com'],
  registries: [{ prefix: 'registry.example.com', location: 'registry.example.com' }],
  proxyLocation: '127.0.0.1:65001',
};
const plan = (text: string | undefined, o = O) => planRegistriesConf(text, 'registries.conf', o);
const valueOf = (text: string) => parseToml(text, 't').value as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const UPSTREAM = `unqualified-search-registries = ["registry.example.com"]

[[registry]]
prefix = "registry.example.com"
location = "registry.example.com"

[[registry.mirror]]
insecure = true
location = "127.0.0.1:65001"
`;

test('no file (or a blank one): byte for byte what upstream writes (its test fixture)', () => {
  assert.equal(plan(undefined), UPSTREAM);
  assert.equal(plan('\n  \n'), UPSTREAM);
  assert.equal(freshRegistriesConf(O), UPSTREAM);
});

test('no registries: only the search list, as upstream', () => {
  assert.equal(
    plan(undefined, { ...O, registries: [] }),
    'unqualified-search-registries = ["registry.example.com"]\n',
  );
});

test('idempotent', () => {
  assert.equal(plan(UPSTREAM), UPSTREAM);
});

test('existing file: comments, other registries and settings kept; ours appended', () => {
  const text = `# system registries
short-name-mode = "enforcing"

[[registry]]
location = "quay.io"
blocked = false # keep
`;
  const after = plan(text);
  assert.equal(
    after,
    `# system registries
short-name-mode = "enforcing"
unqualified-search-registries = ["registry.example.com"]

[[registry]]
location = "quay.io"
blocked = false # keep

[[registry]]
prefix = "registry.example.com"
location = "registry.example.com"

[[registry.mirror]]
insecure = true
location = "127.0.0.1:65001"
`,
  );
  assert.equal(plan(after), after);
});

test('an entry for the same prefix gets the proxy as its first mirror; other mirrors stay after it', () => {
  const text = `unqualified-search-registries = ["docker.io"]

[[registry]]
prefix = "registry.example.com"
location = "old.example.com"
insecure = false

[[registry.mirror]]
location = "mirror.example.com:5000"

[[registry]]
location = "quay.io"
`;
  const after = plan(text);
  const v = valueOf(after);
  assert.deepEqual(v['unqualified-search-registries'], ['registry.example.com']);
  assert.deepEqual(v.registry[0], {
    prefix: 'registry.example.com',
    location: 'registry.example.com',
    insecure: false,
    mirror: [{ insecure: true, location: '127.0.0.1:65001' }, { location: 'mirror.example.com:5000' }],
  });
  assert.deepEqual(v.registry[1], { location: 'quay.io' });
  assert.match(
    after,
    /\[\[registry\.mirror\]\]\ninsecure = true\nlocation = "127\.0\.0\.1:65001"\n\n\[\[registry\.mirror\]\]\nlocation = "mirror/,
  );
  assert.equal(plan(after), after);
});

test('a stale proxy mirror (insecure missing) is replaced, and one later in the list moves first', () => {
  const text = `unqualified-search-registries = ["registry.example.com"]

[[registry]]
prefix = "registry.example.com"
location = "registry.example.com"

[[registry.mirror]]
location = "other:1"

[[registry.mirror]]
location = "127.0.0.1:65001"
`;
  const v = valueOf(plan(text));
  assert.deepEqual(v.registry[0].mirror, [
    { insecure: true, location: '127.0.0.1:65001' },
    { location: 'other:1' },
  ]);
});

test('matching by location when the entry has no prefix', () => {
  const o = { ...O, registries: [{ prefix: '', location: 'docker.io' }] };
  const text =
    'unqualified-search-registries = ["registry.example.com"]\n\n[[registry]]\nlocation = "docker.io"\n';
  const v = valueOf(plan(text, o));
  assert.equal(v.registry.length, 1);
  assert.deepEqual(v.registry[0].mirror, [{ insecure: true, location: '127.0.0.1:65001' }]);
});

test('inline mirror lists are edited in place', () => {
  const text = `unqualified-search-registries = ["registry.example.com"]
[[registry]]
prefix = "registry.example.com"
location = "registry.example.com"
mirror = [{ location = "m:1" }]
`;
  const after = plan(text);
  assert.match(
    after,
    /mirror = \[\{ insecure = true, location = "127\.0\.0\.1:65001" \}, \{ location = "m:1" \}\]/,
  );
  assert.equal(plan(after), after);
});

test('v1 format and bad TOML are errors naming the file', () => {
  assert.throws(
    () => plan('[registries.search]\nregistries = ["docker.io"]\n'),
    /registries\.conf: uses the old v1 format/,
  );
  assert.throws(() => plan('[[registry]\n'), /^DfError: registries\.conf:\d+:\d+: invalid TOML/);
});
