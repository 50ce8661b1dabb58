// core/v1 kinds other than the pod spec itself (pkg/apis/core/validation).
import net from 'node:net';
import type { StatusCause } from '../status.js';
import type { KObject } from '../object.js';
import {
  child, fe, goServicePortKey, goStringMap, goStringSlice, GoValue, IMMUTABLE, index, key, nonNegative, semanticEqual, isObj,
} from './field.js';
import { validateKubeFinalizerName, validateLabelName, validateLabels, validateLabelSelector } from './meta.js';
import {
  isConfigMapKey, isDNS1123Label, isDNS1123Subdomain, isQualifiedName, isValidLabelValue, isValidPortName, isValidPortNum,
} from './names.js';
import { validateEphemeralContainersUpdate, validatePodCreateSpec, validatePodSpecUpdate, validatePodTemplateSpec, validateTaintEffect } from './pod.js';
import { quantityNanos } from '../quantity.js';
import { matchLabelSet } from '../selectors.js';

type Obj = Record<string, any>;
const obj = (v: unknown): Obj => (isObj(v) ? v : {});
const MAX_SECRET_SIZE = 1024 * 1024;
const IMMUTABLE_WHEN_SET = 'field is immutable when `immutable` is set';

// ---- Pods, pod templates, replication controllers ------------------------------------------------

export function validatePod(pod: KObject, old?: KObject, subresource?: string): StatusCause[] {
  if (old && subresource === 'ephemeralcontainers') return validateEphemeralContainersUpdate(pod, old);
  // The stored spec itself, as a status write, a graceful delete or a label change keep it: nothing
  // in it changed, so nothing to check (kube-apiserver's ValidatePodStatusUpdate does not look at
  // the spec either, and unchanged fields are never refused on update). Checking it again was a
  // full spec validation, a deep copy and a deep comparison on every kubelet status write.
  if (old && pod.spec === old.spec) return [];
  const out = validatePodCreateSpec(pod);
  if (!old) {
    const s = obj(pod.spec);
    if (Array.isArray(s.ephemeralContainers) && s.ephemeralContainers.length) out.push(fe.forbidden('spec.ephemeralContainers', 'cannot be set on create'));
    if (s.nodeName && Array.isArray(s.schedulingGates) && s.schedulingGates.length) {
      out.push(fe.forbidden('spec.nodeName', 'cannot be set until all schedulingGates have been cleared'));
    }
    return out;
  }
  return [...out, ...validatePodSpecUpdate(obj(pod.spec), obj(old.spec))];
}

export function validatePodTemplate(t: KObject): StatusCause[] {
  return validatePodTemplateSpec(t.template, 'template');
}

export function validateReplicationController(rc: KObject): StatusCause[] {
  const s = obj(rc.spec);
  const out = nonNegative(s.minReadySeconds, 'spec.minReadySeconds');
  const selector = obj(s.selector);
  if (Object.keys(selector).length === 0) out.push(fe.required('spec.selector'));
  out.push(...nonNegative(s.replicas, 'spec.replicas'));
  if (!isObj(s.template)) return [...out, fe.required('spec.template')];
  const labels = obj(s.template.metadata?.labels);
  if (Object.keys(selector).length && !matchLabelSet(selector as Record<string, string>, labels as Record<string, string>)) {
    out.push(fe.invalid('spec.template.metadata.labels', goStringMap(s.template.metadata?.labels), '`selector` does not match template `labels`'));
  }
  out.push(...validatePodTemplateSpec(s.template, 'spec.template'));
  const rp = s.template.spec?.restartPolicy ?? '';
  if (rp !== 'Always') out.push(fe.notSupported('spec.template.spec.restartPolicy', rp, ['Always']));
  if (s.template.spec?.activeDeadlineSeconds !== undefined) {
    out.push(fe.forbidden('spec.template.spec.activeDeadlineSeconds', 'activeDeadlineSeconds in ReplicationController is not Supported'));
  }
  return out;
}

// ---- Namespaces ----------------------------------------------------------------------------------

export function validateNamespace(ns: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const finalizers = obj(ns.spec).finalizers;
  for (const f of (Array.isArray(finalizers) ? finalizers : [])) {
    out.push(...isQualifiedName(String(f)).map((m) => fe.invalid('spec.finalizers', String(f), m)));
    out.push(...validateKubeFinalizerName(String(f), 'spec.finalizers'));
  }
  return out;
}

// ---- Services ------------------------------------------------------------------------------------

