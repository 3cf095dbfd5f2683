// The scheduler client side against real grpc-js servers on loopback: fake-but-real `scheduler.v2.Scheduler`
// servers (AnnounceHost/DeleteHost recorded) with `grpc.health.v1`, and a `manager.v2.Manager/ListSchedulers`.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Server, ServerCredentials, status, type sendUnaryData, type ServerUnaryCall } from '@grpc/grpc-js';
import { HealthImplementation, type ServingStatus } from 'grpc-health-check';
import pino from 'pino';
import { defaultConfig, type DfdaemonConfig } from '../../src/config/dfdaemon.js';
import { DfError } from '../../src/core/errors.js';
import { ManagerService, Scheduler, type ListSchedulersRequest } from '../../src/gen/manager.js';
import {
  SchedulerService,
  type AnnounceHostRequest,
  type DeleteHostRequest,
} from '../../src/gen/scheduler.js';
import { SchedulerAnnouncer } from '../../src/scheduler/announcer.js';
import { HashRing } from '../../src/scheduler/hash-ring.js';
import { HostInfo } from '../../src/scheduler/host-info.js';
import { localDynconfigSource } from '../../src/scheduler/local-scheduler-source.js';
import { SchedulerSelector } from '../../src/scheduler/scheduler-selector.js';
import { schedulerSourceFromConfig } from '../../src/scheduler/scheduler-source.js';

const log = pino({ level: 'silent' });
const TASK_IDS = Array.from(
  { length: 40 },
  (_, i) => `${(i * 104729).toString(16).padStart(5, '0')}${'ab'.repeat(29)}`,
);

interface FakeScheduler {
  addr: string;
  port: number;
  announces: AnnounceHostRequest[];
  deletes: DeleteHostRequest[];
  health: HealthImplementation;
  /** When set, AnnounceHost fails with INVALID_ARGUMENT, as the Go validator does (or with `rejectCode`). */
  reject?: string;
  rejectCode?: number;
  close(): Promise<void>;
}

async function bind(server: Server): Promise<number> {
  return new Promise((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', ServerCredentials.createInsecure(), (err, port) =>
      err ? reject(err) : resolve(port),
    ),
  );
}

function shutdown(server: Server): Promise<void> {
  return new Promise((resolve) => server.tryShutdown(() => resolve()));
}

async function startScheduler(serving: ServingStatus = 'SERVING'): Promise<FakeScheduler> {
  const server = new Server();
  const health = new HealthImplementation({ '': serving });
  health.addToServer(server);
  const fake: FakeScheduler = {
    addr: '',
    port: 0,
    announces: [],
    deletes: [],
    health,
    close: () => shutdown(server),
  };
  server.addService(SchedulerService, {
    announceHost(call: ServerUnaryCall<AnnounceHostRequest, unknown>, cb: sendUnaryData<object>) {
      if (fake.reject !== undefined) {
        return cb({ code: fake.rejectCode ?? status.INVALID_ARGUMENT, details: fake.reject });
      }
      fake.announces.push(call.request);
      cb(null, {});
    },
    deleteHost(call: ServerUnaryCall<DeleteHostRequest, unknown>, cb: sendUnaryData<object>) {
      fake.deletes.push(call.request);
      cb(null, {});
    },
  });
  fake.port = await bind(server);
  fake.addr = `127.0.0.1:${fake.port}`;
  return fake;
}

async function startManager(
  schedulers: () => Partial<Scheduler>[],
): Promise<{ addr: string; requests: ListSchedulersRequest[]; close(): Promise<void> }> {
  const server = new Server();
  const requests: ListSchedulersRequest[] = [];
  server.addService(ManagerService, {
    listSchedulers(call: ServerUnaryCall<ListSchedulersRequest, unknown>, cb: sendUnaryData<object>) {
      requests.push(call.request);
      cb(null, { schedulers: schedulers().map((x) => Scheduler.fromPartial(x)) });
    },
  });
  const port = await bind(server);
  return { addr: `http://127.0.0.1:${port}`, requests, close: () => shutdown(server) };
}

