import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  defaultHostsToml,
  hostsToml,
  planContainerdConfig,
  registryPluginId,
} from '../../../src/init/containerd.js';
import { parseToml } from '../../../src/init/toml.js';
import { DfError } from '../../../src/core/errors.js';

const CERTS = '/tmp/certs.d';
const plan = (text: string) => planContainerdConfig(text, 'config.toml', CERTS);
const valueOf = (text: string) => parseToml(text, 't').value as Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The registry part of `containerd config default` (1.6), with a comment of ours to keep. */
const DEFAULT_V2 = `disabled_plugins = []
imports = []
oom_score = 0
required_plugins = []
root = "/var/lib/containerd"
state = "/run/containerd"
version = 2

# local change: keep me
[plugins]

  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "registry.k8s.io/pause:3.6" # pinned

    [plugins."io.containerd.grpc.v1.cri".image_decryption]
      key_model = "node"

    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = ""

      [plugins."io.containerd.grpc.v1.cri".registry.auths]

      [plugins."io.containerd.grpc.v1.cri".registry.configs]

      [plugins."io.containerd.grpc.v1.cri".registry.headers]

      [plugins."io.containerd.grpc.v1.cri".registry.mirrors]

    [plugins."io.containerd.grpc.v1.cri".x509_key_pair_streaming]
      tls_cert_file = ""
      tls_key_file = ""

  [plugins."io.containerd.internal.v1.opt"]
    path = "/opt/containerd"
`;

describe('planContainerdConfig', () => {
  test('version 2 default config: config_path set in place, every other line kept', () => {
    const p = plan(DEFAULT_V2);
    assert.equal(p.version, 2);
    assert.equal(p.certsDir, CERTS);
    assert.equal(p.text, DEFAULT_V2.replace('config_path = ""', `config_path = "${CERTS}"`));
    assert.deepEqual(p.notes, []);
  });

  test('upstream default hosts directory', () => {
    assert.equal(planContainerdConfig(DEFAULT_V2, 'c').certsDir, '/etc/containerd/certs.d');
  });

  test('idempotent: planning the result again changes nothing', () => {
    const once = plan(DEFAULT_V2).text;
    const twice = plan(once);
    assert.equal(twice.text, once);
    assert.equal(twice.certsDir, CERTS);
  });

  test('config_path already set: file untouched, its first directory used', () => {
    const text =
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "/a/certs:/b/certs"\n';
    const p = plan(text);
    assert.equal(p.text, text);
    assert.equal(p.certsDir, '/a/certs');
  });

  test('version 3 uses the io.containerd.cri.v1.images plugin', () => {
    const text = `version = 3

[plugins]
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    [plugins."io.containerd.cri.v1.images".registry]
      config_path = ""
  [plugins."io.containerd.cri.v1.runtime"]
    enable_selinux = false
`;
    const p = plan(text);
    assert.equal(p.version, 3);
    assert.equal(p.text, text.replace('config_path = ""', `config_path = "${CERTS}"`));
    assert.equal(registryPluginId(3), 'io.containerd.cri.v1.images');
  });

  test('version 3 with an existing config_path (upstream test fixture)', () => {
    const text = `\nversion = 3\n\n[plugins]\n  [plugins."io.containerd.cri.v1.images"]\n    [plugins."io.containerd.cri.v1.images".registry]\n      config_path = "/x/certs.d"\n`;
    const p = plan(text);
    assert.equal(p.text, text);
    assert.equal(p.certsDir, '/x/certs.d');
  });

  test('no registry table: a new one after the plugin table, indented as the file is', () => {
    const text = `version = 2

[plugins]
  [plugins."io.containerd.grpc.v1.cri"]
    sandbox_image = "pause"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "/opt/cni/bin"
  [plugins."io.containerd.internal.v1.opt"]
    path = "/opt"
`;
    const p = plan(text);
    assert.equal(
      p.text,
      text.replace(
        '      bin_dir = "/opt/cni/bin"\n',
        `      bin_dir = "/opt/cni/bin"\n\n    [plugins."io.containerd.grpc.v1.cri".registry]\n      config_path = "${CERTS}"\n`,
      ),
    );
  });

  test('no plugin table at all: the registry table is appended (upstream fails here)', () => {
    const p = plan('version = 2\nroot = "/var/lib/containerd"\n');
    assert.equal(
      p.text,
      `version = 2\nroot = "/var/lib/containerd"\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${CERTS}"\n`,
    );
  });

  test('registry header without config_path: inserted as its first key', () => {
    const text =
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\n# auth\n[plugins."io.containerd.grpc.v1.cri".registry.headers]\n  X = ["y"]\n';
    const p = plan(text);
    assert.equal(
      p.text,
      `version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = "${CERTS}"\n# auth\n[plugins."io.containerd.grpc.v1.cri".registry.headers]\n  X = ["y"]\n`,
    );
  });

  test('registry only implied by its sub-tables: an explicit [...registry] table is added', () => {
    const text = `version = 2
[plugins."io.containerd.grpc.v1.cri".registry.configs."gcr.io".auth]
  username = "u"
`;
    const p = plan(text);
    assert.equal(
      p.text,
      `${text}\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${CERTS}"\n`,
    );
    assert.deepEqual(valueOf(p.text).plugins['io.containerd.grpc.v1.cri'].registry.configs, {
      'gcr.io': { auth: { username: 'u' } },
    });
  });

  test('dotted keys and inline tables are edited where they are', () => {
    const dotted = 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  registry.headers.X = ["y"]\n';
    assert.equal(
      plan(dotted).text,
      `version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  registry.headers.X = ["y"]\n  registry.config_path = "${CERTS}"\n`,
    );
    const inline =
      'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  registry = { headers = { X = ["y"] } }\n';
    assert.equal(
      plan(inline).text,
      `version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  registry = { headers = { X = ["y"] }, config_path = "${CERTS}" }\n`,
    );
    const emptyInline = 'version = 2\n[plugins."io.containerd.grpc.v1.cri"]\n  registry = {}\n';
    assert.match(plan(emptyInline).text, /registry = \{ config_path = "\/tmp\/certs\.d" \}/);
  });

  test('mirrors and configs.tls, which containerd refuses next to config_path, are removed with a note', () => {
    const text = `version = 2
[plugins."io.containerd.grpc.v1.cri".registry]
  config_path = ""
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors]
    [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
      endpoint = ["https://mirror.example"]
  [plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".auth]
    username = "u"
  [plugins."io.containerd.grpc.v1.cri".registry.configs."r.example".tls]
    insecure_skip_verify = true
`;
    const p = plan(text);
    const v = valueOf(p.text);
    const reg = v.plugins['io.containerd.grpc.v1.cri'].registry;
    assert.equal(reg.config_path, CERTS);
    assert.deepEqual(reg.mirrors, {});
    assert.deepEqual(reg.configs, { 'r.example': { auth: { username: 'u' } } });
    assert.equal(p.notes.length, 2);
    assert.match(p.notes[0]!, /registry\.mirrors \(docker\.io\)/);
    assert.match(p.notes[1]!, /configs\."r\.example"\.tls/);
    assert.equal(plan(p.text).text, p.text);
  });

  test('no version: version = 2 is added unless the file is written for version 1', () => {
    const p = plan('# my config\nroot = "/var/lib/containerd"\n');
    assert.equal(
      p.text,
      `# my config\nversion = 2\nroot = "/var/lib/containerd"\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${CERTS}"\n`,
    );
    assert.match(p.notes[0]!, /version = 2/);
    assert.equal(
      plan('').text,
      `version = 2\n\n[plugins."io.containerd.grpc.v1.cri".registry]\n  config_path = "${CERTS}"\n`,
    );

    const v1 = '[plugins.cri]\n  sandbox_image = "pause"\n';
    const p1 = plan(v1);
    assert.equal(p1.version, 1);
    assert.equal(p1.text, `${v1}\n  [plugins.cri.registry]\n    config_path = "${CERTS}"\n`);
  });

  test('CRLF files keep CRLF', () => {
    const text = 'version = 2\r\n[plugins."io.containerd.grpc.v1.cri".registry]\r\n  mirrors = {}\r\n';
    assert.equal(
      plan(text).text,
      `version = 2\r\n[plugins."io.containerd.grpc.v1.cri".registry]\r\n  config_path = "${CERTS}"\r\n  mirrors = {}\r\n`,
    );
  });

  test('errors name the file: bad TOML, bad version, bad config_path', () => {
    const bad = (text: string, re: RegExp) =>
      assert.throws(
        () => plan(text),
        (e: unknown) => e instanceof DfError && e.code === 'INVALID_CONFIG' && re.test(e.message),
      );
    bad('version = 2\n[plugins\n', /^config\.toml:\d+:\d+: invalid TOML/);
    bad('version = 4\n', /^config\.toml: version: expected 1, 2 or 3.*got 4/);
    bad(
      'version = 2\n[plugins."io.containerd.grpc.v1.cri".registry]\nconfig_path = 1\n',
      /config_path: expected a directory/,
    );
  });

  test('an edit that would change more than intended is refused, not written', () => {
    // The plugin table is an inline table, which a [header] cannot extend.
    const text = 'version = 2\nplugins = { "io.containerd.grpc.v1.cri" = { sandbox_image = "p" } }\n';
    assert.throws(
      () => plan(text),
      /config\.toml: cannot set plugins.*config_path without rewriting the file/,
    );
  });
});

