// ResourceQuota arithmetic, shared by the quota controller (status.used) and quota admission: which
// objects count, how pod requests and limits add up, scopes, and Kubernetes' quantity rendering.
import type { KObject } from './object.js';
import { parseQuantity } from './quantity.js';
import { isPodTerminal, podQosClass, podResourceTotal, type ResourceSum } from './pod.js';

type Obj = KObject & Record<string, any>;
const LEGACY_COUNTS: Record<string, string> = {
  configmaps: 'count/configmaps', secrets: 'count/secrets', replicationcontrollers: 'count/replicationcontrollers',
  resourcequotas: 'count/resourcequotas', services: 'count/services', persistentvolumeclaims: 'count/persistentvolumeclaims', pods: 'count/pods',
};
const STORAGE_CLASS_SUFFIX = '.storageclass.storage.k8s.io/';

/** A sum of quantities, kept in thousandths so cpu and plain amounts share one representation. */
export interface Amount { milli: number; binary: boolean }

/**
 * `status.used` for the resources named: `objectsOf('pods')` gives the namespace's objects of one
 * resource (undefined for a resource this server does not have, which then counts nothing).
 */
export function computeUsage(quota: Obj, names: string[], objectsOf: (groupResource: string) => Obj[] | undefined, now: number): Record<string, string> {
  const used: Record<string, string> = {};
  const podSums = new Map<string, Amount>();
  let podCount = 0;
  let podsDone = false;
  const pods = () => {
    if (podsDone) return;
    podsDone = true;
    for (const pod of objectsOf('pods') ?? []) {
      if (!countsAgainstQuota(pod, now) || !matchesScopes(quota, pod)) continue;
      podCount++;
      for (const [name, a] of podUsage(pod)) add(podSums, name, a);
    }
  };
  for (const name of names) {
    const legacy = LEGACY_COUNTS[name];
    if (name === 'pods' || name === 'count/pods') { pods(); used[name] = String(podCount); continue; }
    if (isComputeResource(name)) {
      pods();
      const key = name.startsWith('requests.') || name.startsWith('limits.') ? name : `requests.${name}`;
      used[name] = format(podSums.get(key), name);
      continue;
    }
    if (name === 'services.loadbalancers' || name === 'services.nodeports') {
      let n = 0;
      for (const s of objectsOf('services') ?? []) {
        const type = s.spec?.type;
        if (name === 'services.loadbalancers') { if (type === 'LoadBalancer') n++; continue; }
        if (type === 'NodePort') n += (s.spec?.ports ?? []).length;
        else if (type === 'LoadBalancer') n += (s.spec?.ports ?? []).filter((p: any) => p.nodePort).length;
      }
      used[name] = String(n);
      continue;
    }
    if (name === 'requests.storage' || name.includes(STORAGE_CLASS_SUFFIX)) {
      const cls = name.includes(STORAGE_CLASS_SUFFIX) ? name.slice(0, name.indexOf(STORAGE_CLASS_SUFFIX)) : undefined;
      const what = cls === undefined ? 'requests.storage' : name.slice(name.indexOf(STORAGE_CLASS_SUFFIX) + STORAGE_CLASS_SUFFIX.length);
      const claims = (objectsOf('persistentvolumeclaims') ?? []).filter((c) => cls === undefined || c.spec?.storageClassName === cls);
      if (what === 'persistentvolumeclaims') { used[name] = String(claims.length); continue; }
      const sum = new Map<string, Amount>();
      for (const c of claims) {
        const q = c.spec?.resources?.requests?.storage;
        if (q !== undefined) add(sum, 'storage', amountOf(q, false));
      }
      used[name] = format(sum.get('storage'), name);
      continue;
    }
    const counted = legacy ?? (name.startsWith('count/') ? name : undefined);
    if (counted) {
      used[name] = String((objectsOf(counted.slice('count/'.length)) ?? []).length);
    }
  }
  return used;
}

function isComputeResource(name: string): boolean {
  if (name === 'cpu' || name === 'memory' || name === 'ephemeral-storage') return true;
  if (name === 'requests.storage') return false;
  return name.startsWith('requests.') || name.startsWith('limits.');
}

/** A finished pod, or one past its deletion grace period, no longer holds quota. */
export function countsAgainstQuota(pod: Obj, now: number): boolean {
  if (isPodTerminal(pod)) return false;
  const del = pod.metadata.deletionTimestamp;
  const grace = pod.metadata.deletionGracePeriodSeconds;
  if (del && grace !== undefined && now > Date.parse(del) + grace * 1000) return false;
  return true;
}

/** The BestEffort quota scope is the pod's QoS class (GetPodQOS). */
function isBestEffort(pod: Obj): boolean {
  return podQosClass(pod) === 'BestEffort';
}