const SERVICE_TYPES = ['ClusterIP', 'ExternalName', 'LoadBalancer', 'NodePort'];
const PROTOCOLS = ['SCTP', 'TCP', 'UDP'];
const IP_FAMILY_POLICIES = ['PreferDualStack', 'RequireDualStack', 'SingleStack'];
const INVALID_IP = 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)';

const isHeadless = (s: Obj) => Array.isArray(s.clusterIPs) && s.clusterIPs.length === 1 && s.clusterIPs[0] === 'None';
const externallyAccessible = (s: Obj) =>
  s.type === 'LoadBalancer' || s.type === 'NodePort' || (s.type === 'ClusterIP' && Array.isArray(s.externalIPs) && s.externalIPs.length > 0);

function validateServicePort(sp: Obj, requireName: boolean, names: Set<string>, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  if (requireName && !sp.name) out.push(fe.required(child(field, 'name')));
  else if (sp.name) {
    out.push(...isDNS1123Label(sp.name).map((m) => fe.invalid(child(field, 'name'), sp.name, m)));
    if (names.has(sp.name)) out.push(fe.duplicate(child(field, 'name'), sp.name)); else names.add(sp.name);
  }
  out.push(...isValidPortNum(sp.port).map((m) => fe.invalid(child(field, 'port'), sp.port ?? 0, m)));
  if (!sp.protocol) out.push(fe.required(child(field, 'protocol')));
  else if (!PROTOCOLS.includes(sp.protocol)) out.push(fe.notSupported(child(field, 'protocol'), sp.protocol, PROTOCOLS));
  const tp = sp.targetPort;
  if (typeof tp === 'string') out.push(...isValidPortName(tp).map((m) => fe.invalid(child(field, 'targetPort'), tp, m)));
  else out.push(...isValidPortNum(tp ?? 0).map((m) => fe.invalid(child(field, 'targetPort'), tp ?? 0, m)));
  if (typeof sp.appProtocol === 'string') out.push(...isQualifiedName(sp.appProtocol).map((m) => fe.invalid(child(field, 'appProtocol'), sp.appProtocol, m)));
  return out;
}

/** Addresses a Service may not claim as external IPs. */
function specialIPError(ip: string): string | undefined {
  if (ip === '0.0.0.0' || ip === '::') return 'may not be unspecified (0.0.0.0, ::)';
  if (ip.startsWith('127.') || ip === '::1') return 'may not be in the loopback range (127.0.0.0/8, ::1/128)';
  if (ip.startsWith('169.254.') || /^fe[89ab]/i.test(ip)) return 'may not be in the link-local range (169.254.0.0/16, fe80::/10)';
  if (ip.startsWith('224.0.0.') || /^ff02:/i.test(ip)) return 'may not be in the link-local multicast range (224.0.0.0/24, ff02::/10)';
  return undefined;
}

function isValidCIDR(v: string): boolean {
  const [ip, bits, extra] = v.split('/');
  const fam = net.isIP(ip);
  return extra === undefined && fam !== 0 && /^[0-9]+$/.test(bits ?? '') && Number(bits) <= (fam === 4 ? 32 : 128);
}

function clusterIPsRelated(s: Obj): StatusCause[] {
  if (s.type === 'ExternalName') return [];
  const out: StatusCause[] = [];
  const ips: string[] = Array.isArray(s.clusterIPs) ? s.clusterIPs : [];
  if (s.clusterIP) {
    if (ips.length === 0) out.push(fe.required('spec.clusterIPs'));
    else if (ips[0] !== s.clusterIP) out.push(fe.invalid('spec.clusterIPs', goStringSlice(ips), 'first value must match `clusterIP`'));
  } else if (ips.length) {
    out.push(fe.invalid('spec.clusterIPs', goStringSlice(ips), 'must be empty when `clusterIP` is not specified'));
  }
  const families: string[] = Array.isArray(s.ipFamilies) ? s.ipFamilies : [];
  const seen = new Set<string>();
  families.forEach((f, i) => {
    if (f !== 'IPv4' && f !== 'IPv6') out.push(fe.notSupported(index('spec.ipFamilies', i), f, ['IPv4', 'IPv6']));
    if (seen.has(f)) out.push(fe.duplicate(index('spec.ipFamilies', i), f));
    seen.add(f);
  });
  if (s.ipFamilyPolicy !== undefined && s.ipFamilyPolicy !== null && !IP_FAMILY_POLICIES.includes(s.ipFamilyPolicy)) {
    out.push(fe.notSupported('spec.ipFamilyPolicy', s.ipFamilyPolicy, IP_FAMILY_POLICIES));
  }
  let invalidIPs = false;
  ips.forEach((ip, i) => {
    if (i === 0 && ip === 'None') {
      if (ips.length > 1) { invalidIPs = true; out.push(fe.invalid('spec.clusterIPs', goStringSlice(ips), "'None' must be the first and only value")); }
      return;
    }
    if (!net.isIP(ip)) { invalidIPs = true; out.push(fe.invalid(index('spec.clusterIPs', i), ip, INVALID_IP)); }
  });
  if (ips.length > 2) out.push(fe.invalid('spec.clusterIPs', goStringSlice(ips), 'may only hold up to 2 values'));
  if (invalidIPs) return out;
  if (ips.length > 1 && net.isIP(ips[0]) === net.isIP(ips[1])) {
    out.push(fe.invalid('spec.clusterIPs', goStringSlice(ips), 'may specify no more than one IP for each IP family'));
  }
  if (!isHeadless(s)) {
    ips.forEach((ip, i) => {
      if (i >= families.length) return;
      if (families[i] === 'IPv4' && net.isIPv6(ip)) out.push(fe.invalid(index('spec.clusterIPs', i), ip, `expected an IPv4 value as indicated by \`ipFamilies[${i}]\``));
      if (families[i] === 'IPv6' && !net.isIPv6(ip)) out.push(fe.invalid(index('spec.clusterIPs', i), ip, `expected an IPv6 value as indicated by \`ipFamilies[${i}]\``));
    });
  }
  return out;
}

