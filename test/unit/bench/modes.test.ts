// Who runs on which host of a swarm benchmark (bench/p2p/modes.ts), how the environment chooses the modes, and
// the one dfdaemon.yaml both clients get (bench/p2p/servers.ts).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { kindsOf, MODES, needsRust, parseModes } from '../../../bench/p2p/modes.js';
import { queueLimitIn, settingsFromEnv } from '../../../bench/p2p/scenarios.js';
import { daemonConfig } from '../../../bench/p2p/servers.js';
import { parseDfdaemonConfig } from '../../../src/config/load.js';
import { SYSTEM_DIRS } from '../../../src/config/dirs.js';

test('modes: the seed first, then the peers; mixed modes alternate from peer 1', () => {
  assert.deepEqual(kindsOf(MODES.ours!, 3), ['ours', 'ours', 'ours', 'ours']);
  assert.deepEqual(kindsOf(MODES.rust!, 2), ['rust', 'rust', 'rust']);
  assert.deepEqual(kindsOf(MODES.mixed!, 4), ['ours', 'rust', 'ours', 'rust', 'ours']);
  assert.deepEqual(kindsOf(MODES['mixed-rust-seed']!, 3), ['rust', 'ours', 'rust', 'ours']);
  assert.equal(needsRust([MODES.ours!], 7), false);
  assert.equal(needsRust([MODES.ours!, MODES.mixed!], 1), true);
  // With one peer, the Rust-seed mix still has a Rust seed.
  assert.deepEqual(kindsOf(MODES['mixed-rust-seed']!, 1), ['rust', 'ours']);
});

test('P2P_MODES: a comma list of known names; anything else is one line naming the known ones', () => {
  assert.deepEqual(
    parseModes(' rust, mixed ').map((m) => m.name),
    ['rust', 'mixed'],
  );
  assert.throws(
    () => parseModes('ours,golang'),
    /^Error: P2P_MODES: unknown mode "golang" \(known: ours, rust, mixed, mixed-rust-seed\)$/,
  );
  assert.throws(() => parseModes(' , '), /P2P_MODES is empty/);
});

test('settings: bench:p2p runs ours alone; an entry gives its own defaults; the environment wins', () => {
  assert.deepEqual(
    settingsFromEnv({}).modes.map((m) => m.name),
    ['ours'],
  );
  const swarm = { scenarios: ['8x256M'], modes: 'ours,rust,mixed,mixed-rust-seed' };
  const st = settingsFromEnv({}, swarm);
  assert.deepEqual(
    st.scenarios.map((s) => s.name),
    ['8x256M'],
  );
  assert.equal(st.modes.length, 4);
  assert.deepEqual(
    settingsFromEnv({ P2P_MODES: 'rust', P2P_SCENARIOS: 'cold-seed' }, swarm).modes.map((m) => m.name),
    ['rust'],
  );
  assert.throws(() => settingsFromEnv({ P2P_MODES: 'x' }, swarm), /P2P_MODES: unknown mode "x"/);
});

test('queueLimit (busy answers, ours alone) only where every host is ours, unless P2P_QUEUE_LIMIT says so', () => {
  const st = settingsFromEnv({});
  assert.equal(queueLimitIn(MODES.ours!, 7, st), 0);
  assert.equal(queueLimitIn(MODES.mixed!, 7, st), undefined);
  assert.equal(queueLimitIn(MODES.rust!, 7, st), undefined);
  const given = settingsFromEnv({ P2P_QUEUE_LIMIT: '4' });
  assert.equal(queueLimitIn(MODES.mixed!, 7, given), 4);
  assert.equal(queueLimitIn(MODES.mixed!, 7, settingsFromEnv({ P2P_QUEUE_LIMIT: '' })), undefined);
});

test('the bench dfdaemon.yaml loads in ours without a warning and says what both clients need', () => {
  const h = { name: 'seed', ns: 'dfp2p-x-0-h0', ip: '10.77.1.10', dir: '/tmp/h0', port: 'v0' };
  const yaml = daemonConfig(h, { seed: true, vortexPort: 4103, originIp: '10.77.1.2', queueLimit: 2 });
  const { config, warnings } = parseDfdaemonConfig(yaml, 'dfdaemon.yaml', { dirs: SYSTEM_DIRS });
  assert.deepEqual(warnings, []);
  assert.equal(config.host.ip, '10.77.1.10');
  assert.equal(config.storage.server.tcpPort, 4103);
  assert.equal(config.metrics.server.port, 4002);
  assert.equal(config.server.cacheDir, '/tmp/h0/cache');
  assert.equal(config.seedPeer.enable, true);
  const peer = daemonConfig(h, { seed: false, vortexPort: 4100 });
  assert.doesNotMatch(peer, /seedPeer|allowedPrivateSources|queueLimit|cutThrough/);
});

test('P2P_CUT_THROUGH sets storage.server.cutThrough in our daemons; unset leaves dfdaemon’s default', () => {
  assert.equal(settingsFromEnv({}).cutThrough, undefined);
  assert.equal(settingsFromEnv({ P2P_CUT_THROUGH: '1' }).cutThrough, true);
  assert.equal(settingsFromEnv({ P2P_CUT_THROUGH: 'false' }).cutThrough, false);
  assert.throws(() => settingsFromEnv({ P2P_CUT_THROUGH: 'yes' }), /P2P_CUT_THROUGH must be 1 or 0/);
  const h = { name: 'peer1', ns: 'dfp2p-x-0-h1', ip: '10.77.1.11', dir: '/tmp/h1', port: 'v1' };
  for (const cutThrough of [true, false]) {
    const yaml = daemonConfig(h, { seed: false, vortexPort: 4100, cutThrough });
    const { config, warnings } = parseDfdaemonConfig(yaml, 'dfdaemon.yaml', { dirs: SYSTEM_DIRS });
    assert.deepEqual(warnings, []);
    assert.equal(config.storage.server.cutThrough, cutThrough);
  }
});
