// Kinds outside core, apps and batch that have a handful of rules each: RBAC, CRDs, autoscaling,
// policy, coordination, discovery, events, networking, scheduling and storage.
import type { StatusCause } from '../status.js';
import type { KObject } from '../object.js';
import { notMoreThan100Percent, validatePositiveIntOrPercent } from './apps.js';
import { child, fe, GoValue, IMMUTABLE, index, jsonValue, nonNegative, semanticEqual, isObj } from './field.js';
import { validateLabelSelector } from './meta.js';
import {
  isDNS1035Label, isDNS1123Subdomain, isQualifiedName, isValidPathSegmentName, isValidPortName, isValidPortNum,
} from './names.js';

type Obj = Record<string, any>;
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const list = (v: unknown): Obj[] => (Array.isArray(v) ? v.map(obj) : []);
const RBAC_GROUP = 'rbac.authorization.k8s.io';

// ---- RBAC ----------------------------------------------------------------------------------------

function policyRule(rule: Obj, namespaced: boolean, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  if (!Array.isArray(rule.verbs) || rule.verbs.length === 0) out.push(fe.required(child(field, 'verbs'), 'verbs must contain at least one value'));
  const urls = Array.isArray(rule.nonResourceURLs) ? rule.nonResourceURLs : [];
  if (urls.length) {
    const value = new GoValue(`[]string{${urls.map((u: unknown) => JSON.stringify(String(u))).join(', ')}}`);
    if (namespaced) out.push(fe.invalid(child(field, 'nonResourceURLs'), value, 'namespaced rules cannot apply to non-resource URLs'));
    if ((rule.apiGroups ?? []).length || (rule.resources ?? []).length || (rule.resourceNames ?? []).length) {
      out.push(fe.invalid(child(field, 'nonResourceURLs'), value, 'rules cannot apply to both regular resources and non-resource URLs'));
    }
    return out;
  }
  if (!Array.isArray(rule.apiGroups) || rule.apiGroups.length === 0) out.push(fe.required(child(field, 'apiGroups'), 'resource rules must supply at least one api group'));
  if (!Array.isArray(rule.resources) || rule.resources.length === 0) out.push(fe.required(child(field, 'resources'), 'resource rules must supply at least one resource'));
  return out;
}

export const validateRole = (r: KObject) => list(r.rules).flatMap((rule, i) => policyRule(rule, true, index('rules', i)));

export function validateClusterRole(r: KObject): StatusCause[] {
  const out = list(r.rules).flatMap((rule, i) => policyRule(rule, false, index('rules', i)));
  if (isObj(r.aggregationRule)) {
    const selectors = list(r.aggregationRule.clusterRoleSelectors);
    if (selectors.length === 0) out.push(fe.required('aggregationRule.clusterRoleSelectors', 'at least one clusterRoleSelector required if aggregationRule is non-nil'));
    selectors.forEach((s, i) => out.push(...validateLabelSelector(s, index('aggregationRule.clusterRoleSelectors', i))));
  }
  return out;
}

function subject(s: Obj, namespaced: boolean, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  if (!s.name) out.push(fe.required(child(field, 'name')));
  switch (s.kind) {
    case 'ServiceAccount':
      if (s.name) out.push(...isDNS1123Subdomain(s.name).map((m) => fe.invalid(child(field, 'name'), s.name, m)));
      if (s.apiGroup) out.push(fe.notSupported(child(field, 'apiGroup'), s.apiGroup, ['']));
      if (!namespaced && !s.namespace) out.push(fe.required(child(field, 'namespace')));
      break;
    case 'User': case 'Group':
      if (s.apiGroup !== RBAC_GROUP) out.push(fe.notSupported(child(field, 'apiGroup'), s.apiGroup ?? '', [RBAC_GROUP]));
      break;
    default:
      out.push(fe.notSupported(child(field, 'kind'), s.kind ?? '', ['ServiceAccount', 'User', 'Group']));
  }
  return out;
}

