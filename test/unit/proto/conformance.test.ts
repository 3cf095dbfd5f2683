// Wire conformance: our proto/ must describe exactly what upstream dragonflyoss/api describes, so that any
// upstream client or server talks to us unchanged. Both trees are parsed with protobufjs and reduced to a
// plain model (packages, messages, fields, enums, services); any difference fails with a line naming it.
// The reference is read in place from ../shared/reference (never copied into the project).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

// This file runs as dist/test/unit/proto/conformance.test.js: the repo root is four levels up.
const repoRoot = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../../..');
const oursDir = join(repoRoot, 'proto');
const referenceDir = resolve(repoRoot, '../shared/reference/dragonfly-api/proto');

interface FieldModel {
  id: number;
  /** Scalar name, or the resolved full name of a message/enum type. */
  type: string;
  /** Map key type, for map fields. */
  keyType?: string;
  /** repeated | optional (proto3 explicit presence) | singular | map */
  label: string;
  oneof?: string;
}

interface MessageModel {
  file: string;
  fields: Map<string, FieldModel>;
  oneofs: Map<string, string[]>;
  reserved: string[];
}

interface EnumModel {
  file: string;
  values: Map<string, number>;
  reserved: string[];
}

interface MethodModel {
  requestType: string;
  responseType: string;
  requestStream: boolean;
  responseStream: boolean;
}

interface ServiceModel {
  file: string;
  methods: Map<string, MethodModel>;
}

interface ApiModel {
  packages: Set<string>;
  messages: Map<string, MessageModel>;
  enums: Map<string, EnumModel>;
  services: Map<string, ServiceModel>;
}

function loadRoot(dir: string): protobuf.Root {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.proto'))
    .sort();
  assert.ok(files.length > 0, `no .proto files in ${dir}`);
  const root = new protobuf.Root();
  // Imports name sibling files ("common.proto"); google/protobuf/* come bundled with protobufjs.
  root.resolvePath = (_origin, target) => (target.startsWith('google/') ? target : join(dir, basename(target)));
  root.loadSync(
    files.map((f) => join(dir, f)),
    { keepCase: true, alternateCommentMode: false },
  );
  root.resolveAll();
  return root;
}

const isWellKnown = (fullName: string): boolean => fullName.startsWith('.google.');
const fileOf = (o: protobuf.ReflectionObject): string => (o.filename ? basename(o.filename) : '?');
const reservedOf = (r: (number[] | string)[] | undefined): string[] =>
  (r ?? []).map((x) => (typeof x === 'string' ? `name ${x}` : `range ${x[0]}..${x[1]}`)).sort();

/** Reduces a parsed root to the model compared below. google.* well-known types are left out. */
function describeRoot(root: protobuf.Root): ApiModel {
  const model: ApiModel = { packages: new Set(), messages: new Map(), enums: new Map(), services: new Map() };
  const visit = (ns: protobuf.NamespaceBase): void => {
    for (const obj of ns.nestedArray) {
      if (isWellKnown(obj.fullName)) continue;
      // A package is a plain namespace directly holding definitions.
      const parentIsPackage = !(ns instanceof protobuf.Type) && !(ns instanceof protobuf.Root);
      if (obj instanceof protobuf.Type) {
        if (parentIsPackage) model.packages.add(ns.fullName.replace(/^\./, ''));
        const fields = new Map<string, FieldModel>();
        for (const f of obj.fieldsArray) {
          const isMap = f instanceof protobuf.MapField;
          fields.set(f.name, {
            id: f.id,
            type: f.resolvedType ? f.resolvedType.fullName : f.type,
            keyType: isMap ? f.keyType : undefined,
            label: isMap
              ? 'map'
              : f.repeated
                ? 'repeated'
                : f.options?.proto3_optional === true
                  ? 'optional'
                  : f.required
                    ? 'required'
                    : 'singular',
            oneof: f.partOf?.name,
          });
        }
        const oneofs = new Map<string, string[]>();
        for (const o of obj.oneofsArray) oneofs.set(o.name, [...o.oneof].sort());
        model.messages.set(obj.fullName, { file: fileOf(obj), fields, oneofs, reserved: reservedOf(obj.reserved) });
        visit(obj);
      } else if (obj instanceof protobuf.Enum) {
        if (parentIsPackage) model.packages.add(ns.fullName.replace(/^\./, ''));
        model.enums.set(obj.fullName, {
          file: fileOf(obj),
          values: new Map(Object.entries(obj.values)),
          reserved: reservedOf(obj.reserved),
        });
      } else if (obj instanceof protobuf.Service) {
        if (parentIsPackage) model.packages.add(ns.fullName.replace(/^\./, ''));
        const methods = new Map<string, MethodModel>();
        for (const m of obj.methodsArray) {
          methods.set(m.name, {
            requestType: m.resolvedRequestType?.fullName ?? m.requestType,
            responseType: m.resolvedResponseType?.fullName ?? m.responseType,
            requestStream: m.requestStream === true,
            responseStream: m.responseStream === true,
          });
        }
        model.services.set(obj.fullName, { file: fileOf(obj), methods });
      } else if (obj instanceof protobuf.Namespace) {
        visit(obj);
      }
    }
  };
  visit(root);
  return model;
}

