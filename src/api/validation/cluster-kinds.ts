// Validation of the cluster-extension kinds: admission registration (webhook configurations and
// validating admission policies, stored and validated only: skiff does not call webhooks or evaluate
// CEL yet), certificate signing requests, runtime classes, API priority and fairness, API services and
// the CSI storage kinds. Rules and messages are Kubernetes' (each group's validation.go), for the
// checks a user is likely to trip over; deeper structural rules are left to the schema.
import type { StatusCause } from '../status.js';
import type { KObject } from '../object.js';
import { child, fe, GoValue, IMMUTABLE, index, isObj, semanticEqual } from './field.js';
import { validateLabels, validateLabelSelector } from './meta.js';
import { isDNS1123Label, isDNS1123Subdomain, isQualifiedName, inclusiveRangeError } from './names.js';
import { validateTolerations } from './pod.js';
import { tryParseQuantity, QUANTITY_FORMAT_ERROR } from '../quantity.js';
import { CsrError, KEY_USAGES, MIN_EXPIRATION_SECONDS, parseCsr } from '../csr.js';

type Obj = Record<string, any>;
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.map(obj) : []);
const strings = (v: unknown): string[] => (Array.isArray(v) ? v.map(String) : []);

// ---- admissionregistration.k8s.io ---------------------------------------------------------------

const OPERATIONS = ['*', 'CONNECT', 'CREATE', 'DELETE', 'UPDATE'];

function ruleWithOperations(r: Obj, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  const ops = strings(r.operations);
  if (ops.length === 0) out.push(fe.required(child(field, 'operations')));
  if (ops.length > 1 && ops.includes('*')) out.push(fe.invalid(child(field, 'operations'), new GoValue(`[]string{${ops.map((o) => JSON.stringify(o)).join(', ')}}`), 'if \'*\' is present, must not specify other operations'));
  ops.forEach((o, i) => { if (!OPERATIONS.includes(o)) out.push(fe.notSupported(index(child(field, 'operations'), i), o, OPERATIONS)); });
  out.push(...rule(r, field));
  return out;
}

function rule(r: Obj, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  if (strings(r.apiGroups).length === 0) out.push(fe.required(child(field, 'apiGroups')));
  if (strings(r.apiVersions).length === 0) out.push(fe.required(child(field, 'apiVersions')));
  if (strings(r.resources).length === 0) out.push(fe.required(child(field, 'resources')));
  if (r.scope !== undefined && r.scope !== null && !['*', 'Cluster', 'Namespaced'].includes(r.scope)) {
    out.push(fe.notSupported(child(field, 'scope'), String(r.scope), ['*', 'Cluster', 'Namespaced']));
  }
  return out;
}

function enumField(v: unknown, field: string, allowed: string[], required = false): StatusCause[] {
  if (v === undefined || v === null) return required ? [fe.required(field)] : [];
  return allowed.includes(String(v)) ? [] : [fe.notSupported(field, String(v), allowed)];
}

function clientConfig(cc: Obj, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  const hasUrl = cc.url !== undefined && cc.url !== null;
  const hasSvc = isObj(cc.service);
  if (hasUrl === hasSvc) return [fe.required(field, 'exactly one of url or service is required')];
  if (hasUrl) {
    let u: URL | undefined;
    try { u = new URL(String(cc.url)); } catch { /* reported below */ }
    if (!u || !u.host) out.push(fe.invalid(child(field, 'url'), String(cc.url), 'host must be specified'));
    else if (u.protocol !== 'https:') out.push(fe.invalid(child(field, 'url'), String(cc.url), "'https' is the only allowed URL scheme"));
    else if (u.hash) out.push(fe.invalid(child(field, 'url'), String(cc.url), 'fragments are not permitted in the URL'));
    else if (u.search) out.push(fe.invalid(child(field, 'url'), String(cc.url), 'query parameters are not permitted in the URL'));
  } else {
    const s = cc.service;
    const f = child(field, 'service');
    if (!s.name) out.push(fe.required(child(f, 'name'), 'service name is required'));
    if (!s.namespace) out.push(fe.required(child(f, 'namespace'), 'service namespace is required'));
    if (s.port !== undefined && (typeof s.port !== 'number' || s.port < 1 || s.port > 65535)) out.push(fe.invalid(child(f, 'port'), s.port, 'port is not valid: must be between 1 and 65535, inclusive'));
    if (s.path !== undefined && s.path !== null && !String(s.path).startsWith('/')) out.push(fe.invalid(child(f, 'path'), String(s.path), "must start with a '/'"));
  }
  return out;
}