function serviceSpec(s: Obj, annotations: Obj): StatusCause[] {
  const out: StatusCause[] = [];
  const ports: Obj[] = (Array.isArray(s.ports) ? s.ports : []).map(obj);
  const headless = isHeadless(s);
  if (ports.length === 0 && !headless && s.type !== 'ExternalName') out.push(fe.required('spec.ports'));
  if ((s.type === 'LoadBalancer' || s.type === 'NodePort') && headless) {
    out.push(fe.invalid('spec.clusterIPs[0]', 'None', `may not be set to 'None' for ${s.type} services`));
  }
  if (s.type === 'ExternalName') {
    if (Array.isArray(s.clusterIPs) && s.clusterIPs.length) out.push(fe.forbidden('spec.clusterIPs', 'may not be set for ExternalName services'));
    if (Array.isArray(s.ipFamilies) && s.ipFamilies.length) out.push(fe.forbidden('spec.ipFamilies', 'may not be set for ExternalName services'));
    if (s.ipFamilyPolicy !== undefined && s.ipFamilyPolicy !== null) out.push(fe.forbidden('spec.ipFamilyPolicy', 'may not be set for ExternalName services'));
    const cname = String(s.externalName ?? '').replace(/\.$/, '');
    if (cname) out.push(...isDNS1123Subdomain(cname).map((m) => fe.invalid('spec.externalName', cname, m)));
    else out.push(fe.required('spec.externalName'));
  }
  const names = new Set<string>();
  ports.forEach((p, i) => out.push(...validateServicePort(p, ports.length > 1, names, index('spec.ports', i))));
  if (s.selector !== undefined && s.selector !== null) out.push(...validateLabels(s.selector, 'spec.selector'));
  if (!s.sessionAffinity) out.push(fe.required('spec.sessionAffinity'));
  else if (s.sessionAffinity !== 'ClientIP' && s.sessionAffinity !== 'None') out.push(fe.notSupported('spec.sessionAffinity', s.sessionAffinity, ['ClientIP', 'None']));
  if (s.sessionAffinity === 'ClientIP') {
    const t = s.sessionAffinityConfig?.clientIP?.timeoutSeconds;
    if (!isObj(s.sessionAffinityConfig)) out.push(fe.required('spec.sessionAffinityConfig', 'when session affinity type is ClientIP'));
    else if (!isObj(s.sessionAffinityConfig.clientIP)) out.push(fe.required('spec.sessionAffinityConfig.clientIP', 'when session affinity type is ClientIP'));
    else if (typeof t !== 'number') out.push(fe.required('spec.sessionAffinityConfig.clientIP.timeoutSeconds', 'when session affinity type is ClientIP'));
    else if (t <= 0 || t > 86400) out.push(fe.invalid('spec.sessionAffinityConfig.clientIP.timeoutSeconds', t, 'must be greater than 0 and less than 86400'));
  } else if (s.sessionAffinity === 'None' && s.sessionAffinityConfig !== undefined && s.sessionAffinityConfig !== null) {
    out.push(fe.forbidden('spec.sessionAffinityConfig', 'must not be set when session affinity is None'));
  }
  out.push(...clusterIPsRelated(s));
  (Array.isArray(s.externalIPs) ? s.externalIPs : []).forEach((ip: string, i: number) => {
    if (!net.isIP(ip)) out.push(fe.invalid(index('spec.externalIPs', i), ip, INVALID_IP));
    else { const why = specialIPError(ip); if (why) out.push(fe.invalid(index('spec.externalIPs', i), ip, why)); }
  });
  if (!s.type) out.push(fe.required('spec.type'));
  else if (!SERVICE_TYPES.includes(s.type)) out.push(fe.notSupported('spec.type', s.type, SERVICE_TYPES));
  if (s.type === 'ClusterIP') {
    ports.forEach((p, i) => { if (p.nodePort) out.push(fe.forbidden(child(index('spec.ports', i), 'nodePort'), "may not be used when `type` is 'ClusterIP'")); });
  }
  const nodePorts = new Set<string>();
  ports.forEach((p, i) => {
    if (!p.nodePort) return;
    const k = `${p.protocol}/${p.nodePort}`;
    if (nodePorts.has(k)) out.push(fe.duplicate(child(index('spec.ports', i), 'nodePort'), p.nodePort));
    nodePorts.add(k);
  });
  const portKeys = new Set<string>();
  ports.forEach((p, i) => {
    const k = `${p.protocol}/${p.port}`;
    if (portKeys.has(k)) out.push(fe.duplicate(index('spec.ports', i), goServicePortKey(String(p.protocol ?? ''), p.port ?? 0)));
    portKeys.add(k);
  });
  if (Array.isArray(s.loadBalancerSourceRanges) && s.loadBalancerSourceRanges.length) {
    // Kubernetes capitalises this path in its messages.
    const f = 'spec.LoadBalancerSourceRanges';
    if (s.type !== 'LoadBalancer') out.push(fe.forbidden(f, "may only be used when `type` is 'LoadBalancer'"));
    s.loadBalancerSourceRanges.forEach((r: string, i: number) => {
      const v = String(r).trim();
      if (!isValidCIDR(v)) out.push(fe.invalid(index(f, i), v, 'must be a valid CIDR value, (e.g. 10.9.8.0/24 or 2001:db8::/64)'));
    });
  }
  if (s.allocateLoadBalancerNodePorts !== undefined && s.allocateLoadBalancerNodePorts !== null && s.type !== 'LoadBalancer') {
    out.push(fe.forbidden('spec.allocateLoadBalancerNodePorts', "may only be used when `type` is 'LoadBalancer'"));
  }
  if (s.type === 'LoadBalancer' && (s.allocateLoadBalancerNodePorts === undefined || s.allocateLoadBalancerNodePorts === null)) {
    out.push(fe.required('allocateLoadBalancerNodePorts'));
  }
  if (s.loadBalancerClass !== undefined && s.loadBalancerClass !== null) {
    if (s.type === 'LoadBalancer') out.push(...isQualifiedName(String(s.loadBalancerClass)).map((m) => fe.invalid('spec.loadBalancerClass', s.loadBalancerClass, m)));
    else out.push(fe.forbidden('spec.loadBalancerClass', "may only be used when `type` is 'LoadBalancer'"));
  }
  if (!externallyAccessible(s)) {
    if (s.externalTrafficPolicy) out.push(fe.invalid('spec.externalTrafficPolicy', s.externalTrafficPolicy, 'may only be set for externally-accessible services'));
  } else if (!s.externalTrafficPolicy) {
    out.push(fe.required('spec.externalTrafficPolicy'));
  } else if (s.externalTrafficPolicy !== 'Cluster' && s.externalTrafficPolicy !== 'Local') {
    out.push(fe.notSupported('spec.externalTrafficPolicy', s.externalTrafficPolicy, ['Cluster', 'Local']));
  }
  // The node port for health checks is allocated by the apiserver, so only a misplaced one is checked here.
  const needsHealthCheck = s.type === 'LoadBalancer' && s.externalTrafficPolicy === 'Local';
  if (!needsHealthCheck && s.healthCheckNodePort) {
    out.push(fe.invalid('spec.healthCheckNodePort', s.healthCheckNodePort, "may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"));
  }
  if (s.internalTrafficPolicy === undefined || s.internalTrafficPolicy === null) {
    if (['NodePort', 'LoadBalancer', 'ClusterIP'].includes(s.type)) out.push(fe.required('spec.internalTrafficPolicy'));
  } else if (s.internalTrafficPolicy !== 'Cluster' && s.internalTrafficPolicy !== 'Local') {
    out.push(fe.notSupported('spec.internalTrafficPolicy', s.internalTrafficPolicy, ['Cluster', 'Local']));
  }
  if (s.trafficDistribution !== undefined && s.trafficDistribution !== null && s.trafficDistribution !== 'PreferClose') {
    out.push(fe.notSupported('spec.trafficDistribution', s.trafficDistribution, ['PreferClose']));
  }
  if (annotations['service.kubernetes.io/topology-mode'] !== undefined && annotations['service.kubernetes.io/topology-aware-hints'] !== undefined &&
    annotations['service.kubernetes.io/topology-mode'] !== annotations['service.kubernetes.io/topology-aware-hints']) {
    out.unshift(fe.invalid('metadata.annotations[service.kubernetes.io/topology-mode]', annotations['service.kubernetes.io/topology-mode'],
      'must match annotations[service.kubernetes.io/topology-aware-hints] when both are specified'));
  }
  return out;
}