function scopeMatches(scope: string, op: string, values: string[] | undefined, pod: Obj): boolean {
  switch (scope) {
    case 'Terminating': return pod.spec?.activeDeadlineSeconds !== undefined && pod.spec?.activeDeadlineSeconds !== null;
    case 'NotTerminating': return pod.spec?.activeDeadlineSeconds === undefined || pod.spec?.activeDeadlineSeconds === null;
    case 'BestEffort': return isBestEffort(pod);
    case 'NotBestEffort': return !isBestEffort(pod);
    case 'PriorityClass': {
      const pc = pod.spec?.priorityClassName;
      const has = typeof pc === 'string' && pc !== '';
      switch (op) {
        case 'In': return has && (values ?? []).includes(pc);
        case 'NotIn': return !has || !(values ?? []).includes(pc);
        case 'Exists': return has;
        case 'DoesNotExist': return !has;
        default: return false;
      }
    }
    case 'CrossNamespacePodAffinity': {
      const terms = [pod.spec?.affinity?.podAffinity, pod.spec?.affinity?.podAntiAffinity].flatMap((a: any) => [
        ...(a?.requiredDuringSchedulingIgnoredDuringExecution ?? []),
        ...(a?.preferredDuringSchedulingIgnoredDuringExecution ?? []).map((w: any) => w.podAffinityTerm),
      ]);
      return terms.some((t: any) => t?.namespaceSelector || t?.namespaces?.length);
    }
    default: return false;
  }
}

/** Whether a pod falls under every scope of the quota (`spec.scopes` and `spec.scopeSelector`). */
export function matchesScopes(quota: Obj, pod: Obj): boolean {
  for (const s of quota.spec?.scopes ?? []) if (!scopeMatches(s, 'Exists', undefined, pod)) return false;
  for (const e of quota.spec?.scopeSelector?.matchExpressions ?? []) {
    if (!scopeMatches(e.scopeName, e.operator, e.values, pod)) return false;
  }
  return true;
}

function amountOf(q: string | number, cpu: boolean): Amount {
  return { milli: parseQuantity(q, 3), binary: !cpu && typeof q === 'string' && /i$/.test(q) };
}

function add(into: Map<string, Amount>, name: string, a: Amount): void {
  const cur = into.get(name);
  // The sum is written in the style of the first quantity added, as Kubernetes' Quantity.Add keeps it.
  if (cur) cur.milli += a.milli; else into.set(name, { ...a });
}

function maxInto(into: Map<string, Amount>, from: Map<string, Amount>): void {
  for (const [name, a] of from) {
    const cur = into.get(name);
    if (!cur || cur.milli < a.milli) into.set(name, { ...a });
  }
}

const USAGE_SUM: ResourceSum<Map<string, Amount>> = {
  empty: () => new Map(),
  add: (into, from) => { for (const [n, a] of from) add(into, n, a); },
  max: maxInto,
};

function containerUsage(c: any): Map<string, Amount> {
  const out = new Map<string, Amount>();
  const requests = c.resources?.requests ?? {};
  const limits = c.resources?.limits ?? {};
  for (const [name, q] of Object.entries(requests)) add(out, `requests.${name}`, amountOf(q as string, name === 'cpu'));
  for (const [name, q] of Object.entries(limits)) {
    add(out, `limits.${name}`, amountOf(q as string, name === 'cpu'));
    // The API server defaults a missing request to its limit.
    if (requests[name] === undefined) add(out, `requests.${name}`, amountOf(q as string, name === 'cpu'));
  }
  return out;
}

/** `requests.<r>` and `limits.<r>` of a pod: its containers and sidecars, at least its largest init step, plus overhead. */
export function podUsage(pod: Obj): Map<string, Amount> {
  const total = podResourceTotal(pod.spec, containerUsage, USAGE_SUM);
  for (const [name, q] of Object.entries(pod.spec?.overhead ?? {})) {
    add(total, `requests.${name}`, amountOf(q as string, name === 'cpu'));
    add(total, `limits.${name}`, amountOf(q as string, name === 'cpu'));
  }
  return total;
}

const BINARY_SUFFIXES: [string, number][] = [['Ei', 2 ** 60], ['Pi', 2 ** 50], ['Ti', 2 ** 40], ['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10]];
const DECIMAL_SUFFIXES: [string, number][] = [['E', 1e18], ['P', 1e15], ['T', 1e12], ['G', 1e9], ['M', 1e6], ['k', 1e3]];

/** A quantity as Kubernetes writes it canonically: `500m`, `2`, `128Mi`, `1G`. */
export function format(a: Amount | undefined, name: string): string {
  if (!a || a.milli === 0) return '0';
  const isCpu = name === 'cpu' || name.endsWith('.cpu');
  if (isCpu || a.milli % 1000 !== 0) return a.milli % 1000 === 0 ? String(a.milli / 1000) : `${a.milli}m`;
  const v = a.milli / 1000;
  for (const [suffix, size] of a.binary ? BINARY_SUFFIXES : DECIMAL_SUFFIXES) {
    if (v % size === 0) return `${v / size}${suffix}`;
  }
  return String(v);
}
