// A plain model of a proto tree (packages, messages, fields, enums, services) and the comparison of two such
// models, for the wire-conformance checks: test/e2e/proto-conformance.test.ts (proto/ against the upstream protos)
// and test/unit/proto/proto-model.test.ts (the comparison itself). Trees are parsed with protobufjs.

import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** The project's own wire definitions (dist/test/helpers/ → the repo's proto/). */
export const OURS_PROTO = fileURLToPath(new URL('../../../proto', import.meta.url));

export interface FieldModel {
  id: number;
  /** Scalar name, or the resolved full name of a message/enum type. */
  type: string;
  /** Map key type, for map fields. */
  keyType?: string;
  /** repeated | optional (proto3 explicit presence) | singular | map */
  label: string;
  oneof?: string;
}

export interface MessageModel {
  file: string;
  fields: Map<string, FieldModel>;
  oneofs: Map<string, string[]>;
  reserved: string[];
}

export interface EnumModel {
  file: string;
  values: Map<string, number>;
  reserved: string[];
}

export interface MethodModel {
  requestType: string;
  responseType: string;
  requestStream: boolean;
  responseStream: boolean;
}

export interface ServiceModel {
  file: string;
  methods: Map<string, MethodModel>;
}

export interface ApiModel {
  packages: Set<string>;
  messages: Map<string, MessageModel>;
  enums: Map<string, EnumModel>;
  services: Map<string, ServiceModel>;
}

export function loadRoot(dir: string): protobuf.Root {
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.proto'))
    .sort();
  assert.ok(files.length > 0, `no .proto files in ${dir}`);
  const root = new protobuf.Root();
  // Imports name sibling files ("common.proto"); google/protobuf/* come bundled with protobufjs.
  root.resolvePath = (_origin, target) =>
    target.startsWith('google/') ? target : join(dir, basename(target));
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
export function describeRoot(root: protobuf.Root): ApiModel {
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
        model.messages.set(obj.fullName, {
          file: fileOf(obj),
          fields,
          oneofs,
          reserved: reservedOf(obj.reserved),
        });
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
export function diffModels(ours: ApiModel, ref: ApiModel): string[] {
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
