// The inverse of decode.ts: a JSON object (as kubectl would send it in JSON) to the protobuf body a
// Kubernetes client sends. Tests use it for kinds kubectl cannot easily be made to post (Eviction,
// Pod, Lease, ...); the server does not need it.
import protobuf from 'protobufjs';
import { PROTOBUF_MAGIC } from './decode.js';
import { goFlags, protoRoot } from './root.js';
import { KINDS } from './schema.js';

type Plain = Record<string, unknown>;

/** Encodes `obj` (with apiVersion and kind) as `k8s\0` + runtime.Unknown. Throws Error on unknown kinds. */
export function encodeProtobuf(obj: Plain): Buffer {
  const apiVersion = String(obj.apiVersion ?? '');
  const kind = String(obj.kind ?? '');
  const name = Object.hasOwn(KINDS, apiVersion) && Object.hasOwn(KINDS[apiVersion], kind) ? KINDS[apiVersion][kind]
    : kind === 'DeleteOptions' ? KINDS['meta.k8s.io/v1'].DeleteOptions : undefined;
  if (!name) throw new Error(`no protobuf message for ${apiVersion} ${kind}`);
  const root = protoRoot();
  const type = root.lookupType(name);
  const raw = type.encode(type.fromObject(toProto(type, obj))).finish();
  const unknown = root.lookupType('k8s.io.apimachinery.pkg.runtime.Unknown');
  const envelope = unknown.encode(unknown.fromObject({ typeMeta: { apiVersion, kind }, raw })).finish();
  return Buffer.concat([PROTOBUF_MAGIC, envelope]);
}

const META = 'k8s.io.apimachinery.pkg.apis.meta.v1.';
const json = (v: unknown) => Buffer.from(JSON.stringify(v));
const CUSTOM: Record<string, (v: unknown) => Plain> = {
  [META + 'Time']: (v) => (v == null ? {} : { seconds: Math.floor(Date.parse(String(v)) / 1000) }),
  [META + 'MicroTime']: (v) => {
    if (v == null) return {};
    const s = String(v);
    const frac = /\.(\d+)/.exec(s)?.[1] ?? '';
    return { seconds: Math.floor(Date.parse(s) / 1000), nanos: Number(frac.padEnd(9, '0').slice(0, 9)) };
  },
  [META + 'FieldsV1']: (v) => ({ Raw: json(v) }),
  'k8s.io.apimachinery.pkg.runtime.RawExtension': (v) => (v == null ? {} : { raw: json(v) }),
  'k8s.io.apimachinery.pkg.api.resource.Quantity': (v) => ({ string: String(v) }),
  'k8s.io.apimachinery.pkg.util.intstr.IntOrString': (v) => (typeof v === 'string' ? { type: 1, strVal: v } : { type: 0, intVal: v }),
};

/** JSON field values to the plain object protobufjs' fromObject expects. */
function toProto(type: protobuf.Type, value: unknown): Plain {
  const custom = CUSTOM[type.fullName.slice(1)];
  if (custom) return custom(value);
  if (goFlags(type.options).has('list')) return { items: value };
  const obj = (value ?? {}) as Plain;
  const out: Plain = {};
  for (const field of type.fieldsArray) {
    const sub = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    if (goFlags(field.options).has('inline')) {
      out[field.name] = toProto(sub!, obj);
      continue;
    }
    const key = typeof field.options?.json_name === 'string' ? field.options.json_name : field.name;
    const v = obj[key];
    if (v == null) continue;
    if (!sub) out[field.name] = v;
    else if (field.map) out[field.name] = Object.fromEntries(Object.entries(v as Plain).map(([k, x]) => [k, toProto(sub, x)]));
    else if (field.repeated) out[field.name] = (v as unknown[]).map((x) => toProto(sub, x));
    else out[field.name] = toProto(sub, v);
  }
  return out;
}