function validateWebhooks(cfg: KObject, mutating: boolean): StatusCause[] {
  const out: StatusCause[] = [];
  const seen = new Set<string>();
  list(cfg.webhooks).forEach((w, i) => {
    const f = index('webhooks', i);
    const name = String(w.name ?? '');
    if (!name) out.push(fe.required(child(f, 'name')));
    else {
      out.push(...isDNS1123Subdomain(name).map((m) => fe.invalid(child(f, 'name'), name, m)));
      if (name.split('.').length < 3) out.push(fe.invalid(child(f, 'name'), name, 'should be a domain with at least three segments separated by dots'));
      if (seen.has(name)) out.push(fe.duplicate(child(f, 'name'), name));
      seen.add(name);
    }
    list(w.rules).forEach((r, j) => out.push(...ruleWithOperations(r, index(child(f, 'rules'), j))));
    out.push(...enumField(w.failurePolicy, child(f, 'failurePolicy'), ['Fail', 'Ignore']));
    out.push(...enumField(w.matchPolicy, child(f, 'matchPolicy'), ['Equivalent', 'Exact']));
    out.push(...enumField(w.sideEffects, child(f, 'sideEffects'), ['None', 'NoneOnDryRun'], true));
    if (mutating) out.push(...enumField(w.reinvocationPolicy, child(f, 'reinvocationPolicy'), ['IfNeeded', 'Never']));
    const versions = strings(w.admissionReviewVersions);
    if (!versions.some((v) => v === 'v1' || v === 'v1beta1')) {
      out.push(fe.required(child(f, 'admissionReviewVersions'), 'must specify one of v1, v1beta1'));
    }
    if (typeof w.timeoutSeconds === 'number' && (w.timeoutSeconds < 1 || w.timeoutSeconds > 30)) {
      out.push(fe.invalid(child(f, 'timeoutSeconds'), w.timeoutSeconds, 'the timeout value must be between 1 and 30 seconds'));
    }
    if (w.namespaceSelector !== undefined) out.push(...validateLabelSelector(w.namespaceSelector, child(f, 'namespaceSelector')));
    if (w.objectSelector !== undefined) out.push(...validateLabelSelector(w.objectSelector, child(f, 'objectSelector')));
    out.push(...matchConditions(w.matchConditions, child(f, 'matchConditions')));
    out.push(...clientConfig(obj(w.clientConfig), child(f, 'clientConfig')));
  });
  return out;
}

function matchConditions(v: unknown, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  const seen = new Set<string>();
  list(v).forEach((c, i) => {
    const f = index(field, i);
    if (!c.name) out.push(fe.required(child(f, 'name')));
    else {
      out.push(...isQualifiedName(String(c.name)).map((m) => fe.invalid(child(f, 'name'), String(c.name), m)));
      if (seen.has(c.name)) out.push(fe.duplicate(child(f, 'name'), String(c.name)));
      seen.add(c.name);
    }
    if (!c.expression) out.push(fe.required(child(f, 'expression')));
  });
  return out;
}

export const validateMutatingWebhookConfiguration = (c: KObject) => validateWebhooks(c, true);
export const validateValidatingWebhookConfiguration = (c: KObject) => validateWebhooks(c, false);

