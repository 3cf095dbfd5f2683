// Wire conformance: our proto/ must describe exactly what upstream dragonflyoss/api describes, so that any
// upstream client or server talks to us unchanged. Both trees are reduced to a plain model (packages, messages,
// fields, enums, services; test/helpers/proto-model.ts); any difference fails with a line naming it.
// The upstream protos are taken by name from a registry — the Go module d7y.io/api/v2 at the version the upstream
// client pins — by scripts/fetch-upstream-protos.mjs, into the Go module cache (outside the repository). That needs
// the `go` command and the network the first time, so this check is an e2e test (`npm run test:e2e`), not a unit one.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { describeRoot, diffModels, loadRoot, OURS_PROTO } from '../helpers/proto-model.js';
import { UPSTREAM_PROTO_VERSION, upstreamProtoDir } from '../helpers/upstream-protos.js';

test(`proto/ is wire-identical to the upstream dragonfly-api protos (d7y.io/api/v2 ${UPSTREAM_PROTO_VERSION})`, () => {
  const referenceDir = upstreamProtoDir();
  const ours = describeRoot(loadRoot(OURS_PROTO));
  const ref = describeRoot(loadRoot(referenceDir));
  // Guard against comparing two empty models: the reference must hold the packages we implement.
  for (const p of ['common.v2', 'dfdaemon.v2', 'errordetails.v2', 'manager.v2', 'scheduler.v2']) {
    assert.ok(ref.packages.has(p), `reference has no package ${p}`);
  }
  assert.ok(ref.messages.size > 50, `reference has only ${ref.messages.size} messages`);
  assert.ok(ref.services.size >= 3, `reference has only ${ref.services.size} services`);
  const diffs = diffModels(ours, ref);
  assert.deepEqual(diffs, [], `proto/ differs from ${referenceDir}:\n  ${diffs.join('\n  ')}`);
});
