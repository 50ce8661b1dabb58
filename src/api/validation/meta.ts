// ObjectMeta, labels, annotations and label selectors: the checks every kind shares
// (apimachinery's api/validation and meta/v1/validation).
import type { StatusCause } from '../status.js';
import type { ObjectMeta } from '../object.js';
import { labelSelectorRequirements, type LabelSelector } from '../selectors.js';
import { child, fe, goLabelSelector, goStringSlice, IMMUTABLE, index, jsonValue, nonNegative, semanticEqual, type BadValue, isObj } from './field.js';
import { isDNS1123Label, isQualifiedName, isValidLabelValue, type NameFn } from './names.js';

const TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024;
const STANDARD_FINALIZERS = new Set(['kubernetes', 'orphan', 'foregroundDeletion']);

export function validateLabelName(name: string, field: string): StatusCause[] {
  return isQualifiedName(name).map((m) => fe.invalid(field, name, m));
}

export function validateLabels(labels: unknown, field: string): StatusCause[] {
  if (!isObj(labels)) return [];
  const out: StatusCause[] = [];
  for (const [k, v] of Object.entries(labels)) {
    out.push(...validateLabelName(k, field));
    const value = typeof v === 'string' ? v : String(v);
    for (const m of isValidLabelValue(value)) out.push(fe.invalid(field, value, m));
  }
  return out;
}

export function validateAnnotations(annotations: unknown, field: string): StatusCause[] {
  if (!isObj(annotations)) return [];
  const out: StatusCause[] = [];
  let size = 0;
  for (const [k, v] of Object.entries(annotations)) {
    for (const m of isQualifiedName(k.toLowerCase())) out.push(fe.invalid(field, k, m));
    size += Buffer.byteLength(k) + Buffer.byteLength(String(v));
  }
  if (size > TOTAL_ANNOTATION_SIZE_LIMIT) out.push(fe.tooLong(field, TOTAL_ANNOTATION_SIZE_LIMIT));
  return out;
}

function validateOwnerReferences(refs: unknown, field: string): StatusCause[] {
  if (!Array.isArray(refs)) return [];
  const out: StatusCause[] = [];
  let firstController = '';
  for (const ref of refs as any[]) {
    const apiVersion = String(ref?.apiVersion ?? '');
    const version = apiVersion.includes('/') ? apiVersion.split('/')[1] : apiVersion;
    if (!version) out.push(fe.invalid(child(field, 'apiVersion'), apiVersion, 'version must not be empty'));
    if (!ref?.kind) out.push(fe.invalid(child(field, 'kind'), ref?.kind ?? '', 'kind must not be empty'));
    if (!ref?.name) out.push(fe.invalid(child(field, 'name'), ref?.name ?? '', 'name must not be empty'));
    if (!ref?.uid) out.push(fe.invalid(child(field, 'uid'), ref?.uid ?? '', 'uid must not be empty'));
    if (ref?.controller === true) {
      const current = `${ref.kind}/${ref.name}`;
      if (firstController) {
        out.push(fe.invalid(field, jsonValue(refs), `Only one reference can have Controller set to true. Found "true" in references for ${firstController} and ${current}`));
      } else {
        firstController = current;
      }
    }
  }
  return out;
}

function validateFinalizers(finalizers: unknown, field: string): StatusCause[] {
  if (!Array.isArray(finalizers)) return [];
  const out: StatusCause[] = [];
  for (const f of finalizers) out.push(...isQualifiedName(String(f)).map((m) => fe.invalid(field, String(f), m)));
  if (finalizers.includes('orphan') && finalizers.includes('foregroundDeletion')) {
    out.push(fe.invalid(field, goStringSlice(finalizers), 'finalizer orphan and foregroundDeletion cannot be both set'));
  }
  finalizers.forEach((f, i) => out.push(...validateKubeFinalizerName(String(f), index(field, i))));
  return out;
}

/** Unqualified finalizer names are reserved for Kubernetes' own. */
export function validateKubeFinalizerName(name: string, field: string): StatusCause[] {
  if (name.split('/').length === 1 && !STANDARD_FINALIZERS.has(name)) {
    return [fe.invalid(field, name, 'name is neither a standard finalizer name nor is it fully qualified')];
  }
  return [];
}