export function validateValidatingAdmissionPolicy(p: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const s = obj(p.spec);
  const validations = list(s.validations);
  if (validations.length === 0 && list(s.auditAnnotations).length === 0) {
    out.push(fe.required('spec.validations', 'validations or auditAnnotations must contain at least one item'));
  }
  validations.forEach((v, i) => {
    const f = index('spec.validations', i);
    if (!String(v.expression ?? '').trim()) out.push(fe.required(child(f, 'expression')));
    if (v.reason !== undefined && v.reason !== null && !['Unauthorized', 'Forbidden', 'Invalid', 'RequestEntityTooLarge'].includes(v.reason)) {
      out.push(fe.notSupported(child(f, 'reason'), String(v.reason), ['Unauthorized', 'Forbidden', 'Invalid', 'RequestEntityTooLarge']));
    }
  });
  out.push(...enumField(s.failurePolicy, 'spec.failurePolicy', ['Fail', 'Ignore']));
  if (!isObj(s.matchConstraints)) out.push(fe.required('spec.matchConstraints'));
  else {
    const rules = list(s.matchConstraints.resourceRules);
    if (rules.length === 0) out.push(fe.required('spec.matchConstraints.resourceRules'));
    rules.forEach((r, i) => out.push(...ruleWithOperations(r, index('spec.matchConstraints.resourceRules', i))));
  }
  if (isObj(s.paramKind)) {
    if (!s.paramKind.apiVersion) out.push(fe.required('spec.paramKind.apiVersion'));
    if (!s.paramKind.kind) out.push(fe.required('spec.paramKind.kind'));
  }
  out.push(...matchConditions(s.matchConditions, 'spec.matchConditions'));
  return out;
}

const VALIDATION_ACTIONS = ['Audit', 'Deny', 'Warn'];

export function validateValidatingAdmissionPolicyBinding(b: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const s = obj(b.spec);
  if (!s.policyName) out.push(fe.required('spec.policyName'));
  const actions = strings(s.validationActions);
  if (actions.length === 0) out.push(fe.required('spec.validationActions'));
  const seen = new Set<string>();
  actions.forEach((a, i) => {
    if (!VALIDATION_ACTIONS.includes(a)) out.push(fe.notSupported(index('spec.validationActions', i), a, VALIDATION_ACTIONS));
    if (seen.has(a)) out.push(fe.duplicate(index('spec.validationActions', i), a));
    seen.add(a);
  });
  if (actions.includes('Deny') && actions.includes('Warn')) {
    out.push(fe.invalid('spec.validationActions', new GoValue(`[]admissionregistration.ValidationAction{${actions.map((a) => JSON.stringify(a)).join(', ')}}`), 'must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)'));
  }
  if (isObj(s.paramRef)) {
    const r = s.paramRef;
    if (r.name && r.selector) out.push(fe.forbidden('spec.paramRef.name', 'name and selector are mutually exclusive'));
    if (!r.name && !r.selector) out.push(fe.required('spec.paramRef', 'one of name or selector must be specified'));
    out.push(...enumField(r.parameterNotFoundAction, 'spec.paramRef.parameterNotFoundAction', ['Allow', 'Deny'], true));
  }
  return out;
}

// ---- certificates.k8s.io ------------------------------------------------------------------------

/** `[]byte{...}`: Kubernetes prints the whole byte slice; the shape is kept, the bytes are not. */
const BYTES = new GoValue('[]byte{...}');

export function validateCertificateSigningRequest(csr: KObject, old?: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const s = obj(csr.spec);
  if (!s.request) out.push(fe.required('spec.request'));
  else {
    try {
      parseCsr(Buffer.from(String(s.request), 'base64').toString('latin1'));
    } catch (e) {
      out.push(fe.invalid('spec.request', BYTES, e instanceof CsrError ? e.message : String(e)));
    }
  }
  if (!s.signerName) out.push(fe.required('spec.signerName'));
  else out.push(...signerNameErrors(String(s.signerName)));
  const usages = strings(s.usages);
  if (usages.length === 0) out.push(fe.required('spec.usages', 'usages must be provided'));
  const seen = new Set<string>();
  usages.forEach((u, i) => {
    if (!KEY_USAGES.includes(u)) out.push(fe.notSupported(index('spec.usages', i), u, KEY_USAGES));
    if (seen.has(u)) out.push(fe.duplicate(index('spec.usages', i), u));
    seen.add(u);
  });
  if (s.expirationSeconds !== undefined && s.expirationSeconds !== null && (typeof s.expirationSeconds !== 'number' || s.expirationSeconds < MIN_EXPIRATION_SECONDS)) {
    out.push(fe.invalid('spec.expirationSeconds', s.expirationSeconds, `may not specify a duration less than ${MIN_EXPIRATION_SECONDS} seconds (10 minutes)`));
  }
  out.push(...csrConditions(csr, old));
  const cert = obj(csr.status).certificate;
  if (cert) {
    const pem = Buffer.from(String(cert), 'base64').toString('latin1');
    if (!/-----BEGIN CERTIFICATE-----[\s\S]+-----END CERTIFICATE-----/.test(pem)) {
      out.push(fe.invalid('status.certificate', '<certificate data>', 'must contain at least one CERTIFICATE PEM block'));
    }
  }
  if (obj(old?.status).certificate && cert !== obj(old?.status).certificate) {
    out.push(fe.forbidden('status.certificate', 'updates may not modify existing certificate content'));
  }
  return out;
}