function binding(b: KObject, old: KObject | undefined, namespaced: boolean): StatusCause[] {
  const ref = obj(b.roleRef);
  const out: StatusCause[] = [];
  if (ref.apiGroup !== RBAC_GROUP) out.push(fe.notSupported('roleRef.apiGroup', ref.apiGroup ?? '', [RBAC_GROUP]));
  const kinds = namespaced ? ['Role', 'ClusterRole'] : ['ClusterRole'];
  if (!kinds.includes(ref.kind)) out.push(fe.notSupported('roleRef.kind', ref.kind ?? '', kinds));
  if (!ref.name) out.push(fe.required('roleRef.name'));
  else out.push(...isValidPathSegmentName(ref.name).map((m) => fe.invalid('roleRef.name', ref.name, m)));
  list(b.subjects).forEach((s, i) => out.push(...subject(s, namespaced, index('subjects', i))));
  if (old && !semanticEqual(b.roleRef, old.roleRef)) {
    const v = new GoValue(`rbac.RoleRef{APIGroup:${JSON.stringify(ref.apiGroup ?? '')}, Kind:${JSON.stringify(ref.kind ?? '')}, Name:${JSON.stringify(ref.name ?? '')}}`);
    out.push(fe.invalid('roleRef', v, 'cannot change roleRef'));
  }
  return out;
}

export const validateRoleBinding = (b: KObject, old?: KObject) => binding(b, old, true);
export const validateClusterRoleBinding = (b: KObject, old?: KObject) => binding(b, old, false);

// ---- CustomResourceDefinitions -------------------------------------------------------------------

function crdNames(names: Obj, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  const dns1035 = (v: unknown, f: string) => isDNS1035Label(String(v)).map((m) => fe.invalid(f, String(v), m));
  if (!names.plural) out.push(fe.required(child(field, 'plural')));
  else out.push(...dns1035(names.plural, child(field, 'plural')));
  if (names.singular) out.push(...dns1035(names.singular, child(field, 'singular')));
  if (!names.kind) out.push(fe.required(child(field, 'kind')));
  else if (isDNS1035Label(String(names.kind).toLowerCase()).length) {
    out.push(fe.invalid(child(field, 'kind'), names.kind, `may have mixed case, but should otherwise match: ${String(names.kind).toLowerCase()}`));
  }
  if (!names.listKind) out.push(fe.required(child(field, 'listKind')));
  (Array.isArray(names.shortNames) ? names.shortNames : []).forEach((s: unknown, i: number) => out.push(...dns1035(s, index(child(field, 'shortNames'), i))));
  return out;
}

export function validateCRD(crd: KObject, old?: KObject): StatusCause[] {
  const s = obj(crd.spec);
  const names = obj(s.names);
  const out: StatusCause[] = [];
  const expected = `${names.plural ?? ''}.${s.group ?? ''}`;
  if (crd.metadata?.name !== expected) out.push(fe.invalid('metadata.name', crd.metadata?.name ?? '', 'must be spec.names.plural+"."+spec.group'));
  if (!s.group) out.push(fe.required('spec.group'));
  else {
    out.push(...isDNS1123Subdomain(s.group).map((m) => fe.invalid('spec.group', s.group, m)));
    if (String(s.group).split('.').length < 2) out.push(fe.invalid('spec.group', s.group, 'should be a domain with at least one dot'));
  }
  if (!s.scope) out.push(fe.required('spec.scope'));
  else if (s.scope !== 'Cluster' && s.scope !== 'Namespaced') out.push(fe.notSupported('spec.scope', s.scope, ['Cluster', 'Namespaced']));
  out.push(...crdNames(names, 'spec.names'));
  const versions = list(s.versions);
  if (versions.length === 0) out.push(fe.required('spec.versions'));
  const seen = new Set<string>();
  let unique = true;
  versions.forEach((v, i) => {
    const p = index('spec.versions', i);
    if (seen.has(v.name)) unique = false;
    seen.add(v.name);
    const errs = isDNS1035Label(String(v.name ?? ''));
    if (errs.length) out.push(fe.invalid(child(p, 'name'), String(v.name ?? ''), errs.join(',')));
    const schema = v.schema?.openAPIV3Schema;
    if (!isObj(schema)) out.push(fe.required(child(p, 'schema', 'openAPIV3Schema'), 'schemas are required'));
    else if (!schema.type) out.push(fe.required(child(p, 'schema', 'openAPIV3Schema', 'type'), 'must not be empty at the root'));
    else if (schema.type !== 'object') out.push(fe.invalid(child(p, 'schema', 'openAPIV3Schema', 'type'), schema.type, 'must be object at the root'));
  });
  if (!unique) out.push(fe.invalid('spec.versions', jsonValue(s.versions), 'must contain unique version names'));
  if (versions.length && versions.filter((v) => v.storage === true).length !== 1) {
    out.push(fe.invalid('spec.versions', jsonValue(s.versions), 'must have exactly one version marked as storage version'));
  }
  if (old) {
    const o = obj(old.spec);
    if (s.group !== o.group) out.push(fe.invalid('spec.group', s.group ?? '', IMMUTABLE));
    if (names.plural !== obj(o.names).plural) out.push(fe.invalid('spec.names.plural', names.plural ?? '', IMMUTABLE));
  }
  return out;
}

