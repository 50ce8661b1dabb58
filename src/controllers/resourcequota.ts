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
import type { ControllerContext } from './context.js';
import { runController, type RunningController } from '../client/controller.js';
import { keyOf, splitKey, type Informer } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';
import { computeUsage } from '../api/quota.js';

type Obj = KObject & Record<string, any>;

// The usage arithmetic is shared with quota admission: it lives in api/quota.ts.
export { computeUsage, countsAgainstQuota, matchesScopes, podUsage, format } from '../api/quota.js';
const BY_NAMESPACE = 'resourcequota-controller/namespace';

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
  // Pods, services and claims are what quotas name most: followed from the start, and waited for.
  const initial = ['pods', 'services', 'persistentvolumeclaims'].map((r) => informerOf(r)!);
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
      if (!inf.hasSynced()) { waiting = true; return []; }  // one made on demand, after the start
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

  return runController({ name: 'resourcequota-controller', queue, workers: 2, informers: [quotas, ...initial], reconcile });
}

/** `deployments.apps` or `pods` → the built-in namespaced resource, read through its stored version. */
function refOf(groupResource: string): ResourceRef | undefined {
  const dot = groupResource.indexOf('.');
  const resource = dot < 0 ? groupResource : groupResource.slice(0, dot);
  const group = dot < 0 ? '' : groupResource.slice(dot + 1);
  const info = BUILTIN_KINDS.find((k) => k.group === group && k.plural === resource && k.namespaced && !k.virtual && !k.storage);
  return info ? { group, version: info.version, resource } : undefined;
}
