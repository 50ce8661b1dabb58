// Field-level checks of request bodies against the API schema, worded as Kubernetes words them.
// Built-in kinds: unknown fields (`?fieldValidation=Strict` answers 400 `strict decoding error: unknown
// field "spec.foo"`, Warn adds `Warning` headers; the caller does that) and JSON type mismatches
// (Kubernetes' JSON decoder rejects those with 400 whatever the fieldValidation).
// Custom resources: validation against the CRD's openAPIV3Schema, and pruning of unknown fields.
// Duplicate JSON keys cannot be seen after JSON.parse; detecting them is the body decoder's job.

import type { FieldSchema, SchemaSet, TypeSchema } from '../api/schema-types.js';
import { isPlainObject } from '../api/object.js';
import { cause, type StatusCause } from '../api/status.js';

// ---------------------------------------------------------------------------------------------------
// Built-in kinds

export interface FieldProblems {
  /** Paths of fields the schema does not know, e.g. `spec.template.spec.containers[0].imagePullPolicyy`. */
  unknown: string[];
  /** Values of the wrong JSON type, with the message Kubernetes' decoder gives (first one is what it reports). */
  typeErrors: StatusCause[];
}

/** Walks `obj` as a `type` once, collecting unknown fields and type mismatches. */
export function checkFields(obj: unknown, type: TypeSchema, schemas: SchemaSet): FieldProblems {
  const out: FieldProblems = { unknown: [], typeErrors: [] };
  walkType(obj, type, { schemas, out, at: [] });
  return out;
}

export function findUnknownFields(obj: unknown, type: TypeSchema, schemas: SchemaSet): string[] {
  return checkFields(obj, type, schemas).unknown;
}

export function findTypeErrors(obj: unknown, type: TypeSchema, schemas: SchemaSet): StatusCause[] {
  return checkFields(obj, type, schemas).typeErrors;
}

/** The 400 message for a body that does not decode: `Deployment in version "v1" cannot be handled as a Deployment: json: ...`. */
export function decodeErrorMessage(kind: string, version: string, typeError: StatusCause): string {
  return `${kind} in version "${version}" cannot be handled as a ${kind}: ${typeError.message}`;
}

/** `strict decoding error: unknown field "spec.foo", unknown field "spec.bar"` (400 under Strict). */
export function strictDecodingMessage(unknown: string[]): string {
  return `strict decoding error: ${unknown.map((p) => `unknown field "${p}"`).join(', ')}`;
}

/**
 * One walk's state. `at` is where the walk is: a struct field's name, a list index (a number) or a
 * map key (in a `MapKey`). The paths are built from it only for a field that is reported: this
 * runs on every write of every object, and building two strings per field visited was most of
 * what it allocated.
 */
interface Walk { schemas: SchemaSet; out: FieldProblems; at: (string | number | MapKey)[] }
class MapKey { constructor(readonly key: string) {} }

/** The field path with list indices and map keys (`spec.containers[0].image`), for causes and unknown-field reports. */
function pathOf(at: Walk['at']): string {
  let p = '';
  for (const s of at) {
    if (typeof s === 'number') p += `[${s}]`;
    else { const name = typeof s === 'string' ? s : s.key; p = p ? `${p}.${name}` : name; }
  }
  return p;
}

/** The same without indices and map keys, as Go's decoder names the field in its messages. */
function goPathOf(at: Walk['at']): string {
  let p = '';
  for (const s of at) if (typeof s === 'string') p = p ? `${p}.${s}` : s;
  return p;
}

function walkType(value: unknown, type: TypeSchema, w: Walk): void {
  if (!isPlainObject(value)) return;
  for (const name in value) {
    if (!Object.hasOwn(value, name)) continue;
    w.at.push(name);
    const field = type.properties[name];
    if (!field) w.out.unknown.push(pathOf(w.at));
    else walkField(value[name], field, type.name, w);
    w.at.pop();
  }
}