/** The allocated addresses and families of a Service cannot be swapped out, only added to or trimmed. */
function serviceUpdate(s: Obj, o: Obj): StatusCause[] {
  const out: StatusCause[] = [];
  if (s.type === 'ExternalName' || o.type === 'ExternalName') return out;
  const ips: string[] = Array.isArray(s.clusterIPs) ? s.clusterIPs : [];
  const oldIPs: string[] = Array.isArray(o.clusterIPs) ? o.clusterIPs : [];
  const ipsValue = goStringSlice(s.clusterIPs);
  if (!(isHeadless(s) && isHeadless(o))) {
    if (oldIPs.length === ips.length) {
      oldIPs.forEach((ip, i) => { if (ip !== ips[i]) out.push(fe.invalid(index('spec.clusterIPs', i), ipsValue, 'may not change once set')); });
    } else if (oldIPs.length > ips.length) {
      if (ips.length === 0) out.push(fe.invalid('spec.clusterIPs[0]', ipsValue, 'primary clusterIP can not be unset'));
      if (oldIPs.length && ips.length && ips[0] !== oldIPs[0]) out.push(fe.invalid('spec.clusterIPs[0]', ipsValue, 'may not change once set'));
      if (ips.length === 1 && s.ipFamilyPolicy !== 'SingleStack') {
        out.push(fe.invalid('spec.ipFamilyPolicy', s.ipFamilyPolicy ?? null, "must be set to 'SingleStack' when releasing the secondary clusterIP"));
      }
    } else if (oldIPs.length && ips[0] !== oldIPs[0]) {
      out.push(fe.invalid('spec.clusterIPs[0]', ipsValue, 'may not change once set'));
    }
  }
  const fams: string[] = Array.isArray(s.ipFamilies) ? s.ipFamilies : [];
  const oldFams: string[] = Array.isArray(o.ipFamilies) ? o.ipFamilies : [];
  if (isHeadless(s) === isHeadless(o) && !isHeadless(s)) {
    if (oldFams.length === fams.length) {
      oldFams.forEach((f, i) => { if (f !== fams[i]) out.push(fe.invalid('spec.ipFamilies[0]', goStringSlice(s.ipFamilies), 'may not change once set')); });
    } else if (oldFams.length > fams.length) {
      if (ips.length === 0) out.push(fe.invalid('spec.ipFamilies[0]', goStringSlice(s.ipFamilies), 'primary ipFamily can not be unset'));
      if (fams.length && fams[0] !== oldFams[0]) out.push(fe.invalid('spec.ipFamilies[0]', ipsValue, 'may not change once set'));
      if (fams.length === 1 && s.ipFamilyPolicy !== 'SingleStack') {
        out.push(fe.invalid('spec.ipFamilyPolicy', s.ipFamilyPolicy ?? null, "must be set to 'SingleStack' when releasing the secondary ipFamily"));
      }
    } else if (oldFams.length && fams.length && fams[0] !== oldFams[0]) {
      out.push(fe.invalid('spec.ipFamilies[0]', ipsValue, 'may not change once set'));
    }
  }
  if (s.type === 'LoadBalancer' && o.type === 'LoadBalancer' && (s.loadBalancerClass ?? null) !== (o.loadBalancerClass ?? null)) {
    out.push(fe.invalid('spec.loadBalancerClass', s.loadBalancerClass ?? null, 'may not change once set'));
  }
  const healthChecked = (x: Obj) => x.type === 'LoadBalancer' && x.externalTrafficPolicy === 'Local';
  if (healthChecked(s) && healthChecked(o) && s.healthCheckNodePort !== o.healthCheckNodePort) {
    out.push(fe.forbidden('spec.healthCheckNodePort', IMMUTABLE));
  }
  return out;
}