function diffKeys<T>(
  what: string,
  ours: Map<string, T>,
  ref: Map<string, T>,
  out: string[],
  each: (name: string, a: T, b: T) => void,
): void {
  for (const k of [...ref.keys()].sort()) if (!ours.has(k)) out.push(`${what} ${k}: missing in proto/`);
  for (const k of [...ours.keys()].sort()) if (!ref.has(k)) out.push(`${what} ${k}: not in the reference`);
  for (const k of [...ours.keys()].sort()) if (ref.has(k)) each(k, ours.get(k)!, ref.get(k)!);
}

function diffValue(where: string, ours: unknown, ref: unknown, out: string[]): void {
  const a = JSON.stringify(ours);
  const b = JSON.stringify(ref);
  if (a !== b) out.push(`${where}: ours ${a ?? 'none'}, reference ${b ?? 'none'}`);
}

/** Every difference between two models, one line each; empty when they describe the same wire API. */
function diffModels(ours: ApiModel, ref: ApiModel): string[] {
  const out: string[] = [];
  diffValue('package set', [...ours.packages].sort(), [...ref.packages].sort(), out);
  diffKeys('message', ours.messages, ref.messages, out, (name, a, b) => {
    diffValue(`message ${name} file`, a.file, b.file, out);
    diffKeys(`message ${name} field`, a.fields, b.fields, out, (field, fa, fb) => {
      const where = `message ${name} field ${field}`;
      diffValue(`${where} number`, fa.id, fb.id, out);
      diffValue(`${where} type`, fa.type, fb.type, out);
      diffValue(`${where} map key type`, fa.keyType, fb.keyType, out);
      diffValue(`${where} label`, fa.label, fb.label, out);
      diffValue(`${where} oneof`, fa.oneof, fb.oneof, out);
    });
    diffKeys(`message ${name} oneof`, a.oneofs, b.oneofs, out, (oneof, oa, ob) =>
      diffValue(`message ${name} oneof ${oneof} members`, oa, ob, out),
    );
    diffValue(`message ${name} reserved`, a.reserved, b.reserved, out);
  });
  diffKeys('enum', ours.enums, ref.enums, out, (name, a, b) => {
    diffValue(`enum ${name} file`, a.file, b.file, out);
    diffKeys(`enum ${name} value`, a.values, b.values, out, (v, na, nb) =>
      diffValue(`enum ${name} value ${v} number`, na, nb, out),
    );
    diffValue(`enum ${name} reserved`, a.reserved, b.reserved, out);
  });
  diffKeys('service', ours.services, ref.services, out, (name, a, b) => {
    diffValue(`service ${name} file`, a.file, b.file, out);
    diffKeys(`service ${name} rpc`, a.methods, b.methods, out, (m, ma, mb) => {
      const where = `service ${name} rpc ${m}`;
      diffValue(`${where} request type`, ma.requestType, mb.requestType, out);
      diffValue(`${where} response type`, ma.responseType, mb.responseType, out);
      diffValue(`${where} client streaming`, ma.requestStream, mb.requestStream, out);
      diffValue(`${where} server streaming`, ma.responseStream, mb.responseStream, out);
    });
  });
  return out;
}

test('proto/ is wire-identical to the upstream dragonfly-api protos', () => {
  const ours = describeRoot(loadRoot(oursDir));
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

test('the comparison reports each kind of difference (it is not vacuous)', async (t) => {
  const ref = describeRoot(loadRoot(referenceDir));
  // Each case mutates a freshly parsed copy of proto/ and names a line the comparer must report.
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
      const root = loadRoot(oursDir);
      c.mutate(root);
      const diffs = diffModels(describeRoot(root), ref);
      assert.ok(
        diffs.some((d) => c.expect.test(d)),
        `expected a difference matching ${c.expect}, got:\n  ${diffs.join('\n  ')}`,
      );
    });
  }
});