function walkField(value: unknown, f: FieldSchema, struct: string, w: Walk): void {
  // Go decodes null into any field as its zero value.
  if (value === null) return;
  const mismatch = jsonKindMismatch(value, f);
  if (mismatch) {
    w.out.typeErrors.push({
      reason: 'FieldValueTypeInvalid', field: pathOf(w.at),
      message: `json: cannot unmarshal ${mismatch} into Go struct field ${goTypeName(struct)}.${goPathOf(w.at)} of type ${goType(f)}`,
    });
    return;
  }
  switch (f.kind) {
    case 'object': {
      const t = w.schemas.type(f.ref!);
      if (t) walkType(value, t, w);
      return;
    }
    case 'array': {
      const items = value as unknown[];
      for (let i = 0; i < items.length; i++) {
        w.at.push(i);
        walkField(items[i], f.items!, struct, w);
        w.at.pop();
      }
      return;
    }
    case 'map': {
      const m = value as Record<string, unknown>;
      for (const k in m) {
        if (!Object.hasOwn(m, k)) continue;
        w.at.push(new MapKey(k));
        walkField(m[k], f.values!, struct, w);
        w.at.pop();
      }
      return;
    }
  }
}

/** Go's name for a JSON value that does not fit the field (`string`, `number 1.5`, `object`...), or ''. */
function jsonKindMismatch(v: unknown, f: FieldSchema): string {
  const kind = goJsonKind(v);
  switch (f.kind) {
    case 'string': case 'date-time': return kind === 'string' ? '' : kind;
    case 'integer':
      if (kind !== 'number') return kind;
      return Number.isInteger(v) ? '' : `number ${v}`;
    case 'number': return kind === 'number' ? '' : kind;
    case 'boolean': return kind === 'bool' ? '' : kind;
    case 'int-or-string': case 'quantity': return kind === 'string' || kind === 'number' ? '' : kind;
    case 'object': case 'map': return kind === 'object' ? '' : kind;
    case 'array': return kind === 'array' ? '' : kind;
    case 'any': return '';
  }
}

function goJsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'boolean') return 'bool';
  return typeof v === 'object' ? 'object' : typeof v;
}

/** `V1DeploymentSpec` → `DeploymentSpec`, `CoreV1Event` → `Event`. */
function goTypeName(model: string): string {
  return /^(?:[A-Z][a-z]+)?V\d+(?:alpha\d+|beta\d+)?([A-Z]\w*)$/.exec(model)?.[1] ?? model;
}

/** The Go type Kubernetes declares for a field, as reflect prints it (`int32`, `[]v1.Container`, `map[string]string`). */
function goType(f: FieldSchema): string {
  switch (f.kind) {
    case 'string': return 'string';
    case 'integer': return f.format ?? 'int64';
    case 'number': return 'float64';
    case 'boolean': return 'bool';
    case 'date-time': return 'v1.Time';
    case 'int-or-string': return 'intstr.IntOrString';
    case 'quantity': return 'resource.Quantity';
    case 'any': return 'runtime.RawExtension';
    case 'object': {
      const m = /^(?:[A-Z][a-z]+)?(V\d+(?:alpha\d+|beta\d+)?)([A-Z]\w*)$/.exec(f.ref!);
      return m ? `${m[1].toLowerCase()}.${m[2]}` : f.ref!;
    }
    case 'array': return `[]${goType(f.items!)}`;
    case 'map': return `map[string]${goType(f.values!)}`;
  }
}

// ---------------------------------------------------------------------------------------------------
// Custom resources: structural openAPIV3Schema

/** The subset of JSONSchemaProps that CRD structural schemas use. */
export interface OpenApiSchema {
  type?: string;
  format?: string;
  description?: string;
  properties?: Record<string, OpenApiSchema>;
  additionalProperties?: OpenApiSchema | boolean;
  items?: OpenApiSchema;
  required?: string[];
  enum?: unknown[];
  nullable?: boolean;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean;
  exclusiveMaximum?: boolean;
  multipleOf?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  minProperties?: number;
  maxProperties?: number;
  default?: unknown;
  'x-kubernetes-preserve-unknown-fields'?: boolean;
  'x-kubernetes-int-or-string'?: boolean;
  'x-kubernetes-embedded-resource'?: boolean;
  [extension: string]: unknown;
}