export function validateService(svc: KObject, old?: KObject): StatusCause[] {
  const s = obj(svc.spec);
  const annotations = obj(svc.metadata?.annotations);
  return old ? [...serviceUpdate(s, obj(old.spec)), ...serviceSpec(s, annotations)] : serviceSpec(s, annotations);
}

// ---- ConfigMaps and Secrets ----------------------------------------------------------------------

export function validateConfigMap(cm: KObject, old?: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  if (old?.immutable === true) {
    if (cm.immutable !== true) out.push(fe.forbidden('immutable', IMMUTABLE_WHEN_SET));
    if (!semanticEqual(cm.data, old.data)) out.push(fe.forbidden('data', IMMUTABLE_WHEN_SET));
    if (!semanticEqual(cm.binaryData, old.binaryData)) out.push(fe.forbidden('binaryData', IMMUTABLE_WHEN_SET));
  }
  const data = obj(cm.data);
  const binary = obj(cm.binaryData);
  let size = 0;
  for (const [k, v] of Object.entries(data)) {
    out.push(...isConfigMapKey(k).map((m) => fe.invalid(key('data', k), k, m)));
    if (k in binary) out.push(fe.invalid(key('data', k), k, 'duplicate of key present in binaryData'));
    size += Buffer.byteLength(String(v));
  }
  for (const [k, v] of Object.entries(binary)) {
    out.push(...isConfigMapKey(k).map((m) => fe.invalid(key('binaryData', k), k, m)));
    if (k in data) out.push(fe.invalid(key('binaryData', k), k, 'duplicate of key present in data'));
    size += Buffer.from(String(v), 'base64').length;
  }
  if (size > MAX_SECRET_SIZE) out.push(fe.tooLong('', MAX_SECRET_SIZE));
  return out;
}

