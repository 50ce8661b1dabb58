// CRD `x-kubernetes-validations`: each rule is evaluated at its schema node with `self` bound to
// the value there and, on updates, `oldSelf` to the stored value at the same place. A rule that
// mentions `oldSelf` is a transition rule: it runs only when an old value exists (never on create,
// never for list items that cannot be correlated). Failures read as Kubernetes words them:
// `spec: Invalid value: "object": <message>` (the "value" is the schema type, as upstream prints it).
import type { StatusCause } from '../../api/status.js';
import type { OpenApiSchema } from '../field-validation.js';
import { compile, evalBool, toCel, CelCompileError } from './evaluate.js';

interface ValidationRule {
  rule: string;
  message?: string;
  messageExpression?: string;
  reason?: string;
  fieldPath?: string;
  optionalOldSelf?: boolean;
}

const NONE = Symbol('none');
type Old = unknown | typeof NONE;

/** Causes for every failing rule of `schema` on `obj` (and `old` for transition rules). */
export function validateCelRules(schema: OpenApiSchema | undefined, obj: unknown, old?: unknown): StatusCause[] {
  const out: StatusCause[] = [];
  if (schema && hasRules(schema)) walk(schema, obj, old === undefined ? NONE : old, '', out);
  return out;
}

/** Compilation errors of every rule in a schema (for validating the CRD itself). */
export function compileCelRules(schema: OpenApiSchema | undefined, path = 'spec.validation.openAPIV3Schema'): StatusCause[] {
  const out: StatusCause[] = [];
  const visit = (s: OpenApiSchema | undefined, p: string) => {
    if (!s || typeof s !== 'object') return;
    const rules = (s as any)['x-kubernetes-validations'] as ValidationRule[] | undefined;
    (rules ?? []).forEach((r, i) => {
      for (const [field, expr] of [['rule', r.rule], ['messageExpression', r.messageExpression]] as const) {
        if (typeof expr !== 'string') continue;
        try { compile(expr); } catch (e) {
          if (e instanceof CelCompileError) out.push({ reason: 'FieldValueInvalid', field: `${p}.x-kubernetes-validations[${i}].${field}`, message: `Invalid value: ${JSON.stringify(expr)}: ${e.message}` });
        }
      }
    });
    for (const [k, v] of Object.entries(s.properties ?? {})) visit(v, `${p}.properties[${k}]`);
    if (s.items) visit(s.items, `${p}.items`);
    if (s.additionalProperties && typeof s.additionalProperties === 'object') visit(s.additionalProperties as OpenApiSchema, `${p}.additionalProperties`);
  };
  visit(schema, path);
  return out;
}

const ruleCache = new WeakMap<object, boolean>();
function hasRules(s: OpenApiSchema): boolean {
  const hit = ruleCache.get(s);
  if (hit !== undefined) return hit;
  let found = Array.isArray((s as any)['x-kubernetes-validations']) && (s as any)['x-kubernetes-validations'].length > 0;
  for (const v of Object.values(s.properties ?? {})) found ||= hasRules(v);
  if (s.items) found ||= hasRules(s.items);
  if (s.additionalProperties && typeof s.additionalProperties === 'object') found ||= hasRules(s.additionalProperties as OpenApiSchema);
  ruleCache.set(s, found);
  return found;
}

