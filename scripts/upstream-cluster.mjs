#!/usr/bin/env node
// Starts the upstream Dragonfly control plane by hand, exactly as test:interop does: MariaDB and Redis of our
// own (data in temp dirs), the Go manager (v2.5.1) on them and a Go scheduler in its cluster 1, each with its own
// config file, on free loopback ports. Prints where they listen and the `manager.addr` line for dfdaemon.yaml,
// then waits; Ctrl-C (SIGINT) or SIGTERM stops them by PID, in reverse order, and removes the temp dirs.
//
//   npm run build && node scripts/upstream-cluster.mjs      (install first: scripts/install-upstream.sh apt go)
//
// Exit codes: 0 stopped by a signal; 1 something failed to start (the message says what).
import { fileURLToPath } from 'node:url';

const helpers = new URL('../dist/test/helpers/upstream/', import.meta.url);
let mod;
try {
  mod = await import(new URL('go-control-plane.js', helpers).href);
} catch {
  process.stderr.write(
    `upstream-cluster: ${fileURLToPath(helpers)} is missing: run \`npm run build\` first\n`,
  );
  process.exit(1);
}
const { missingUpstream } = await import(new URL('programs.js', helpers).href);
const missing = missingUpstream([
  'manager',
  'scheduler',
  'mariadbd',
  'mariadb-install-db',
  'mariadb',
  'redis-server',
]);
if (missing.length > 0) {
  process.stderr.write(`upstream-cluster: ${missing.join('; ')}\n`);
  process.exit(1);
}

const say = (line) => process.stderr.write(`upstream-cluster: ${line}\n`);
const cp = new mod.GoControlPlane();
let stopping;
const stop = () => (stopping ??= cp.stop().catch((e) => say(`stopping: ${e.message}`)));
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.once(sig, () => {
    say(`${sig}: stopping`);
    void stop().then(() => process.exit(0));
  });
}
try {
  say('starting MariaDB and Redis, then the manager, then the scheduler');
  await cp.start();
} catch (e) {
  say(`failed: ${e.message}`);
  await stop();
  process.exit(1);
}
const m = cp.manager;
const s = cp.scheduler;
process.stdout.write(
  [
    `MariaDB    127.0.0.1:${cp.mariadb.port} (socket ${cp.mariadb.socket}, user dragonfly/dragonfly, db manager)`,
    `Redis      ${cp.redis.addr}`,
    `manager    gRPC ${m.addr}, REST ${m.restUrl} (user root / dragonfly), log ${m.log}`,
    `scheduler  ${s.addr} (cluster 1), log ${s.log}`,
    '',
    'In each dfdaemon.yaml:',
    `  manager:\n    addr: http://${m.addr}`,
    '',
    'Ctrl-C stops them all.',
    '',
  ].join('\n'),
);
// Stay up until a signal.
setInterval(() => {}, 1 << 30);
