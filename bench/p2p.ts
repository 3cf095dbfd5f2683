// `npm run bench:p2p`: P2P distribution over shaped links between network namespaces on one machine, against
// the distribution bound (issue 11). Root: it makes namespaces, veths, a bridge and tc tbf qdiscs.
//
// Scenarios (P2P_SCENARIOS, a comma list; default all, in this order):
//   cold-seed  seed + 1 peer, 100 Mbit/s, 256 MiB: the peer takes the file through a seed that starts cold
//   8x256M     seed + 7 peers, 100 Mbit/s, 256 MiB
//   8x1G       seed + 7 peers, 100 Mbit/s, 1 GiB
//   32x64M     seed + 32 peers, 10 Mbit/s, 64 MiB (a rate at which 2 cores are not the bottleneck)
// Each scenario builds its own network (bench/p2p/topology.ts); each of its P2P_REPEATS (default 3) repeats
// starts a fresh dfscheduler and fresh dfdaemons and has every peer dfget a new file at once
// (bench/p2p/run.ts), then reads back /metrics, eth0 counters, the origin's byte counts, the daemons' and the
// scheduler's logs, each daemon's piece records and CPU (bench/p2p/collect.ts). The report
// (bench/p2p/report.ts) gives the medians beside the targets, against the Kumar–Ross bound
// (bench/p2p/bound.ts) with the raw link rate and with the goodput curl measured over one shaped link.
//
// Env: P2P_SCENARIOS, P2P_REPEATS, P2P_MODES (default ours; see bench/upstream-swarm.ts for the Rust client); overrides for every selected scenario: P2P_PEERS (not cold-seed), P2P_RATE
// (tc rate, e.g. 100mbit), P2P_SIZE (bytes or 16MiB/1GiB), P2P_BURST (tc burst; default rate/200 s, ≥ 16 KiB);
// P2P_GOODPUT_SECONDS (curl length at the link rate, default 10), P2P_TIMEOUT_FACTOR (a download is given up
// after this × the bound, ≥ 2 min; default 5), P2P_LOG_LEVEL (daemons and scheduler, default info: the
// reschedule counts need info), P2P_UPLOAD_LIMIT (the daemons' upload.bandwidthLimit), P2P_KEEP_LOGS (a dir to
// copy the logs to), P2P_RESULTS_DIR (default bench/results).
// Writes p2p-latest.{json,md}, p2p-YYYY-MM-DD.md and p2p-latest-pieces.json; never fails on a number.
// Every process started here is ended by PID (processes in a namespace survive `ip netns del`), the namespaces
// are deleted after each scenario and the temp dir at the end, also on error, SIGINT/SIGTERM/SIGHUP and the
// watchdog (scaled with the scenario list): bench/p2p/main.ts.

import { fileURLToPath } from 'node:url';
import { swarmMain } from './p2p/main.js';
import { PRESETS } from './p2p/scenarios.js';

await swarmMain({
  entryFile: fileURLToPath(import.meta.url),
  defaults: { scenarios: Object.keys(PRESETS), modes: 'ours' },
  resultsPrefix: 'p2p-',
  title: 'P2P benchmark',
});