export interface SchemaValidation {
  causes: StatusCause[];
  /** Fields the schema does not declare (and does not preserve): what pruning drops. */
  unknownFields: string[];
}

/**
 * Validates a custom resource against its version's openAPIV3Schema, worded as kube-openapi and the
 * apiextensions server word it: `spec.replicas: Invalid value: "string": spec.replicas in body must
 * be of type integer: "string"`. The root's apiVersion, kind and metadata are validated elsewhere.
 */
export function validateAgainstOpenApiSchema(obj: unknown, schema: OpenApiSchema): SchemaValidation {
  const out: SchemaValidation = { causes: [], unknownFields: [] };
  validateNode(obj, schema, '', out, true);
  return out;
}

function validateNode(v: unknown, s: OpenApiSchema, path: string, out: SchemaValidation, root = false): void {
  const name = path || '.';
  if (v === null) {
    if (!s.nullable && s.type && !s['x-kubernetes-preserve-unknown-fields']) typeInvalid(out, path, s.type, 'null');
    return;
  }
  const jt = jsonSchemaType(v);
  if (s['x-kubernetes-int-or-string']) {
    if (jt !== 'integer' && jt !== 'string') {
      typeInvalid(out, path, 'integer', jt);
      typeInvalid(out, path, 'string', jt);
      return;
    }
  } else if (s.type && !(s.type === jt || (s.type === 'number' && jt === 'integer'))) {
    typeInvalid(out, path, s.type, jt);
    return;
  }
  if (s.enum && !s.enum.some((e) => deepEqual(e, v))) {
    // Non-string enum values are listed as their JSON, then quoted like the strings.
    out.causes.push(cause.notSupported(path, v, s.enum.map((e) => (typeof e === 'string' ? e : JSON.stringify(e)))));
  }
  if (typeof v === 'number') checkNumber(v, s, name, path, out);
  else if (typeof v === 'string') checkString(v, s, name, path, out);
  else if (Array.isArray(v)) {
    if (s.minItems !== undefined && v.length < s.minItems) invalid(out, path, v, `${name} in body should have at least ${s.minItems} items`);
    if (s.maxItems !== undefined && v.length > s.maxItems) {
      out.causes.push({ reason: 'FieldValueTooMany', field: path, message: `Too many: ${v.length}: must have at most ${s.maxItems} items` });
    }
    if (s.uniqueItems && v.some((a, i) => v.findIndex((b) => deepEqual(a, b)) !== i)) {
      invalid(out, path, v, `${name} in body shouldn't contain duplicates`);
    }
    if (s.items) v.forEach((item, i) => validateNode(item, s.items!, `${path}[${i}]`, out));
  } else if (isPlainObject(v)) {
    for (const r of s.required ?? []) {
      if (!(r in v)) out.causes.push(cause.required(join(path, r)));
    }
    const n = Object.keys(v).length;
    if (s.minProperties !== undefined && n < s.minProperties) invalid(out, path, v, `${name} in body should have at least ${s.minProperties} properties`);
    if (s.maxProperties !== undefined && n > s.maxProperties) {
      out.causes.push({ reason: 'FieldValueTooMany', field: path, message: `Too many: ${n}: must have at most ${s.maxProperties} items` });
    }
    for (const [k, child] of Object.entries(v)) {
      if (root && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) continue;
      if (s['x-kubernetes-embedded-resource'] && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) continue;
      const p = join(path, k);
      const prop = s.properties?.[k];
      if (prop) validateNode(child, prop, p, out);
      else if (isPlainObject(s.additionalProperties)) validateNode(child, s.additionalProperties, p, out);
      else if (!s['x-kubernetes-preserve-unknown-fields'] && s.additionalProperties !== true) out.unknownFields.push(p);
    }
  }
}