/** The keys each well-known Secret type must carry. */
function secretTypeRules(secret: KObject, data: Obj): StatusCause[] {
  const has = (k: string) => Object.prototype.hasOwnProperty.call(data, k);
  const jsonKey = (k: string): StatusCause[] => {
    if (!has(k)) return [fe.required(key('data', k))];
    try {
      JSON.parse(Buffer.from(String(data[k]), 'base64').toString('utf8'));
      return [];
    } catch (e) {
      return [fe.invalid(key('data', k), '<secret contents redacted>', (e as Error).message)];
    }
  };
  switch (secret.type) {
    case 'kubernetes.io/service-account-token':
      return secret.metadata?.annotations?.['kubernetes.io/service-account.name']
        ? [] : [fe.required('metadata.annotations[kubernetes.io/service-account.name]')];
    case 'kubernetes.io/dockercfg': return jsonKey('.dockercfg');
    case 'kubernetes.io/dockerconfigjson': return jsonKey('.dockerconfigjson');
    case 'kubernetes.io/basic-auth':
      return has('username') || has('password') ? [] : [fe.required('data[username]'), fe.required('data[password]')];
    case 'kubernetes.io/ssh-auth':
      return data['ssh-privatekey'] ? [] : [fe.required('data[ssh-privatekey]')];
    case 'kubernetes.io/tls':
      return [...(has('tls.crt') ? [] : [fe.required('data[tls.crt]')]), ...(has('tls.key') ? [] : [fe.required('data[tls.key]')])];
    default:
      return [];
  }
}

export function validateSecret(secret: KObject, old?: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  if (old) {
    if ((secret.type ?? '') !== (old.type ?? '')) out.push(fe.invalid('type', String(secret.type ?? ''), IMMUTABLE));
    if (old.immutable === true) {
      if (secret.immutable !== true) out.push(fe.forbidden('immutable', IMMUTABLE_WHEN_SET));
      if (!semanticEqual(secret.data, old.data)) out.push(fe.forbidden('data', IMMUTABLE_WHEN_SET));
    }
  }
  const data = obj(secret.data);
  let size = 0;
  for (const [k, v] of Object.entries(data)) {
    out.push(...isConfigMapKey(k).map((m) => fe.invalid(key('data', k), k, m)));
    size += Buffer.from(String(v), 'base64').length;
  }
  if (size > MAX_SECRET_SIZE) out.push(fe.tooLong('data', MAX_SECRET_SIZE));
  out.push(...secretTypeRules(secret, data));
  return out;
}

// ---- Persistent volumes and claims ---------------------------------------------------------------

const ACCESS_MODES = ['ReadOnlyMany', 'ReadWriteMany', 'ReadWriteOnce', 'ReadWriteOncePod'];
const VOLUME_MODES = ['Block', 'Filesystem'];