describe('hosts.toml', () => {
  test('byte for byte what upstream writes (its test fixture)', () => {
    const text = hostsToml(
      {
        hostNamespace: 'docker.io',
        serverAddr: 'https://registry.example.com',
        skipVerify: true,
        ca: ['test-ca-cert'],
        capabilities: ['pull', 'resolve'],
      },
      'http://127.0.0.1:65001',
    );
    assert.equal(
      text,
      `server = "https://registry.example.com"

[host."http://127.0.0.1:65001"]
capabilities = ["pull", "resolve"]
skip_verify = true
ca = ["test-ca-cert"]

[host."http://127.0.0.1:65001".header]
X-Dragonfly-Registry = "https://registry.example.com"
`,
    );
    assert.deepEqual(valueOf(text).host['http://127.0.0.1:65001'].header, {
      'X-Dragonfly-Registry': 'https://registry.example.com',
    });
  });

  test('without skipVerify and ca', () => {
    const text = hostsToml(
      { hostNamespace: 'ghcr.io', serverAddr: 'https://ghcr.io', capabilities: ['pull'] },
      'http://127.0.0.1:4001',
    );
    assert.doesNotMatch(text, /skip_verify|ca =/);
    assert.match(text, /capabilities = \["pull"\]/);
  });

  test('_default: the proxy with pull and resolve, no server, no header', () => {
    assert.equal(
      defaultHostsToml('http://127.0.0.1:65001'),
      '[host."http://127.0.0.1:65001"]\ncapabilities = ["pull", "resolve"]\n',
    );
  });

  test('strings are escaped', () => {
    const text = hostsToml(
      { hostNamespace: 'x', serverAddr: 'https://x/"q"\\', capabilities: [] },
      'http://127.0.0.1:4001',
    );
    assert.equal(valueOf(text).server, 'https://x/"q"\\');
  });
});