function checkNumber(v: number, s: OpenApiSchema, name: string, path: string, out: SchemaValidation): void {
  if (s.minimum !== undefined && (s.exclusiveMinimum ? v <= s.minimum : v < s.minimum)) {
    invalid(out, path, v, `${name} in body should be greater than ${s.exclusiveMinimum ? '' : 'or equal to '}${s.minimum}`);
  }
  if (s.maximum !== undefined && (s.exclusiveMaximum ? v >= s.maximum : v > s.maximum)) {
    invalid(out, path, v, `${name} in body should be less than ${s.exclusiveMaximum ? '' : 'or equal to '}${s.maximum}`);
  }
  if (s.multipleOf !== undefined && s.multipleOf > 0 && !Number.isInteger(v / s.multipleOf)) {
    invalid(out, path, v, `${name} in body should be a multiple of ${s.multipleOf}`);
  }
}

function checkString(v: string, s: OpenApiSchema, name: string, path: string, out: SchemaValidation): void {
  // Lengths count characters (runes), as Go's utf8.RuneCountInString does.
  const len = [...v].length;
  if (s.maxLength !== undefined && len > s.maxLength) out.causes.push(cause.tooLong(path, v, s.maxLength));
  if (s.minLength !== undefined && len < s.minLength) invalid(out, path, v, `${name} in body should be at least ${s.minLength} chars long`);
  if (s.pattern !== undefined && !compilePattern(s.pattern).test(v)) invalid(out, path, v, `${name} in body should match '${s.pattern}'`);
}

const patterns = new Map<string, RegExp>();
function compilePattern(p: string): RegExp {
  let re = patterns.get(p);
  if (!re) { re = new RegExp(p, 'u'); patterns.set(p, re); }
  return re;
}

function typeInvalid(out: SchemaValidation, path: string, want: string, got: string): void {
  out.causes.push(cause.typeInvalid(path, got, `${path || '.'} in body must be of type ${want}: "${got}"`));
}

function invalid(out: SchemaValidation, path: string, v: unknown, detail: string): void {
  out.causes.push(cause.invalid(path, v, detail));
}

/** JSON Schema's name for a decoded value's type; integers are told apart from other numbers. */
function jsonSchemaType(v: unknown): string {
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) return Array.isArray(b) && a.length === b.length && a.every((x, i) => deepEqual(x, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => k in b && deepEqual(a[k], b[k]));
  }
  return false;
}

/**
 * Drops the fields a structural schema does not declare, as the apiextensions server does before
 * storing a custom resource, and returns their paths (reported as unknown fields under Strict/Warn).
 * The root's apiVersion/kind/metadata and those of embedded resources are kept.
 */
export function pruneUnknownFields(obj: unknown, schema: OpenApiSchema): string[] {
  const pruned: string[] = [];
  prune(obj, schema, '', pruned, true);
  return pruned;
}

function prune(v: unknown, s: OpenApiSchema, path: string, pruned: string[], keepTypeMeta: boolean): void {
  if (Array.isArray(v)) {
    if (s.items) v.forEach((item, i) => prune(item, s.items!, `${path}[${i}]`, pruned, !!s.items!['x-kubernetes-embedded-resource']));
    return;
  }
  if (!isPlainObject(v)) return;
  for (const k of Object.keys(v)) {
    if (keepTypeMeta && (k === 'apiVersion' || k === 'kind' || k === 'metadata')) continue;
    const p = join(path, k);
    const prop = s.properties?.[k] ?? (isPlainObject(s.additionalProperties) ? s.additionalProperties : undefined);
    if (prop) prune(v[k], prop, p, pruned, !!prop['x-kubernetes-embedded-resource']);
    else if (!s['x-kubernetes-preserve-unknown-fields'] && s.additionalProperties !== true) {
      delete v[k];
      pruned.push(p);
    }
  }
}