/** Validation of metadata on create. `nameFn` is the kind's name rule. */
export function validateObjectMeta(meta: ObjectMeta | undefined, requiresNamespace: boolean, nameFn: NameFn, field = 'metadata'): StatusCause[] {
  const m = meta ?? {};
  const out: StatusCause[] = [];
  if (m.generateName) {
    for (const msg of nameFn(m.generateName, true)) out.push(fe.invalid(child(field, 'generateName'), m.generateName, msg));
  }
  if (!m.name) {
    out.push(fe.required(child(field, 'name'), 'name or generateName is required'));
  } else {
    for (const msg of nameFn(m.name, false)) out.push(fe.invalid(child(field, 'name'), m.name, msg));
  }
  if (requiresNamespace) {
    if (!m.namespace) out.push(fe.required(child(field, 'namespace')));
    else for (const msg of isDNS1123Label(m.namespace)) out.push(fe.invalid(child(field, 'namespace'), m.namespace, msg));
  } else if (m.namespace) {
    out.push(fe.forbidden(child(field, 'namespace'), 'not allowed on this type'));
  }
  out.push(...nonNegative(m.generation, child(field, 'generation')));
  out.push(...validateMetaCommon(m, field));
  return out;
}

function validateMetaCommon(m: ObjectMeta, field: string): StatusCause[] {
  return [
    ...validateLabels(m.labels, child(field, 'labels')),
    ...validateAnnotations(m.annotations, child(field, 'annotations')),
    ...validateOwnerReferences(m.ownerReferences, child(field, 'ownerReferences')),
    ...validateFinalizers(m.finalizers, child(field, 'finalizers')),
  ];
}

/**
 * Validation of metadata on update. The apiserver has already carried over uid, creationTimestamp and
 * resourceVersion when the client left them out, so only real changes are reported.
 */
export function validateObjectMetaUpdate(meta: ObjectMeta | undefined, old: ObjectMeta | undefined, field = 'metadata'): StatusCause[] {
  const m = meta ?? {};
  const o = old ?? {};
  const out: StatusCause[] = [];
  if (o.deletionTimestamp) {
    const extra = (m.finalizers ?? []).filter((f) => !(o.finalizers ?? []).includes(f)).sort();
    if (extra.length) {
      out.push(fe.forbidden(child(field, 'finalizers'), `no new finalizers can be added if the object is being deleted, found new finalizers []string{${extra.map((f) => JSON.stringify(f)).join(', ')}}`));
    }
  }
  const immutable: [keyof ObjectMeta, BadValue, BadValue][] = [
    ['name', m.name ?? '', o.name ?? ''],
    ['namespace', m.namespace ?? '', o.namespace ?? ''],
  ];
  if (m.uid && o.uid) immutable.push(['uid', m.uid, o.uid]);
  for (const [name, now, before] of immutable) {
    if (now !== before) out.push(fe.invalid(child(field, name as string), now, IMMUTABLE));
  }
  out.push(...validateMetaCommon(m, field));
  return out;
}

// ---- label selectors -------------------------------------------------------------------------------

export function validateLabelSelector(sel: unknown, field: string): StatusCause[] {
  if (!isObj(sel)) return [];
  const s = sel as LabelSelector;
  const out = validateLabels(s.matchLabels, child(field, 'matchLabels'));
  (s.matchExpressions ?? []).forEach((expr, i) => {
    const path = index(child(field, 'matchExpressions'), i);
    const values = expr?.values ?? [];
    switch (expr?.operator) {
      case 'In': case 'NotIn':
        if (values.length === 0) out.push(fe.required(child(path, 'values'), "must be specified when `operator` is 'In' or 'NotIn'"));
        break;
      case 'Exists': case 'DoesNotExist':
        if (values.length > 0) out.push(fe.forbidden(child(path, 'values'), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'"));
        break;
      default:
        out.push(fe.invalid(child(path, 'operator'), expr?.operator ?? '', 'not a valid selector operator'));
    }
    out.push(...validateLabelName(String(expr?.key ?? ''), child(path, 'key')));
    values.forEach((v, j) => {
      for (const m of isValidLabelValue(String(v))) out.push(fe.invalid(index(child(path, 'values'), j), String(v), m));
    });
  });
  return out;
}

export function isEmptySelector(sel: unknown): boolean {
  const s = (sel ?? {}) as LabelSelector;
  return Object.keys(s.matchLabels ?? {}).length + (s.matchExpressions ?? []).length === 0;
}

/** Whether `sel` converts to requirements (metav1.LabelSelectorAsSelector does not fail on it). */
export function selectorParses(sel: unknown): boolean {
  return labelSelectorRequirements((sel ?? {}) as LabelSelector) !== undefined;
}

/** `spec.selector` immutability as the apps and batch strategies report it. */
export function immutableSelector(now: unknown, before: unknown, field: string): StatusCause[] {
  return semanticEqual(now, before) ? [] : [fe.invalid(field, goLabelSelector(now), IMMUTABLE)];
}