function signerNameErrors(name: string): StatusCause[] {
  const slash = name.indexOf('/');
  if (slash < 0) return [fe.invalid('spec.signerName', name, "must be a fully qualified domain and path of the form 'example.com/signer-name'")];
  const domain = name.slice(0, slash);
  const errs = isDNS1123Subdomain(domain);
  if (errs.length) return [fe.invalid('spec.signerName', name, "must be a fully qualified domain and path of the form 'example.com/signer-name'")];
  return [];
}

function csrConditions(csr: KObject, old?: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const conds = list(obj(csr.status).conditions);
  const seen = new Set<string>();
  conds.forEach((c, i) => {
    const f = index('status.conditions', i);
    if (!c.type) out.push(fe.required(child(f, 'type')));
    if (c.status !== undefined && !['True', 'False', 'Unknown'].includes(c.status)) out.push(fe.notSupported(child(f, 'status'), String(c.status), ['False', 'True', 'Unknown']));
    if (['Approved', 'Denied', 'Failed'].includes(c.type)) {
      if (seen.has(c.type)) out.push(fe.duplicate(child(f, 'type'), c.type));
      seen.add(c.type);
    }
  });
  if (seen.has('Approved') && seen.has('Denied')) {
    const i = conds.findIndex((c) => c.type === (conds.findIndex((x) => x.type === 'Approved') < conds.findIndex((x) => x.type === 'Denied') ? 'Denied' : 'Approved'));
    out.push(fe.invalid(child(index('status.conditions', i), 'type'), conds[i].type, 'Approved and Denied conditions are mutually exclusive'));
  }
  for (const t of ['Approved', 'Denied']) {
    const had = list(obj(old?.status).conditions).some((c) => c.type === t);
    if (had && !seen.has(t)) out.push(fe.forbidden('status.conditions', `updates may not remove a condition of type "${t}"`));
  }
  return out;
}

// ---- node.k8s.io --------------------------------------------------------------------------------

export function validateRuntimeClass(rc: KObject, old?: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const handler = rc.handler;
  if (handler === undefined || handler === null || handler === '') out.push(fe.required('handler'));
  else out.push(...isDNS1123Label(String(handler)).map((m) => fe.invalid('handler', String(handler), m)));
  if (old && !semanticEqual(rc.handler, old.handler)) out.push(fe.invalid('handler', String(handler), IMMUTABLE));
  const podFixed = obj(obj(rc.overhead).podFixed);
  for (const [name, q] of Object.entries(podFixed)) {
    const f = `overhead.podFixed[${name}]`;
    const v = tryParseQuantity(q);
    if (v === undefined) out.push(fe.invalid(f, String(q), QUANTITY_FORMAT_ERROR));
    else if (v < 0) out.push(fe.invalid(f, String(q), 'must be greater than or equal to 0'));
  }
  if (isObj(rc.scheduling)) {
    out.push(...validateLabels(rc.scheduling.nodeSelector, 'scheduling.nodeSelector'));
    out.push(...validateTolerations(rc.scheduling.tolerations, 'scheduling.tolerations'));
  }
  return out;
}

// ---- flowcontrol.apiserver.k8s.io ---------------------------------------------------------------

