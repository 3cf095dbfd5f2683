// The proto comparison of the conformance check (test/helpers/proto-model.ts) must not be vacuous: each kind of
// difference between two trees is reported with a line naming it. The trees are proto/ and a mutated copy of it,
// so this runs with nothing but the repository; test/e2e/proto-conformance.test.ts compares proto/ with upstream.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import protobuf from 'protobufjs';
import { describeRoot, diffModels, loadRoot, OURS_PROTO } from '../../helpers/proto-model.js';

test('proto/ compared with itself has no difference, and holds the five packages', () => {
  const ours = describeRoot(loadRoot(OURS_PROTO));
  for (const p of ['common.v2', 'dfdaemon.v2', 'errordetails.v2', 'manager.v2', 'scheduler.v2']) {
    assert.ok(ours.packages.has(p), `proto/ has no package ${p}`);
  }
  assert.deepEqual(diffModels(ours, describeRoot(loadRoot(OURS_PROTO))), []);
});

test('the comparison reports each kind of difference (it is not vacuous)', async (t) => {
  // Each case mutates a freshly parsed copy of proto/ and names a line the comparer must report against proto/ as it
  // is (the "reference" side here; upstream's protos in the e2e check).
  const ref = describeRoot(loadRoot(OURS_PROTO));
  const cases: Array<{ name: string; mutate: (root: protobuf.Root) => void; expect: RegExp }> = [
    {
      name: 'field number',
      mutate: (r) => {
        r.lookupType('common.v2.Piece').fields['number']!.id = 99;
      },
      expect: /^message \.common\.v2\.Piece field number number: ours 99, reference \d+$/,
    },
    {
      name: 'field type',
      mutate: (r) => {
        const f = r.lookupType('common.v2.Piece').fields['length']!;
        f.type = 'uint32';
        f.resolvedType = null;
      },
      expect: /^message \.common\.v2\.Piece field length type: ours "uint32", reference "uint64"$/,
    },
    {
      name: 'label',
      mutate: (r) => {
        r.lookupType('common.v2.Piece').fields['length']!.repeated = true;
      },
      expect: /^message \.common\.v2\.Piece field length label: ours "repeated", reference "singular"$/,
    },
    {
      name: 'explicit presence (proto3 optional)',
      mutate: (r) => {
        const f = r.lookupType('common.v2.Piece').fields['parent_id']!;
        f.options = { ...f.options, proto3_optional: false };
      },
      expect: /^message \.common\.v2\.Piece field parent_id label: ours "singular", reference "optional"$/,
    },
    {
      name: 'map key type',
      mutate: (r) => {
        const f = r.lookupType('dfdaemon.v2.DownloadTaskStartedResponse').fields['response_header']!;
        (f as unknown as protobuf.MapField).keyType = 'int32';
      },
      expect: /^message \.dfdaemon\.v2\.DownloadTaskStartedResponse field response_header map key type: ours "int32", reference "string"$/,
    },
    {
      name: 'oneof membership',
      mutate: (r) => {
        const f = r.lookupType('common.v2.Piece').fields['parent_id']!;
        f.partOf!.remove(f);
      },
      expect: /^message \.common\.v2\.Piece field parent_id oneof: ours none, reference "_parent_id"$/,
    },
    {
      name: 'renamed field',
      mutate: (r) => {
        const type = r.lookupType('common.v2.Piece');
        const f = type.fields['length']!;
        type.remove(f);
        type.add(new protobuf.Field('len', f.id, f.type));
      },
      expect: /^message \.common\.v2\.Piece field length: missing in proto\/$/,
    },
    {
      name: 'extra message',
      mutate: (r) => {
        (r.lookup('common.v2') as protobuf.Namespace).add(new protobuf.Type('Extra'));
      },
      expect: /^message \.common\.v2\.Extra: not in the reference$/,
    },
    {
      name: 'enum value',
      mutate: (r) => {
        const e = r.lookupEnum('common.v2.TaskType');
        const first = Object.keys(e.values)[1]!;
        e.values[first] = 42;
      },
      expect: /^enum \.common\.v2\.TaskType value \w+ number: ours 42, reference \d+$/,
    },
    {
      name: 'reserved range',
      mutate: (r) => {
        const type = r.lookupType('common.v2.Piece');
        type.reserved = [...(type.reserved ?? []), [100, 101]];
      },
      expect: /^message \.common\.v2\.Piece reserved: ours .*range 100\.\.101.*, reference/,
    },
    {
      name: 'streaming flag',
      mutate: (r) => {
        const s = r.lookupService('dfdaemon.v2.DfdaemonDownload');
        s.methods['DownloadTask']!.responseStream = false;
      },
      expect: /^service \.dfdaemon\.v2\.DfdaemonDownload rpc DownloadTask server streaming: ours false, reference true$/,
    },
    {
      name: 'package',
      mutate: (r) => {
        r.define('extra.v1').add(new protobuf.Type('Thing'));
      },
      expect: /^package set: ours .*"extra\.v1".*, reference/,
    },
  ];
  for (const c of cases) {
    await t.test(c.name, () => {
      const root = loadRoot(OURS_PROTO);
      c.mutate(root);
      const diffs = diffModels(describeRoot(root), ref);
      assert.ok(
        diffs.some((d) => c.expect.test(d)),
        `expected a difference matching ${c.expect}, got:\n  ${diffs.join('\n  ')}`,
      );
    });
  }
});