// ---- autoscaling, policy, coordination -----------------------------------------------------------

export function validateHPA(hpa: KObject): StatusCause[] {
  const s = obj(hpa.spec);
  const out: StatusCause[] = [];
  if (typeof s.minReplicas === 'number' && s.minReplicas < 1) out.push(fe.invalid('spec.minReplicas', s.minReplicas, 'must be greater than or equal to 1'));
  const max = typeof s.maxReplicas === 'number' ? s.maxReplicas : 0;
  if (max < 1) out.push(fe.invalid('spec.maxReplicas', max, 'must be greater than 0'));
  if (typeof s.minReplicas === 'number' && max < s.minReplicas) out.push(fe.invalid('spec.maxReplicas', max, 'must be greater than or equal to `minReplicas`'));
  const ref = obj(s.scaleTargetRef);
  for (const f of ['kind', 'name']) {
    if (!ref[f]) out.push(fe.required(`spec.scaleTargetRef.${f}`));
    else out.push(...isValidPathSegmentName(String(ref[f])).map((m) => fe.invalid(`spec.scaleTargetRef.${f}`, ref[f], m)));
  }
  return out;
}

export function validatePDB(pdb: KObject): StatusCause[] {
  const s = obj(pdb.spec);
  const out: StatusCause[] = [];
  const has = (v: unknown) => v !== undefined && v !== null;
  if (has(s.minAvailable) && has(s.maxUnavailable)) out.push(fe.invalid('spec', jsonValue(s), 'minAvailable and maxUnavailable cannot be both set'));
  for (const f of ['minAvailable', 'maxUnavailable']) {
    if (!has(s[f])) continue;
    out.push(...validatePositiveIntOrPercent(s[f], `spec.${f}`), ...notMoreThan100Percent(s[f], `spec.${f}`));
  }
  out.push(...validateLabelSelector(s.selector, 'spec.selector'));
  const policy = s.unhealthyPodEvictionPolicy;
  if (has(policy) && policy !== 'AlwaysAllow' && policy !== 'IfHealthyBudget') {
    out.push(fe.notSupported('spec.unhealthyPodEvictionPolicy', String(policy), ['AlwaysAllow', 'IfHealthyBudget']));
  }
  return out;
}

export function validateLease(lease: KObject): StatusCause[] {
  const s = obj(lease.spec);
  const out: StatusCause[] = [];
  if (typeof s.leaseDurationSeconds === 'number' && s.leaseDurationSeconds <= 0) out.push(fe.invalid('spec.leaseDurationSeconds', s.leaseDurationSeconds, 'must be greater than 0'));
  out.push(...nonNegative(s.leaseTransitions, 'spec.leaseTransitions'));
  return out;
}

// ---- discovery, events ---------------------------------------------------------------------------

const ADDRESS_TYPES = ['FQDN', 'IPv4', 'IPv6'];

export function validateEndpointSlice(slice: KObject, old?: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const t = slice.addressType;
  if (!t) out.push(fe.required('addressType'));
  else if (!ADDRESS_TYPES.includes(t as string)) out.push(fe.notSupported('addressType', t as string, ADDRESS_TYPES));
  list(slice.endpoints).forEach((e, i) => {
    const n = Array.isArray(e.addresses) ? e.addresses.length : 0;
    if (n === 0) out.push(fe.required(child(index('endpoints', i), 'addresses'), 'must contain at least 1 address'));
    else if (n > 100) out.push(fe.tooMany(child(index('endpoints', i), 'addresses'), n, 100));
  });
  if (old && t !== old.addressType) out.push(fe.invalid('addressType', String(t ?? ''), IMMUTABLE));
  return out;
}

/** events.k8s.io/v1 Events are validated strictly (core/v1 ones keep the legacy rules). */
export function validateEventsV1Event(ev: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  if (!ev.eventTime) out.push(fe.required('eventTime'));
  const rc = String(ev.reportingController ?? '');
  if (!rc) out.push(fe.required('reportingController'));
  out.push(...isQualifiedName(rc).map((m) => fe.invalid('reportingController', rc, m)));
  if (!ev.reportingInstance) out.push(fe.required('reportingInstance'));
  if (!ev.action) out.push(fe.required('action'));
  if (!ev.reason) out.push(fe.required('reason'));
  if (!ev.type) out.push(fe.required('type'));
  else if (ev.type !== 'Normal' && ev.type !== 'Warning') out.push(fe.invalid('type', String(ev.type), 'has invalid value: ' + String(ev.type)));
  if (String(ev.note ?? '').length > 1024) out.push(fe.invalid('note', '', 'can have at most 1024 characters'));
  return out;
}