function walk(s: OpenApiSchema, v: unknown, old: Old, path: string, out: StatusCause[]): void {
  if (v === undefined || v === null || !hasRules(s)) return;
  const rules = (s as any)['x-kubernetes-validations'] as ValidationRule[] | undefined;
  if (rules?.length) evaluate(rules, s, v, old, path, out);
  if (Array.isArray(v)) {
    if (!s.items) return;
    const keys: string[] | undefined = (s as any)['x-kubernetes-list-type'] === 'map' ? (s as any)['x-kubernetes-list-map-keys'] : undefined;
    const oldList = Array.isArray(old) ? old : [];
    v.forEach((item, i) => {
      // Items are correlated with the old list only through their map keys (as Kubernetes does).
      const match = keys && item && typeof item === 'object'
        ? oldList.find((o) => o && typeof o === 'object' && keys.every((k) => (o as any)[k] === (item as any)[k])) : undefined;
      walk(s.items!, item, match === undefined ? NONE : match, `${path}[${i}]`, out);
    });
    return;
  }
  if (typeof v !== 'object') return;
  const oldObj = old !== NONE && old && typeof old === 'object' ? old as Record<string, unknown> : undefined;
  for (const [k, prop] of Object.entries(s.properties ?? {})) {
    const child = (v as Record<string, unknown>)[k];
    if (child === undefined) continue;
    walk(prop, child, oldObj && k in oldObj ? oldObj[k] : NONE, path ? `${path}.${k}` : k, out);
  }
  if (s.additionalProperties && typeof s.additionalProperties === 'object') {
    for (const [k, child] of Object.entries(v as Record<string, unknown>)) {
      if (s.properties?.[k]) continue;
      walk(s.additionalProperties as OpenApiSchema, child, oldObj && k in oldObj ? oldObj[k] : NONE, `${path}[${k}]`, out);
    }
  }
}

function evaluate(rules: ValidationRule[], s: OpenApiSchema, v: unknown, old: Old, path: string, out: StatusCause[]): void {
  const self = toCel(v);
  const oldSelf = old === NONE ? undefined : toCel(old);
  const type = typeof s.type === 'string' ? s.type : Array.isArray(v) ? 'array' : typeof v === 'object' ? 'object' : typeof v;
  for (const r of rules) {
    if (typeof r.rule !== 'string') continue;
    const transition = /\boldSelf\b/.test(r.rule);
    if (transition && old === NONE && !r.optionalOldSelf) continue;
    const field = r.fieldPath ? (path + r.fieldPath.replace(/^(?!\.|\[)/, '.')).replace(/^\./, '') : path || '<nil>';
    let program;
    try { program = compile(r.rule); } catch (e) {
      out.push({ reason: 'FieldValueInvalid', field, message: `Invalid value: "${type}": ${(e as Error).message}` });
      continue;
    }
    const vars: Record<string, unknown> = { self };
    if (transition) vars.oldSelf = oldSelf ?? null;
    const res = evalBool(program, vars);
    if (!res.ok) {
      out.push({ reason: 'FieldValueInvalid', field, message: `Invalid value: "${type}": ${res.error} evaluating rule: ${r.rule}` });
      continue;
    }
    if (res.value) continue;
    out.push(failure(r, field, type, vars));
  }
}

function failure(r: ValidationRule, field: string, type: string, vars: Record<string, unknown>): StatusCause {
  let message = r.message || `failed rule: ${r.rule}`;
  if (r.messageExpression) {
    try {
      const m = compile(r.messageExpression)(vars);
      if (m.ok && typeof m.value === 'string' && m.value.trim() && !m.value.includes('\n')) message = m.value;
    } catch { /* a broken messageExpression falls back to the message, as in Kubernetes */ }
  }
  switch (r.reason) {
    case 'FieldValueForbidden': return { reason: r.reason, field, message: `Forbidden: ${message}` };
    case 'FieldValueRequired': return { reason: r.reason, field, message: `Required value: ${message}` };
    case 'FieldValueDuplicate': return { reason: r.reason, field, message: `Duplicate value: "${type}": ${message}` };
    default: return { reason: 'FieldValueInvalid', field, message: `Invalid value: "${type}": ${message}` };
  }
}

/** A CRD whose rules do not compile is refused, as kube-apiserver refuses it (every served version). */
export function crdRuleCauses(crd: Record<string, any>): StatusCause[] {
  const versions: any[] = Array.isArray(crd.spec?.versions) ? crd.spec.versions : [];
  return versions.flatMap((v, i) => compileCelRules(v?.schema?.openAPIV3Schema, `spec.versions[${i}].schema.openAPIV3Schema`));
}
