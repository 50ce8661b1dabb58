// ResourceQuota status, as kube-controller-manager's resource quota controller keeps it: for every
// resource a quota names in `spec.hard`, `status.used` is what the namespace holds now:
//  - pods: `pods`, `count/pods`, and the compute sums `cpu`/`requests.cpu`, `memory`/`requests.memory`,
//    `limits.cpu`, `limits.memory`, `[requests.|limits.]ephemeral-storage`, `requests.<extended>`, over
//    pods that are not finished (a pod past its deletion grace period no longer counts), restricted
//    by the quota's scopes (Terminating, NotTerminating, BestEffort, NotBestEffort, PriorityClass);
//  - services: `services`, `services.loadbalancers`, `services.nodeports`;
//  - persistent volume claims: count, `requests.storage`, and the per-storage-class variants;
//  - any other built-in kind: `count/<resource>[.<group>]` (and the legacy `configmaps`, `secrets`,
//    `replicationcontrollers`, `resourcequotas`).
// Only the status is kept here; refusing writes over quota is admission's job.
import { BUILTIN_KINDS } from '../api/kinds.js';
import type { KObject } from '../api/object.js';
import { Resources, type ResourceRef } from '../client/types.js';
import type { ControllerContext, RunningController } from './context.js';
import { runController } from './framework/controller.js';
import { keyOf, splitKey, type Informer } from './framework/informer.js';
import { WorkQueue } from './framework/workqueue.js';
import { parseQuantity } from './scheduler/resources.js';

type Obj = KObject & Record<string, any>;
const BY_NAMESPACE = 'resourcequota-controller/namespace';
const LEGACY_COUNTS: Record<string, string> = {
  configmaps: 'count/configmaps', secrets: 'count/secrets', replicationcontrollers: 'count/replicationcontrollers',
  resourcequotas: 'count/resourcequotas', services: 'count/services', persistentvolumeclaims: 'count/persistentvolumeclaims', pods: 'count/pods',
};
const STORAGE_CLASS_SUFFIX = '.storageclass.storage.k8s.io/';

/** A sum of quantities, kept in thousandths so cpu and plain amounts share one representation. */
interface Amount { milli: number; binary: boolean }

export function startResourceQuotaController(ctx: ControllerContext): RunningController {
  const byNamespace = { [BY_NAMESPACE]: (o: KObject) => [o.metadata.namespace ?? ''] };
  const quotas = ctx.informers.informerFor<Obj>(Resources.resourceQuotas, { indexers: byNamespace });
  const queue = new WorkQueue<string>();
  const counted = new Map<string, Informer<Obj>>();
  const enqueueNamespace = (o: KObject) => {
    for (const q of quotas.byIndex(BY_NAMESPACE, o.metadata.namespace ?? '')) queue.add(keyOf(q));
  };
  /** The informer of a namespaced built-in resource (`pods`, `deployments.apps`), made on first use. */
  const informerOf = (groupResource: string): Informer<Obj> | undefined => {
    let inf = counted.get(groupResource);
    if (inf) return inf;
    const ref = refOf(groupResource);
    if (!ref) return undefined;
    inf = ref.resource === 'resourcequotas' ? quotas : ctx.informers.informerFor<Obj>(ref, { indexers: byNamespace });
    counted.set(groupResource, inf);
    inf.addHandlers({ onAdd: enqueueNamespace, onUpdate: (_o, n) => enqueueNamespace(n), onDelete: enqueueNamespace });
    return inf;
  };
  // Pods, services and claims are what quotas name most: followed from the start.
  for (const r of ['pods', 'services', 'persistentvolumeclaims']) informerOf(r);
  quotas.addHandlers({ onAdd: (q) => queue.add(keyOf(q)), onUpdate: (_o, q) => queue.add(keyOf(q)) });

  const reconcile = async (key: string) => {
    const quota = quotas.get(key);
    if (!quota) return;
    const ns = splitKey(key).namespace!;
    const hard: Record<string, string> = quota.spec?.hard ?? {};
    const lists = new Map<string, Obj[]>();
    let waiting = false;
    const objectsOf = (groupResource: string): Obj[] | undefined => {
      if (lists.has(groupResource)) return lists.get(groupResource);
      const inf = informerOf(groupResource);
      if (!inf) return undefined;
      if (!inf.hasSynced()) { waiting = true; return []; }
      const items = inf.byIndex(BY_NAMESPACE, ns);
      lists.set(groupResource, items);
      return items;
    };
    const used = computeUsage(quota, Object.keys(hard), objectsOf, Date.now());
    // An informer made just now has not listed yet: come back rather than write a short count.
    if (waiting) return { requeueAfterMs: 100 };
    const status = { hard: { ...hard }, used };
    if (JSON.stringify(quota.status ?? {}) === JSON.stringify(status)) return;
    const next = structuredClone(quota) as Obj;
    next.status = status;
    await ctx.client.updateStatus(Resources.resourceQuotas, ns, next);
  };

  const c = runController({ name: 'resourcequota-controller', queue, workers: 2, reconcile });
  return { name: 'resourcequota-controller', stop: () => c.stop() };
}

/** `deployments.apps` or `pods` → the built-in namespaced resource, read through its stored version. */
function refOf(groupResource: string): ResourceRef | undefined {
  const dot = groupResource.indexOf('.');
  const resource = dot < 0 ? groupResource : groupResource.slice(0, dot);
  const group = dot < 0 ? '' : groupResource.slice(dot + 1);
  const info = BUILTIN_KINDS.find((k) => k.group === group && k.plural === resource && k.namespaced && !k.virtual && !k.storage);
  return info ? { group, version: info.version, resource } : undefined;
}

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
  const phase = pod.status?.phase;
  if (phase === 'Succeeded' || phase === 'Failed') return false;
  const del = pod.metadata.deletionTimestamp;
  const grace = pod.metadata.deletionGracePeriodSeconds;
  if (del && grace !== undefined && now > Date.parse(del) + grace * 1000) return false;
  return true;
}

function isBestEffort(pod: Obj): boolean {
  for (const c of [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])]) {
    for (const part of ['requests', 'limits']) {
      const list = c.resources?.[part] ?? {};
      if (list.cpu !== undefined || list.memory !== undefined) return false;
    }
  }
  return true;
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
  const total = new Map<string, Amount>();
  for (const c of pod.spec?.containers ?? []) for (const [n, a] of containerUsage(c)) add(total, n, a);
  const sidecars = new Map<string, Amount>();
  const initPeak = new Map<string, Amount>();
  for (const c of pod.spec?.initContainers ?? []) {
    const u = containerUsage(c);
    if (c.restartPolicy === 'Always') {
      for (const [n, a] of u) { add(total, n, a); add(sidecars, n, a); }
      maxInto(initPeak, sidecars);
    } else {
      for (const [n, a] of sidecars) add(u, n, a);
      maxInto(initPeak, u);
    }
  }
  maxInto(total, initPeak);
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