// ---- networking ----------------------------------------------------------------------------------

const PATH_TYPES = ['Exact', 'ImplementationSpecific', 'Prefix'];

function ingressBackend(b: Obj, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  const svc = b.service;
  if (isObj(b.resource) && isObj(svc)) return [fe.invalid(field, '', 'cannot set both resource and service backends')];
  if (isObj(b.resource)) return out;
  if (!isObj(svc)) return [fe.invalid(field, '', 'resource or service backend is required')];
  if (!svc.name) out.push(fe.required(child(field, 'service', 'name')));
  else out.push(...isDNS1035Label(svc.name).map((m) => fe.invalid(child(field, 'service', 'name'), svc.name, m)));
  const port = obj(svc.port);
  if (port.name && port.number) out.push(fe.invalid(field, '', 'cannot set both port name & port number'));
  else if (port.name) out.push(...isValidPortName(port.name).map((m) => fe.invalid(child(field, 'service', 'port', 'name'), port.name, m)));
  else if (port.number) out.push(...isValidPortNum(port.number).map((m) => fe.invalid(child(field, 'service', 'port', 'number'), port.number, m)));
  else out.push(fe.required(field, 'port name or number is required'));
  return out;
}

function ingressPath(p: Obj, field: string): StatusCause[] {
  if (!p.pathType) return [fe.required(child(field, 'pathType'), 'pathType must be specified')];
  const out: StatusCause[] = [];
  const path = String(p.path ?? '');
  if (p.pathType === 'Exact' || p.pathType === 'Prefix') {
    if (!path.startsWith('/')) out.push(fe.invalid(child(field, 'path'), path, 'must be an absolute path'));
    for (const seq of ['//', '/./', '/../', '%2f', '%2F']) if (path.includes(seq)) out.push(fe.invalid(child(field, 'path'), path, `must not contain '${seq}'`));
    for (const suffix of ['/..', '/.']) if (path.endsWith(suffix)) out.push(fe.invalid(child(field, 'path'), path, `cannot end with '${suffix}'`));
  } else if (p.pathType === 'ImplementationSpecific') {
    if (path && !path.startsWith('/')) out.push(fe.invalid(child(field, 'path'), path, 'must be an absolute path'));
  } else {
    out.push(fe.notSupported(child(field, 'pathType'), p.pathType, PATH_TYPES));
  }
  out.push(...ingressBackend(obj(p.backend), child(field, 'backend')));
  return out;
}

export function validateIngress(ing: KObject): StatusCause[] {
  const s = obj(ing.spec);
  const out: StatusCause[] = [];
  const rules = list(s.rules);
  if (rules.length === 0 && !isObj(s.defaultBackend)) out.push(fe.invalid('spec.rules', jsonValue(s.rules ?? null), 'either `defaultBackend` or `rules` must be specified'));
  if (isObj(s.defaultBackend)) out.push(...ingressBackend(s.defaultBackend, 'spec.defaultBackend'));
  rules.forEach((r, i) => {
    const p = index('spec.rules', i);
    if (r.host) {
      const host = String(r.host);
      const wildcard = host.startsWith('*.');
      const errs = isDNS1123Subdomain(wildcard ? host.slice(2) : host);
      out.push(...errs.map((m) => fe.invalid(child(p, 'host'), host, m)));
      if (!wildcard && errs.length === 0 && (/^[0-9.]+$/.test(host))) out.push(fe.invalid(child(p, 'host'), host, 'must be a DNS name, not an IP address'));
    }
    if (isObj(r.http)) {
      const paths = list(r.http.paths);
      if (paths.length === 0) out.push(fe.required(child(p, 'http', 'paths')));
      paths.forEach((path, j) => out.push(...ingressPath(path, index(child(p, 'http', 'paths'), j))));
    }
  });
  // TLS: hosts as DNS subdomains (one leading `*.` allowed), secretName as a Secret name (when set).
  list(s.tls).forEach((t, i) => {
    (Array.isArray(t.hosts) ? t.hosts as unknown[] : []).forEach((h, j) => {
      const host = String(h);
      const wildcard = host.includes('*');
      const errs = wildcard ? (host.startsWith('*.') ? isDNS1123Subdomain(host.slice(2)) : ['a wildcard DNS-1123 subdomain must start with \'*.\', followed by a valid DNS subdomain'])
        : isDNS1123Subdomain(host);
      out.push(...errs.map((m) => fe.invalid(index(child(index('spec.tls', i), 'hosts'), j), host, m)));
    });
    if (typeof t.secretName === 'string' && t.secretName) {
      out.push(...isDNS1123Subdomain(t.secretName).map((m) => fe.invalid(child(index('spec.tls', i), 'secretName'), t.secretName, m)));
    }
  });
  if (typeof s.ingressClassName === 'string') out.push(...isDNS1123Subdomain(s.ingressClassName).map((m) => fe.invalid('spec.ingressClassName', s.ingressClassName, m)));
  return out;
}