async function waitFor(what: string, cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Like the Rust sort of "ip:port": same IP, so by port. */
const byPort = (a: FakeScheduler, b: FakeScheduler): number => a.port - b.port;

describe('scheduler selector and announcer', () => {
  let dir: string;
  let a: FakeScheduler;
  let b: FakeScheduler;
  let sick: FakeScheduler;
  let other: FakeScheduler;
  const DEAD = '127.0.0.1:1';

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'df-sched-'));
    [a, b] = [await startScheduler(), await startScheduler()].sort(byPort);
    sick = await startScheduler('NOT_SERVING');
    other = await startScheduler();
  });

  after(async () => {
    await Promise.all([a, b, sick, other].map((s) => s.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  function dynconfig(name: string, body: string): string {
    const path = join(dir, name);
    writeFileSync(path, body);
    return path;
  }

  const addrsYaml = (...addrs: string[]): string =>
    `scheduler:\n  addrs:\n${addrs.map((x) => `    - "${x}"\n`).join('')}`;

  function selectorFor(path: string): SchedulerSelector {
    return new SchedulerSelector({
      source: localDynconfigSource(path, { log }),
      refreshIntervalMs: 0,
      log,
      healthTimeoutMs: 1000,
    });
  }

  function config(extra: (c: DfdaemonConfig) => void = () => {}): DfdaemonConfig {
    const c = defaultConfig({ hostname: 'test-host' });
    c.host.ip = '127.0.0.1';
    c.storage.dir = dir;
    c.upload.server.port = 0;
    c.proxy.server.port = 4001;
    extra(c);
    return c;
  }

  test('local dynconfig addrs: only SERVING schedulers are kept, sorted; a task id always routes to the same one', async () => {
    const path = dynconfig('addrs.yaml', addrsYaml(b.addr, sick.addr, DEAD, a.addr, a.addr));
    const selector = selectorFor(path);
    try {
      await selector.start();
      assert.deepEqual(selector.addresses(), [a.addr, b.addr]);
      assert.deepEqual(
        selector.all().map((e) => e.addr),
        [a.addr, b.addr],
      );
      const ring = new HashRing([a.addr, b.addr]);
      // The ring has one point per scheduler (as upstream), so with ports picked at random one of them may own
      // a small arc: look through enough task ids (bounded) to find some that each scheduler owns.
      const ids = [...TASK_IDS];
      for (let i = 0; i < 5000 && new Set(ids.map((t) => ring.pick(t))).size < 2; i++) {
        ids.push(`${i.toString(16).padStart(5, '0')}${'cd'.repeat(29)}`);
      }
      const seen = new Set<string>();
      for (const id of ids) {
        const pick = selector.pick(id);
        assert.equal(pick.addr, ring.pick(id));
        assert.equal(selector.pick(id).addr, pick.addr);
        assert.equal(selector.forTask(id), pick.client, 'clients are cached per address');
        seen.add(pick.addr);
      }
      // Routing spreads tasks exactly as the ring does (both schedulers, unless one owns a vanishing arc).
      assert.equal(seen.size, new Set(ids.map((t) => ring.pick(t))).size);

      // A call through forTask reaches the scheduler the ring picked.
      const owner = seen.has(b.addr) ? b : a;
      const id = ids.find((t) => selector.pick(t).addr === owner.addr)!;
      const before = owner.announces.length;
      await new Promise<void>((resolve, reject) =>
        selector.forTask(id).announceHost({ host: undefined }, (err) => (err ? reject(err) : resolve())),
      );
      assert.equal(owner.announces.length, before + 1);
    } finally {
      selector.close();
    }
  });

  test('local dynconfig addr: "localhost:port" is resolved by DNS, IPv4 preferred', async () => {
    const selector = selectorFor(dynconfig('addr.yaml', `scheduler:\n  addr: "localhost:${a.port}"\n`));
    try {
      await selector.start();
      assert.deepEqual(selector.addresses(), [a.addr]);
    } finally {
      selector.close();
    }
  });

  test('no healthy scheduler at start: start() fails with one clear line naming each scheduler', async () => {
    const selector = selectorFor(dynconfig('none.yaml', addrsYaml(sick.addr, DEAD)));
    try {
      await assert.rejects(selector.start(), (e: unknown) => {
        assert.ok(e instanceof DfError);
        assert.equal(e.code, 'UNAVAILABLE');
        assert.match(e.message, /^no healthy scheduler among /);
        assert.ok(e.message.includes(`${sick.addr} (NOT_SERVING)`), e.message);
        assert.ok(e.message.includes(`${DEAD} (unreachable`), e.message);
        assert.ok(!e.message.includes('\n'));
        return true;
      });
      assert.throws(() => selector.forTask(TASK_IDS[0]!), /no scheduler available/);
    } finally {
      selector.close();
    }
  });

  test('a failed refresh keeps the old list; a changed list rebuilds the ring and notifies', async () => {
    const path = dynconfig('changing.yaml', addrsYaml(a.addr, b.addr));
    const selector = selectorFor(path);
    const changes: (readonly string[])[] = [];
    selector.onChange((addrs) => changes.push(addrs));
    try {
      await selector.start();
      writeFileSync(path, addrsYaml(sick.addr));
      await assert.rejects(selector.refresh(), /no healthy scheduler among/);
      assert.deepEqual(selector.addresses(), [a.addr, b.addr]);
      writeFileSync(path, addrsYaml(b.addr, a.addr));
      await selector.refresh();
      assert.equal(changes.length, 0, 'same list, no change');
      writeFileSync(path, addrsYaml(a.addr));
      await selector.refresh();
      assert.deepEqual(changes, [[a.addr]]);
      for (const id of TASK_IDS) assert.equal(selector.pick(id).addr, a.addr);
    } finally {
      selector.close();
    }
  });

  test('manager: ListSchedulers as a peer, health-checked, only the first healthy scheduler cluster kept', async () => {
    const manager = await startManager(() => [
      { ip: '127.0.0.1', port: sick.port, schedulerClusterId: 1 },
      { ip: '127.0.0.1', port: b.port, schedulerClusterId: 2 },
      { ip: '127.0.0.1', port: 1, schedulerClusterId: 2 },
      { ip: 'not-an-ip', port: 8002, schedulerClusterId: 2 },
      { ip: '127.0.0.1', port: other.port, schedulerClusterId: 3 },
      { ip: '127.0.0.1', port: a.port, schedulerClusterId: 2 },
    ]);
    const cfg = config((c) => {
      c.manager.addr = manager.addr;
      c.host.idc = 'idc-1';
      c.host.location = 'cn|hz';
    });
    const selector = new SchedulerSelector({
      source: schedulerSourceFromConfig(cfg, {
        dynconfigPath: join(dir, 'unused.yaml'),
        version: '9.9.9',
        log,
      }),
      refreshIntervalMs: 50,
      log,
      healthTimeoutMs: 1000,
    });
    try {
      await selector.start();
      // The manager's order is kept (best match first), unlike the sorted local list.
      assert.deepEqual(selector.addresses(), [b.addr, a.addr]);
      assert.equal(selector.clusterId, 2);
      const req = manager.requests[0]!;
      assert.equal(req.sourceType, 1); // PEER_SOURCE
      assert.equal(req.hostname, 'test-host');
      assert.equal(req.ip, '127.0.0.1');
      assert.equal(req.idc, 'idc-1');
      assert.equal(req.location, 'cn|hz');
      assert.equal(req.version, '9.9.9');
      // The periodic refresh asks again.
      await waitFor('a periodic refresh', () => manager.requests.length >= 3);
    } finally {
      selector.close();
      await manager.close();
    }
  });

  test('manager: a seed peer lists as SEED_PEER_SOURCE', async () => {
    const manager = await startManager(() => [{ ip: '127.0.0.1', port: a.port, schedulerClusterId: 1 }]);
    const cfg = config((c) => {
      c.manager.addr = manager.addr;
      c.seedPeer = { enable: true, type: 'super' };
    });
    const selector = new SchedulerSelector({
      source: schedulerSourceFromConfig(cfg, { dynconfigPath: '', version: '1', log }),
      refreshIntervalMs: 0,
      log,
    });
    try {
      await selector.start();
      assert.equal(manager.requests[0]!.sourceType, 2);
    } finally {
      selector.close();
      await manager.close();
    }
  });

  test('announcer: AnnounceHost to all at start with a valid Host, again each interval, DeleteHost on stop', async () => {
    const selector = selectorFor(dynconfig('announce.yaml', addrsYaml(a.addr, b.addr)));
    await selector.start();
    const hostInfo = new HostInfo({ config: config(), uploadPort: 4010, version: '1.2.3' });
    const announcer = new SchedulerAnnouncer({
      selector,
      hostInfo: () => hostInfo.build(),
      intervalMs: 150,
      log,
    });
    const [a0, b0] = [a.announces.length, b.announces.length];
    try {
      await announcer.start();
      assert.equal(a.announces.length, a0 + 1);
      assert.equal(b.announces.length, b0 + 1);
      const req = a.announces.at(-1)!;
      const host = req.host!;
      assert.equal(host.id, '127.0.0.1-test-host');
      assert.equal(host.type, 0);
      assert.equal(host.hostname, 'test-host');
      assert.equal(host.ip, '127.0.0.1');
      assert.equal(host.port, 4010);
      assert.equal(host.downloadPort, 4010);
      assert.equal(host.proxyPort, 4001);
      assert.equal(host.build?.gitVersion, '1.2.3');
      assert.ok(host.cpu!.logicalCount > 0);
      assert.ok(host.memory!.total > 0);
      assert.ok(host.disk!.total > 0);
      assert.ok(host.network!.maxTxBandwidth > 0);
      for (const p of [
        host.cpu!.percent,
        host.memory!.usedPercent,
        host.disk!.usedPercent,
        host.disk!.inodesUsedPercent,
      ]) {
        assert.ok(p >= 0 && p <= 100, `percentage ${p} in [0, 100]`);
      }
      assert.deepEqual(req.interval, { seconds: 0, nanos: 150_000_000 });

      await waitFor(
        'announces each interval',
        () => a.announces.length >= a0 + 3 && b.announces.length >= b0 + 3,
      );
    } finally {
      await announcer.stop();
      selector.close();
    }
    assert.deepEqual(a.deletes.at(-1), { hostId: '127.0.0.1-test-host' });
    assert.deepEqual(b.deletes.at(-1), { hostId: '127.0.0.1-test-host' });
    const after = a.announces.length;
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(a.announces.length, after, 'no announce after stop');
  });

  test('announcer: a seed peer announces type SUPER with the -seed host id', async () => {
    const selector = selectorFor(dynconfig('seed.yaml', addrsYaml(a.addr)));
    await selector.start();
    const hostInfo = new HostInfo({
      config: config((c) => (c.seedPeer = { enable: true, type: 'super' })),
      uploadPort: 4010,
      version: '1',
    });
    const announcer = new SchedulerAnnouncer({
      selector,
      hostInfo: () => hostInfo.build(),
      intervalMs: 60_000,
      log,
    });
    try {
      await announcer.start();
      assert.equal(a.announces.at(-1)!.host!.type, 1);
      assert.equal(a.announces.at(-1)!.host!.id, '127.0.0.1-test-host-seed');
    } finally {
      await announcer.stop();
      selector.close();
    }
  });

  test('announcer: a scheduler refusing AnnounceHost at start is fatal, naming it', async () => {
    const selector = selectorFor(dynconfig('reject.yaml', addrsYaml(a.addr, other.addr)));
    await selector.start();
    other.reject = 'invalid Host.Port: value must be inside range [1024, 65535)';
    const hostInfo = new HostInfo({ config: config(), uploadPort: 4010, version: '1' });
    const announcer = new SchedulerAnnouncer({
      selector,
      hostInfo: () => hostInfo.build(),
      intervalMs: 60_000,
      log,
    });
    try {
      await assert.rejects(announcer.start(), (e: unknown) => {
        assert.ok(e instanceof DfError);
        assert.equal(e.code, 'INVALID_ARGUMENT');
        assert.match(
          e.message,
          new RegExp(`^announce host to scheduler ${other.addr} failed: invalid Host.Port`),
        );
        return true;
      });
    } finally {
      other.reject = undefined;
      await announcer.stop();
      selector.close();
    }
  });

  test("announcer: a scheduler refusing the host id as another daemon's (ALREADY_EXISTS): fatal at start, the fix logged, no DeleteHost there on stop", async () => {
    const selector = selectorFor(dynconfig('taken.yaml', addrsYaml(a.addr, other.addr)));
    await selector.start();
    other.reject =
      'host id 127.0.0.1-test-host is already announced by another daemon (ip 127.0.0.1, port 4000)';
    other.rejectCode = status.ALREADY_EXISTS;
    const lines: Array<{ msg: string }> = [];
    const capture = pino({ level: 'info' }, { write: (l: string) => void lines.push(JSON.parse(l)) });
    const hostInfo = new HostInfo({ config: config(), uploadPort: 4010, version: '1' });
    const announcer = new SchedulerAnnouncer({
      selector,
      hostInfo: () => hostInfo.build(),
      intervalMs: 60_000,
      log: capture,
    });
    const deletesBefore = { a: a.deletes.length, other: other.deletes.length };
    try {
      await assert.rejects(announcer.start(), (e: unknown) => {
        assert.ok(e instanceof DfError);
        assert.equal(e.code, 'ALREADY_EXISTS');
        assert.match(
          e.message,
          new RegExp(
            `^announce host to scheduler ${other.addr} failed: host id 127\\.0\\.0\\.1-test-host is already announced`,
          ),
        );
        return true;
      });
      assert.ok(
        lines.some(
          (l) =>
            l.msg ===
            `host id 127.0.0.1-test-host is already used by another daemon at scheduler ${other.addr}. To run several daemons on one machine, set host.hostname in each one's dfdaemon.yaml to a unique name (this one is "test-host"), or give each its own host.ip (this one is 127.0.0.1); see docs/cluster.md, "Several daemons on one machine"`,
        ),
        `logged: ${lines.map((l) => l.msg).join(' | ')}`,
      );
    } finally {
      other.reject = undefined;
      other.rejectCode = undefined;
      await announcer.stop();
      selector.close();
    }
    // DeleteHost went to the scheduler that accepted the host, not to the one where the id is another daemon's.
    assert.equal(a.deletes.length, deletesBefore.a + 1);
    assert.equal(other.deletes.length, deletesBefore.other);
  });

  test('announcer: a new scheduler in the list is announced to at once', async () => {
    const path = dynconfig('grow.yaml', addrsYaml(a.addr));
    const selector = selectorFor(path);
    await selector.start();
    const hostInfo = new HostInfo({ config: config(), uploadPort: 4010, version: '1' });
    const announcer = new SchedulerAnnouncer({
      selector,
      hostInfo: () => hostInfo.build(),
      intervalMs: 60_000,
      log,
    });
    try {
      await announcer.start();
      const before = other.announces.length;
      writeFileSync(path, addrsYaml(a.addr, other.addr));
      await selector.refresh();
      await waitFor('an announce to the new scheduler', () => other.announces.length === before + 1);
    } finally {
      await announcer.stop();
      selector.close();
    }
  });
});
