// Field errors as Kubernetes 1.32 renders them. Plain values go through the shared `cause` helpers;
// structured values (maps, selectors, int-or-strings) are shown the way Go's `%#v` prints the internal
// type, e.g. `map[string]string{"app":"x"}`, because that is the text kubectl users see in 1.32.
import { cause, type StatusCause } from '../status.js';

/** A value already rendered the Go way. */
export class GoValue {
  constructor(readonly text: string) {}
}

export type BadValue = string | number | boolean | null | undefined | GoValue;

function render(v: BadValue): string {
  if (v instanceof GoValue) return v.text;
  if (typeof v === 'string') return JSON.stringify(v);
  if (v === null || v === undefined) return 'null';
  return String(v);
}

/** `path.child` with an empty root. */
export function child(path: string, ...names: string[]): string {
  return names.reduce((p, n) => (p ? `${p}.${n}` : n), path);
}
export const index = (path: string, i: number) => `${path}[${i}]`;
export const key = (path: string, k: string) => `${path}[${k}]`;

export const fe = {
  required: (field: string, detail = ''): StatusCause => cause.required(field, detail),
  forbidden: (field: string, detail: string): StatusCause => cause.forbidden(field, detail),
  invalid: (field: string, value: BadValue, detail: string): StatusCause =>
    ({ reason: 'FieldValueInvalid', field, message: `Invalid value: ${render(value)}${detail ? ': ' + detail : ''}` }),
  notSupported: (field: string, value: BadValue, valid: readonly string[]): StatusCause =>
    ({ reason: 'FieldValueNotSupported', field, message: `Unsupported value: ${render(value)}${valid.length ? ': supported values: ' + valid.map((s) => JSON.stringify(s)).join(', ') : ''}` }),
  duplicate: (field: string, value: BadValue, detail = ''): StatusCause =>
    ({ reason: 'FieldValueDuplicate', field, message: `Duplicate value: ${render(value)}${detail ? ': ' + detail : ''}` }),
  notFound: (field: string, value: BadValue): StatusCause =>
    ({ reason: 'FieldValueNotFound', field, message: `Not found: ${render(value)}` }),
  tooLong: (field: string, max: number): StatusCause => cause.tooLong(field, undefined, max),
  tooMany: (field: string, actual: number, max: number): StatusCause =>
    ({ reason: 'FieldValueTooMany', field, message: `Too many: ${actual}: must have at most ${max} items` }),
};

export const IS_NEGATIVE = 'must be greater than or equal to 0';
export const IMMUTABLE = 'field is immutable';

export function nonNegative(value: unknown, field: string): StatusCause[] {
  return typeof value === 'number' && value < 0 ? [fe.invalid(field, value, IS_NEGATIVE)] : [];
}

// ---- Go `%#v` renderings of the internal types that show up in messages ---------------------------

const q = (s: string) => JSON.stringify(s);

export function goStringMap(m: unknown): GoValue {
  if (!m || typeof m !== 'object') return new GoValue('map[string]string(nil)');
  const entries = Object.keys(m).sort().map((k) => `${q(k)}:${q(String((m as Record<string, unknown>)[k]))}`);
  return new GoValue(`map[string]string{${entries.join(', ')}}`);
}

function goStrings(list: unknown): string {
  if (!Array.isArray(list)) return '[]string(nil)';
  return `[]string{${list.map((s) => q(String(s))).join(', ')}}`;
}

export function goStringSlice(list: unknown): GoValue {
  return new GoValue(goStrings(list));
}

export function goLabelSelector(sel: unknown): GoValue {
  const s = (sel ?? {}) as { matchLabels?: unknown; matchExpressions?: unknown };
  const exprs = Array.isArray(s.matchExpressions)
    ? `[]v1.LabelSelectorRequirement{${s.matchExpressions.map((e: any) =>
      `v1.LabelSelectorRequirement{Key:${q(String(e?.key ?? ''))}, Operator:${q(String(e?.operator ?? ''))}, Values:${goStrings(e?.values)}}`).join(', ')}}`
    : '[]v1.LabelSelectorRequirement(nil)';
  return new GoValue(`v1.LabelSelector{MatchLabels:${goStringMap(s.matchLabels).text}, MatchExpressions:${exprs}}`);
}

function intOrStringText(v: unknown): string {
  if (typeof v === 'string') return `intstr.IntOrString{Type:1, IntVal:0, StrVal:${q(v)}}`;
  return `intstr.IntOrString{Type:0, IntVal:${typeof v === 'number' ? v : 0}, StrVal:""}`;
}

export function goIntOrString(v: unknown): GoValue {
  return new GoValue(intOrStringText(v));
}

/** The (protocol, port) key Kubernetes reports for duplicate service ports. */
export function goServicePortKey(protocol: string, port: number): GoValue {
  return new GoValue(`core.ServicePort{Name:"", Protocol:${q(protocol)}, AppProtocol:(*string)(nil), Port:${port}, TargetPort:${intOrStringText(0)}, NodePort:0}`);
}

/** Structured values without a faithful Go rendering are shown as JSON (Kubernetes 1.34+ does the same). */
export function jsonValue(v: unknown): GoValue {
  return new GoValue(v === undefined ? 'null' : JSON.stringify(v));
}

/** Kubernetes' semantic equality: deep, order-insensitive for object keys, and absent == null == empty. */
export function semanticEqual(a: unknown, b: unknown): boolean {
  const empty = (v: unknown) => v === undefined || v === null ||
    (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && !Array.isArray(v) && Object.keys(v as object).length === 0);
  if (empty(a) && empty(b)) return true;
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((x, i) => semanticEqual(x, b[i]));
  }
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    const ka = Object.keys(a).filter((k) => !empty((a as any)[k]));
    const kb = Object.keys(b).filter((k) => !empty((b as any)[k]));
    if (ka.length !== kb.length) return false;
    return ka.every((k) => semanticEqual((a as any)[k], (b as any)[k]));
  }
  return a === b;
}

/** A JSON object whose fields are read without further narrowing (validators check each field they use). */
export function isObj(v: unknown): v is Record<string, any> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