export function validateFlowSchema(fs: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const s = obj(fs.spec);
  if (!s.priorityLevelConfiguration?.name) out.push(fe.required('spec.priorityLevelConfiguration.name', 'must reference a priority level'));
  if (typeof s.matchingPrecedence === 'number' && (s.matchingPrecedence < 1 || s.matchingPrecedence > 10000)) {
    out.push(fe.invalid('spec.matchingPrecedence', s.matchingPrecedence, 'must be between 1 and 10000, inclusive'));
  }
  if (isObj(s.distinguisherMethod)) out.push(...enumField(s.distinguisherMethod.type, 'spec.distinguisherMethod.type', ['ByNamespace', 'ByUser'], true));
  return out;
}

export function validatePriorityLevelConfiguration(p: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const s = obj(p.spec);
  out.push(...enumField(s.type, 'spec.type', ['Exempt', 'Limited'], true));
  if (s.type === 'Limited' && !isObj(s.limited)) out.push(fe.required('spec.limited', 'must not be empty when type is Limited'));
  if (s.type === 'Exempt' && isObj(s.limited)) out.push(fe.forbidden('spec.limited', 'must be nil if the type is not Limited'));
  const lp = s.limited?.lendablePercent;
  if (typeof lp === 'number' && (lp < 0 || lp > 100)) out.push(fe.invalid('spec.limited.lendablePercent', lp, 'must be between 0 and 100, inclusive'));
  return out;
}

// ---- apiregistration.k8s.io ---------------------------------------------------------------------

export function validateAPIService(a: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const s = obj(a.spec);
  const name = String(a.metadata?.name ?? '');
  const want = `${s.version}.${s.group}`;
  if (s.group !== undefined && s.version !== undefined && name !== want && !(s.group === '' && name === `${s.version}.`)) {
    out.push(fe.invalid('metadata.name', name, `must be ${want}`));
  }
  if (!s.version) out.push(fe.required('spec.version'));
  if (typeof s.groupPriorityMinimum !== 'number' || s.groupPriorityMinimum < 1 || s.groupPriorityMinimum > 20000) {
    out.push(fe.invalid('spec.groupPriorityMinimum', s.groupPriorityMinimum, inclusiveRangeError(1, 20000)));
  }
  if (typeof s.versionPriority !== 'number' || s.versionPriority < 1 || s.versionPriority > 1000) {
    out.push(fe.invalid('spec.versionPriority', s.versionPriority, inclusiveRangeError(1, 1000)));
  }
  if (s.insecureSkipTLSVerify && s.caBundle) out.push(fe.invalid('spec.insecureSkipTLSVerify', true, 'may not be true if caBundle is present'));
  if (isObj(s.service)) {
    if (!s.service.name) out.push(fe.required('spec.service.name'));
    if (!s.service.namespace) out.push(fe.required('spec.service.namespace'));
  }
  return out;
}

// ---- storage.k8s.io (CSI) -----------------------------------------------------------------------

export function validateCSIDriver(d: KObject, old?: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const s = obj(d.spec);
  out.push(...enumField(s.fsGroupPolicy, 'spec.fsGroupPolicy', ['File', 'None', 'ReadWriteOnceWithFSType']));
  strings(s.volumeLifecycleModes).forEach((m, i) => out.push(...enumField(m, index('spec.volumeLifecycleModes', i), ['Ephemeral', 'Persistent'])));
  if (old && !semanticEqual(s.attachRequired, obj(old.spec).attachRequired)) out.push(fe.invalid('spec.attachRequired', s.attachRequired, IMMUTABLE));
  return out;
}

export function validateVolumeAttachment(v: KObject, old?: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const s = obj(v.spec);
  if (!s.attacher) out.push(fe.required('spec.attacher'));
  if (!s.nodeName) out.push(fe.required('spec.nodeName'));
  const src = obj(s.source);
  const n = (src.persistentVolumeName ? 1 : 0) + (isObj(src.inlineVolumeSpec) ? 1 : 0);
  if (n !== 1) out.push(fe.required('spec.source', 'must specify exactly one of inlineVolumeSpec and persistentVolumeName'));
  if (old && !semanticEqual(v.spec, old.spec)) out.push(fe.invalid('spec', new GoValue('storage.VolumeAttachmentSpec{...}'), IMMUTABLE));
  return out;
}