function validateAccessModes(modes: unknown, field: string, requiredDetail: string): StatusCause[] {
  const list: string[] = Array.isArray(modes) ? modes : [];
  if (list.length === 0) return [fe.required(field, requiredDetail)];
  const out: StatusCause[] = [];
  for (const m of list) if (!ACCESS_MODES.includes(m)) out.push(fe.notSupported(field, m, ACCESS_MODES));
  if (list.includes('ReadWriteOncePod') && list.length > 1) out.push(fe.forbidden(field, 'may not use ReadWriteOncePod with other access modes'));
  return out;
}

function pvcSpec(s: Obj, field: string): StatusCause[] {
  const out = validateAccessModes(s.accessModes, child(field, 'accessModes'), 'at least 1 access mode is required');
  if (s.selector !== undefined && s.selector !== null) out.push(...validateLabelSelector(s.selector, child(field, 'selector')));
  const storage = s.resources?.requests?.storage;
  const storagePath = key(child(field, 'resources'), 'storage');
  if (storage === undefined) out.push(fe.required(storagePath));
  else {
    const v = quantityNanos(storage);
    if (v === undefined || v <= 0n) out.push(fe.invalid(storagePath, String(storage), 'must be greater than zero'));
  }
  if (typeof s.storageClassName === 'string' && s.storageClassName) {
    out.push(...isDNS1123Subdomain(s.storageClassName).map((m) => fe.invalid(child(field, 'storageClassName'), s.storageClassName, m)));
  }
  if (s.volumeMode !== undefined && s.volumeMode !== null && !VOLUME_MODES.includes(s.volumeMode)) {
    out.push(fe.notSupported(child(field, 'volumeMode'), s.volumeMode, VOLUME_MODES));
  }
  return out;
}

/** A claim's spec is fixed after creation, except that a bound claim may grow. */
function pvcUpdate(pvc: KObject, old: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const now: Obj = structuredClone(obj(pvc.spec));
  const before: Obj = structuredClone(obj(old.spec));
  if (!before.volumeName) before.volumeName = now.volumeName;             // binding sets volumeName once
  if (now.storageClassName !== undefined && before.storageClassName === undefined) before.storageClassName = now.storageClassName;
  const bound = (pvc.status as Obj | undefined)?.phase === 'Bound';
  if (bound && isObj(now.resources?.requests)) now.resources.requests.storage = before.resources?.requests?.storage;
  if (bound) now.volumeAttributesClassName = before.volumeAttributesClassName;
  if (!semanticEqual(now, before)) {
    out.push(fe.forbidden('spec', 'spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims'));
  }
  const newSize = quantityNanos(obj(pvc.spec).resources?.requests?.storage) ?? 0n;
  const oldSize = quantityNanos(obj(old.spec).resources?.requests?.storage) ?? 0n;
  const capacity = quantityNanos((old.status as Obj | undefined)?.capacity?.storage) ?? 0n;
  // RecoverVolumeExpansionFailure (on in 1.32): shrinking is allowed down to just above the actual capacity.
  if (newSize < oldSize && newSize <= capacity) {
    out.push(fe.forbidden('spec.resources.requests.storage', 'field can not be less than status.capacity'));
  }
  const mode = obj(pvc.spec).volumeMode ?? null;
  if (mode !== (obj(old.spec).volumeMode ?? null)) out.push(fe.invalid('volumeMode', mode, IMMUTABLE));
  return out;
}

export function validatePersistentVolumeClaim(pvc: KObject, old?: KObject): StatusCause[] {
  const out = pvcSpec(obj(pvc.spec), 'spec');
  if (old) out.push(...pvcUpdate(pvc, old));
  return out;
}

const PV_SOURCES = [
  'hostPath', 'local', 'nfs', 'csi', 'iscsi', 'fc', 'rbd', 'cephfs', 'cinder', 'glusterfs', 'flexVolume', 'azureFile',
  'azureDisk', 'vsphereVolume', 'quobyte', 'photonPersistentDisk', 'portworxVolume', 'scaleIO', 'storageos',
  'gcePersistentDisk', 'awsElasticBlockStore', 'flocker',
];

