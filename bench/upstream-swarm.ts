// `npm run bench:upstream:swarm`: the netns swarm of `bench:p2p` (bench/p2p/: namespaces, tbf-shaped links, an
// origin, dfscheduler, one seed peer and N peers, piece timelines, the Kumar–Ross bound) run with the upstream Rust
// client (dragonfly-client 1.5.10, `scripts/install-upstream.sh rust`) beside ours, in the same run (issue 13):
//   ours              every host ours
//   rust              every host the Rust dfdaemon + the Rust dfget
//   mixed             our seed; peers 1, 3, … Rust, the others ours
//   mixed-rust-seed   a Rust seed; peers 1, 3, … ours, the others Rust
// All under the same scheduler (our dfscheduler, a fresh one per run), with the same dfdaemon.yaml for both
// clients. The modes take turns inside each repeat. Root: it makes namespaces, veths, a bridge and tc qdiscs.
// The second part of bench:upstream (which compares single downloads on loopback without root); its own entry
// because it needs root and writes the P2P report.
//
// Env: as bench:p2p (bench/p2p.ts); defaults here: P2P_SCENARIOS=8x256M, P2P_MODES=ours,rust,mixed,mixed-rust-seed.
// Our daemons' storage.server.queueLimit (busy answers, ours alone) is unset in the modes with Rust hosts unless
// P2P_QUEUE_LIMIT is given. Writes bench/results/upstream-swarm-latest.{json,md}, upstream-swarm-YYYY-MM-DD.md and
// upstream-swarm-latest-pieces.json; never fails on a number; fails in one line when the Rust client is missing.

import { fileURLToPath } from 'node:url';
import { swarmMain } from './p2p/main.js';
import { MODES } from './p2p/modes.js';

await swarmMain({
  entryFile: fileURLToPath(import.meta.url),
  defaults: { scenarios: ['8x256M'], modes: Object.keys(MODES).join(',') },
  resultsPrefix: 'upstream-swarm-',
  title: 'Swarm with the Rust client',
});
