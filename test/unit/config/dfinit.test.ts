import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  DEFAULT_DFINIT_CONFIG_PATH,
  loadDfinitConfig,
  parseDfinitConfig,
} from '../../../src/config/dfinit.js';
import { DfError } from '../../../src/core/errors.js';

const parse = (text: string) => parseDfinitConfig(text, 'dfinit.yaml');

function assertConfigError(text: string, ...parts: string[]) {
  assert.throws(
    () => parse(text),
    (e: unknown) => {
      assert.ok(e instanceof DfError, String(e));
      assert.equal(e.code, 'INVALID_CONFIG');
      for (const p of parts) assert.ok(e.message.includes(p), `${JSON.stringify(e.message)} lacks ${p}`);
      return true;
    },
  );
}

test('default path and defaults as upstream', () => {
  assert.equal(DEFAULT_DFINIT_CONFIG_PATH, '/etc/dragonfly/dfinit.yaml');
  const { config, warnings } = parse('');
  assert.deepEqual(config, { proxy: { addr: 'http://127.0.0.1:4001' } });
  assert.deepEqual(warnings, []);
});

test('containerd section: defaults for configPath, capabilities, proxyAllRegistries', () => {
  const { config } = parse(`
containerRuntime:
  containerd:
    registries:
      - hostNamespace: docker.io
        serverAddr: https://index.docker.io
      - hostNamespace: ghcr.io
        serverAddr: https://ghcr.io
        capabilities: [pull]
        skipVerify: true
        ca: [/etc/a.pem, /etc/b.pem]
`);
  assert.deepEqual(config.containerRuntime, {
    kind: 'containerd',
    configPath: '/etc/containerd/config.toml',
    proxyAllRegistries: true,
    registries: [
      {
        hostNamespace: 'docker.io',
        serverAddr: 'https://index.docker.io',
        capabilities: ['pull', 'resolve'],
      },
      {
        hostNamespace: 'ghcr.io',
        serverAddr: 'https://ghcr.io',
        capabilities: ['pull'],
        skipVerify: true,
        ca: ['/etc/a.pem', '/etc/b.pem'],
      },
    ],
  });
});

test('docker, crio and podman sections with their defaults', () => {
  assert.deepEqual(parse('containerRuntime:\n  docker: {}\n').config.containerRuntime, {
    kind: 'docker',
    configPath: '/etc/docker/daemon.json',
  });
  for (const kind of ['crio', 'podman'] as const) {
    const { config } = parse(
      `containerRuntime:\n  ${kind}:\n    registries:\n      - prefix: docker.io\n        location: docker.io\n`,
    );
    assert.deepEqual(config.containerRuntime, {
      kind,
      configPath: '/etc/containers/registries.conf',
      unqualifiedSearchRegistries: ['registry.fedoraproject.org', 'registry.access.redhat.com', 'docker.io'],
      registries: [{ prefix: 'docker.io', location: 'docker.io' }],
    });
  }
});

test('unknown keys are warnings naming them', () => {
  const { warnings } = parse(`
proxy:
  addr: http://127.0.0.1:4001
  port: 4001
containerRuntime:
  containerd:
    registries:
      - hostNamespace: docker.io
        serverAddr: https://index.docker.io
        mirror: x
`);
  assert.equal(warnings.length, 2);
  assert.match(warnings[0]!, /unknown key proxy\.port \(line 4\)/);
  assert.match(warnings[1]!, /unknown key containerRuntime\.containerd\.registries\[0\]\.mirror/);
});

test('invalid values are errors naming the key', () => {
  assertConfigError('proxy:\n  addr: 127.0.0.1:4001\n', 'proxy.addr', 'http URL', 'dfinit.yaml:2');
  assertConfigError(
    'containerRuntime:\n  containerd:\n    proxyAllRegistries: yes please\n',
    'proxyAllRegistries',
  );
  assertConfigError(
    'containerRuntime:\n  containerd:\n    registries:\n      - serverAddr: https://x\n',
    'containerRuntime.containerd.registries[0].hostNamespace',
    'required',
  );
  assertConfigError(
    'containerRuntime:\n  containerd:\n    registries:\n      - hostNamespace: ../etc\n        serverAddr: https://x\n',
    'registries[0].hostNamespace',
  );
  assertConfigError(
    'containerRuntime:\n  crio:\n    registries:\n      - prefix: a\n',
    'registries[0].location',
  );
  assertConfigError(
    'containerRuntime:\n  docker:\n    configPath: 3\n',
    'containerRuntime.docker.configPath',
  );
});

test('containerRuntime naming no runtime is an error, as upstream', () => {
  assertConfigError('containerRuntime: {}\n', 'containerRuntime', 'containerd, docker, crio or podman');
});

test('several runtimes: the first of containerd, docker, crio, podman wins, with a warning', () => {
  const { config, warnings } = parse('containerRuntime:\n  podman: {}\n  docker: {}\n');
  assert.equal(config.containerRuntime?.kind, 'docker');
  assert.match(warnings[0]!, /only docker is configured.*podman ignored/);
});

test('a missing config file is an error naming it', () => {
  const file = path.join(os.tmpdir(), `dfinit-missing-${process.pid}.yaml`);
  assert.throws(() => loadDfinitConfig(file), new RegExp(`${file}: no such file`));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'dfinit-cfg-'));
  try {
    fs.writeFileSync(path.join(dir, 'bad.yaml'), 'proxy: [\n');
    assert.throws(() => loadDfinitConfig(path.join(dir, 'bad.yaml')), /bad\.yaml:\d+:\d+: invalid YAML/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