export function validateIngressClass(ic: KObject, old?: KObject): StatusCause[] {
  const s = obj(ic.spec);
  const out: StatusCause[] = [];
  const ctrl = String(s.controller ?? '');
  if (!ctrl) out.push(fe.required('spec.controller'));
  else {
    const [domain, ...rest] = ctrl.split('/');
    if (!rest.length || !domain || !rest.join('/')) out.push(fe.invalid('spec.controller', ctrl, 'must be a domain-prefixed path (such as "acme.io/foo")'));
    else out.push(...isDNS1123Subdomain(domain).map((m) => fe.invalid('spec.controller', domain, m)));
  }
  if (old && ctrl !== String(obj(old.spec).controller ?? '')) out.push(fe.invalid('spec.controller', ctrl, IMMUTABLE));
  return out;
}

// NetworkPolicy has a file of its own (ipBlocks, peers, port ranges).
export { validateNetworkPolicy } from './network-policy.js';

// ---- scheduling, storage -------------------------------------------------------------------------

const HIGHEST_USER_PRIORITY = 1000000000;

export function validatePriorityClass(pc: KObject, old?: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const name = String(pc.metadata?.name ?? '');
  const system = name === 'system-node-critical' || name === 'system-cluster-critical';
  if (!system) {
    if (name.startsWith('system-')) out.push(fe.forbidden('metadata.name', "priority class names with 'system-' prefix are reserved"));
    if (typeof pc.value === 'number' && pc.value > HIGHEST_USER_PRIORITY) {
      out.push(fe.forbidden('value', `maximum allowed value of a user defined priority is ${HIGHEST_USER_PRIORITY}`));
    }
  }
  const policy = pc.preemptionPolicy;
  if (policy !== undefined && policy !== null && policy !== 'PreemptLowerPriority' && policy !== 'Never') {
    out.push(fe.notSupported('preemptionPolicy', String(policy), ['PreemptLowerPriority', 'Never']));
  }
  if (old && pc.value !== old.value) out.push(fe.forbidden('value', 'may not be changed in an update.'));
  return out;
}

export function validateStorageClass(sc: KObject, old?: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  if (!sc.provisioner) out.push(fe.required('provisioner'));
  else out.push(...isQualifiedName(String(sc.provisioner).toLowerCase()).map((m) => fe.invalid('provisioner', sc.provisioner as string, m)));
  if (sc.reclaimPolicy !== undefined && !['Delete', 'Retain'].includes(sc.reclaimPolicy as string)) {
    out.push(fe.notSupported('reclaimPolicy', String(sc.reclaimPolicy), ['Delete', 'Retain']));
  }
  if (sc.volumeBindingMode !== undefined && !['Immediate', 'WaitForFirstConsumer'].includes(sc.volumeBindingMode as string)) {
    out.push(fe.notSupported('volumeBindingMode', String(sc.volumeBindingMode), ['Immediate', 'WaitForFirstConsumer']));
  }
  if (old) {
    if (!semanticEqual(sc.parameters, old.parameters)) out.push(fe.forbidden('parameters', 'updates to parameters are forbidden.'));
    if (sc.provisioner !== old.provisioner) out.push(fe.forbidden('provisioner', 'updates to provisioner are forbidden.'));
    if (sc.reclaimPolicy !== old.reclaimPolicy) out.push(fe.forbidden('reclaimPolicy', 'updates to reclaimPolicy are forbidden.'));
    if (sc.volumeBindingMode !== old.volumeBindingMode) out.push(fe.invalid('volumeBindingMode', (sc.volumeBindingMode as string) ?? null, IMMUTABLE));
  }
  return out;
}
