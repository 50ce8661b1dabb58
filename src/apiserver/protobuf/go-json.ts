// Renders a decoded protobuf message as the JSON Go's encoding/json writes for the same Kubernetes
// struct, so a protobuf body becomes exactly the object a JSON client would have sent.
//
// Go's rules, per field (recorded by the generator as the `(go)` option, see schema.ts):
// - pointer fields (`ptr`) are written iff set; the Kubernetes encoder puts them on the wire iff set,
//   so presence on the wire decides, and a present zero (`replicas: 0`) is kept;
// - plain scalars are written unless zero and tagged omitempty (`keep` marks the ones without it);
// - plain structs are always written, even empty (`strategy: {}`, `status: {}`), because omitempty
//   does not apply to structs; an absent one renders as its zero value;
// - empty lists and maps are dropped under omitempty, `null` without it (a nil slice);
// - `inline` fields (Volume's VolumeSource, EnvVarSource refs' LocalObjectReference) merge into
//   the parent object.
// Types with their own JSON form (Time, MicroTime, Quantity, IntOrString, FieldsV1, RawExtension)
// are handled by name.
import protobuf from 'protobufjs';
import { goFlags } from './root.js';
import { rfc3339 } from '../../util/time.js';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Decoded = Record<string, unknown>;

const META = 'k8s.io.apimachinery.pkg.apis.meta.v1.';
const CUSTOM: Record<string, (m: Decoded | undefined) => Json> = {
  [META + 'Time']: (m) => (isSet(m) ? goTime(long(m!.seconds), 0, false) : null),
  [META + 'MicroTime']: (m) => (isSet(m) ? goTime(long(m!.seconds), Number(m!.nanos ?? 0), true) : null),
  [META + 'FieldsV1']: (m) => embeddedJson(m?.Raw, 'FieldsV1'),
  'k8s.io.apimachinery.pkg.runtime.RawExtension': (m) => embeddedJson(m?.raw, 'RawExtension'),
  // Clients send Quantities in canonical form already (Go marshals them through String()), so the
  // string passes through; Go writes a zero Quantity as "0".
  'k8s.io.apimachinery.pkg.api.resource.Quantity': (m) => (typeof m?.string === 'string' && m.string !== '' ? m.string : '0'),
  'k8s.io.apimachinery.pkg.util.intstr.IntOrString': (m) => (long(m?.type) === 1 ? String(m?.strVal ?? '') : Number(m?.intVal ?? 0)),
};

/** Thrown for bodies that decode as protobuf but cannot be rendered (e.g. non-JSON FieldsV1). */
export class RenderError extends Error {}

export function renderMessage(type: protobuf.Type, msg: Decoded | undefined): Json {
  const custom = CUSTOM[type.fullName.slice(1)];
  if (custom) return custom(msg);
  if (goFlags(type.options).has('list')) {
    const items = msg?.items as unknown[] | undefined;
    return items && items.length ? items.map((v) => renderScalar(type.fields.items, v)) : null;
  }
  const out: { [k: string]: Json } = {};
  for (const field of type.fieldsArray) {
    const flags = goFlags(field.options);
    const value = msg?.[field.name];
    const present = msg !== undefined && Object.prototype.hasOwnProperty.call(msg, field.name);
    const sub = field.resolvedType instanceof protobuf.Type ? field.resolvedType : undefined;
    if (flags.has('inline')) {
      const inner = renderMessage(sub!, present ? (value as Decoded) : undefined);
      if (inner && typeof inner === 'object' && !Array.isArray(inner)) Object.assign(out, inner);
      continue;
    }
    const key = typeof field.options?.json_name === 'string' ? field.options.json_name : field.name;
    const keep = flags.has('keep');
    let rendered: Json | undefined;
    if (field.map) {
      const entries = Object.keys((value ?? {}) as object).sort();
      if (entries.length) {
        const obj: { [k: string]: Json } = {};
        for (const k of entries) {
          const v = (value as Decoded)[k];
          obj[k] = sub ? renderMessage(sub, v as Decoded) : renderScalar(field, v);
        }
        rendered = obj;
      } else if (keep) rendered = null;
    } else if (field.repeated) {
      const list = (value ?? []) as unknown[];
      if (list.length) rendered = list.map((v) => (sub ? renderMessage(sub, v as Decoded) : renderScalar(field, v)));
      else if (keep) rendered = null;
    } else if (sub) {
      if (present && value != null) rendered = renderMessage(sub, value as Decoded);
      else if (flags.has('ptr')) rendered = keep ? null : undefined;
      else rendered = renderMessage(sub, undefined);
    } else if (present) {
      const v = renderScalar(field, value);
      if (flags.has('ptr') || keep || !isZero(v)) rendered = v;
    } else if (!flags.has('ptr') && keep) {
      rendered = renderScalar(field, field.typeDefault);
    } else if (flags.has('ptr') && keep) {
      rendered = null;
    }
    if (rendered !== undefined) out[key] = rendered;
  }
  return out;
}

function renderScalar(field: protobuf.Field, v: unknown): Json {
  switch (field.type) {
    case 'bytes': return Buffer.from((v ?? new Uint8Array()) as Uint8Array).toString('base64');
    case 'int64': case 'uint64': case 'sint64': case 'fixed64': case 'sfixed64': return long(v);
    case 'string': return typeof v === 'string' ? v : '';
    case 'bool': return v === true;
    default: return typeof v === 'number' ? v : Number(v ?? 0);
  }
}

function isZero(v: Json): boolean {
  return v === '' || v === 0 || v === false;
}

/** protobufjs gives 64-bit integers as Long objects (long.js is installed) or numbers. */
function long(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v && typeof v === 'object' && 'toNumber' in v) return (v as { toNumber(): number }).toNumber();
  return 0;
}

/** Kubernetes writes a zero Time as an empty message and reads an empty message as the zero Time. */
function isSet(m: Decoded | undefined): boolean {
  return !!m && (Object.prototype.hasOwnProperty.call(m, 'seconds') || Object.prototype.hasOwnProperty.call(m, 'nanos'));
}

/** `2024-01-02T03:04:05Z` (Time keeps whole seconds) or `2024-01-02T03:04:05.123456Z` (MicroTime). */
function goTime(seconds: number, nanos: number, micro: boolean): string {
  const d = new Date(seconds * 1000);
  // Go refuses to marshal years outside 0..9999 as RFC 3339.
  if (Number.isNaN(d.getTime()) || d.getUTCFullYear() < 0 || d.getUTCFullYear() > 9999) {
    throw new RenderError(`time out of range: ${seconds}s since the epoch`);
  }
  if (!micro) return rfc3339(d);
  // The wire carries nanoseconds, finer than a Date holds: the microseconds are written from them.
  const us = Math.floor(Math.max(0, Math.min(nanos, 999_999_999)) / 1000);
  return rfc3339(d).replace(/Z$/, `.${String(us).padStart(6, '0')}Z`);
}

/** FieldsV1 and RawExtension carry JSON bytes that Go's marshaller copies verbatim. */
function embeddedJson(raw: unknown, what: string): Json {
  if (!(raw instanceof Uint8Array) || raw.length === 0) return null;
  try {
    return JSON.parse(Buffer.from(raw).toString('utf8')) as Json;
  } catch {
    throw new RenderError(`${what} does not hold JSON`);
  }
}