export function validatePersistentVolume(pv: KObject): StatusCause[] {
  const s = obj(pv.spec);
  const out = validateAccessModes(s.accessModes, 'spec.accessModes', '');
  if (!isObj(s.capacity) || Object.keys(s.capacity).length === 0) out.push(fe.required('spec.capacity'));
  const sources = PV_SOURCES.filter((k) => isObj(s[k]));
  if (sources.length === 0) out.push(fe.required('spec', 'must specify a volume type'));
  for (const extra of sources.slice(1)) out.push(fe.forbidden(child('spec', extra), 'may not specify more than 1 volume type'));
  if (isObj(s.hostPath) && !s.hostPath.path) out.push(fe.required('spec.hostPath.path'));
  if (isObj(s.local) && !s.local.path) out.push(fe.required('spec.local.path'));
  const reclaim = s.persistentVolumeReclaimPolicy;
  if (reclaim && !['Delete', 'Recycle', 'Retain'].includes(reclaim)) out.push(fe.notSupported('spec.persistentVolumeReclaimPolicy', reclaim, ['Delete', 'Recycle', 'Retain']));
  return out;
}

// ---- Nodes ---------------------------------------------------------------------------------------

function validateTaints(taints: unknown): StatusCause[] {
  // Kubernetes reports node taints under `metadata.taints`; kept for identical messages.
  const field = 'metadata.taints';
  const out: StatusCause[] = [];
  const seen = new Set<string>();
  (Array.isArray(taints) ? taints : []).forEach((t: Obj, i: number) => {
    const p = index(field, i);
    out.push(...validateLabelName(String(t?.key ?? ''), child(p, 'key')));
    const errs = isValidLabelValue(String(t?.value ?? ''));
    if (errs.length) out.push(fe.invalid(child(p, 'value'), String(t?.value ?? ''), errs.join(';')));
    out.push(...validateTaintEffect(t?.effect, false, child(p, 'effect')));
    const k = `${t?.effect}\u0000${t?.key}`;
    if (seen.has(k)) {
      const v = new GoValue(`core.Taint{Key:${JSON.stringify(t?.key ?? '')}, Value:${JSON.stringify(t?.value ?? '')}, Effect:${JSON.stringify(t?.effect ?? '')}, TimeAdded:(*v1.Time)(nil)}`);
      out.push(fe.duplicate(p, v, 'taints must be unique by key and effect pair'));
      return;
    }
    seen.add(k);
  });
  return out;
}

export function validateNode(node: KObject, old?: KObject): StatusCause[] {
  const s = obj(node.spec);
  const out = validateTaints(s.taints);
  if (!old) return out;
  const o = obj(old.spec);
  const oldCIDRs: string[] = Array.isArray(o.podCIDRs) ? o.podCIDRs : [];
  if (oldCIDRs.length && !semanticEqual(oldCIDRs, s.podCIDRs)) {
    out.push(fe.forbidden('spec.podCIDRs', 'node updates may not change podCIDR except from "" to valid'));
  }
  if (o.providerID && o.providerID !== s.providerID) {
    out.push(fe.forbidden('spec.providerID', 'node updates may not change providerID except from "" to valid'));
  }
  return out;
}

// ---- Events (core/v1) ----------------------------------------------------------------------------

/** core/v1 Events keep their legacy, lenient validation: mostly namespace agreement. */
export function validateCoreEvent(ev: KObject): StatusCause[] {
  const out: StatusCause[] = [];
  const ns = ev.metadata?.namespace ?? '';
  const involvedNs = (ev.involvedObject as Obj | undefined)?.namespace ?? '';
  if (!ev.eventTime) {
    if (!involvedNs ? ns !== '' && ns !== 'default' : ns !== involvedNs) {
      out.push(fe.invalid('involvedObject.namespace', involvedNs, 'does not match event.namespace'));
    }
  } else {
    if (!involvedNs && ns !== 'default' && ns !== 'kube-system') out.push(fe.invalid('involvedObject.namespace', involvedNs, 'does not match event.namespace'));
    const rc = String(ev.reportingComponent ?? '');
    if (!rc) out.push(fe.required('reportingComponent'));
    out.push(...isQualifiedName(rc).map((m) => fe.invalid('reportingComponent', rc, m)));
    if (!ev.reportingInstance) out.push(fe.required('reportingInstance'));
    else if (String(ev.reportingInstance).length > 128) out.push(fe.invalid('reportingInstance', '', 'can have at most 128 characters'));
    if (!ev.action) out.push(fe.required('action'));
    else if (String(ev.action).length > 128) out.push(fe.invalid('action', '', 'can have at most 128 characters'));
    if (!ev.reason) out.push(fe.required('reason'));
    else if (String(ev.reason).length > 128) out.push(fe.invalid('reason', '', 'can have at most 128 characters'));
    if (String(ev.message ?? '').length > 1024) out.push(fe.invalid('message', '', 'can have at most 1024 characters'));
  }
  out.push(...isDNS1123Subdomain(ns).map((m) => fe.invalid('namespace', ns, m)));
  return out;
}
