// PodDisruptionBudget status, as kube-controller-manager's disruption controller keeps it: how many
// selected pods are healthy (Ready, not terminating, not just evicted), how many must stay healthy
// (minAvailable / maxUnavailable, integers or percentages; percentages and maxUnavailable are taken of
// the scale of the pods' controllers), and so how many disruptions are allowed now. The eviction API
// (pods/eviction) reads `disruptionsAllowed` and records evicted pods in `disruptedPods`; this loop
// drops those entries once the pod is terminating or gone, or after two minutes if it never went.
// When the expected count cannot be worked out the budget fails safe: no disruption allowed.
import { controllerOf, type KObject } from '../api/object.js';
import { Resources } from '../client/types.js';
import { matchLabelSelectorObject } from '../api/selectors.js';
import type { ControllerContext } from './context.js';
import { isPodReady } from '../api/pod.js';
import { runController, type RunningController } from '../client/controller.js';
import { nowRfc3339 } from '../util/time.js';
import { keyOf, type Informer } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';

type Obj = KObject & Record<string, any>;

/** How long an evicted pod may take to start terminating before it counts as healthy again. */
export const DELETION_TIMEOUT_MS = 2 * 60_000;
const BY_NAMESPACE = 'disruption-controller/namespace';

export interface ExpectedCount {
  expectedCount: number;
  desiredHealthy: number;
  unmanagedPods: string[];
}

/** Looks up a pod's controller (namespace, name) in the informers of the kinds with a scale. */
export type ControllerLookup = (kind: string, group: string, namespace: string, name: string) => Obj | undefined;

export function startDisruptionController(ctx: ControllerContext): RunningController {
  const byNamespace = { [BY_NAMESPACE]: (o: KObject) => [o.metadata.namespace ?? ''] };
  const pdbs = ctx.informers.informerFor<Obj>(Resources.podDisruptionBudgets, { indexers: byNamespace });
  const pods = ctx.informers.informerFor<Obj>(Resources.pods, { indexers: byNamespace });
  const scaled: Record<string, Informer<Obj>> = {
    'apps/ReplicaSet': ctx.informers.informerFor<Obj>(Resources.replicaSets),
    'apps/Deployment': ctx.informers.informerFor<Obj>(Resources.deployments),
    'apps/StatefulSet': ctx.informers.informerFor<Obj>(Resources.statefulSets),
    '/ReplicationController': ctx.informers.informerFor<Obj>(Resources.replicationControllers),
  };
  const lookup: ControllerLookup = (kind, group, ns, name) => scaled[`${group === 'extensions' ? 'apps' : group}/${kind}`]?.getByName(ns, name);
  const queue = new WorkQueue<string>();

  const podChanged = (pod: Obj) => {
    for (const pdb of pdbs.byIndex(BY_NAMESPACE, pod.metadata.namespace ?? '')) {
      if (matchLabelSelectorObject(pdb.spec?.selector, pod.metadata.labels)) queue.add(keyOf(pdb));
    }
  };
  pdbs.addHandlers({ onAdd: (p) => queue.add(keyOf(p)), onUpdate: (_o, p) => queue.add(keyOf(p)) });
  pods.addHandlers({
    onAdd: podChanged,
    onUpdate: (old, pod) => { podChanged(pod); if (old.metadata.labels !== pod.metadata.labels) podChanged(old); },
    onDelete: podChanged,
  });

  const reconcile = async (key: string) => {
    const pdb = pdbs.get(key);
    if (!pdb) return;
    const selected = pods.byIndex(BY_NAMESPACE, pdb.metadata.namespace!).filter((p) => matchLabelSelectorObject(pdb.spec?.selector, p.metadata.labels));
    if (selected.length === 0) ctx.events.record(pdb, 'Normal', 'NoPods', 'No matching pods found');
    let expected: ExpectedCount;
    try {
      expected = expectedPodCount(pdb, selected, lookup);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      ctx.events.record(pdb, 'Warning', 'CalculateExpectedPodCountFailed', `Failed to calculate the number of expected pods: ${message}`);
      await writeStatus(ctx, pdb, failSafeStatus(pdb, message));
      return;
    }
    if (expected.unmanagedPods.length) {
      ctx.events.record(pdb, 'Warning', 'UnmanagedPods', `Pods selected by this PodDisruptionBudget (selector: ${JSON.stringify(pdb.spec?.selector)}) were found `
        + 'to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. '
        + 'To account for these pods please set ".spec.minAvailable" field of the PDB to an integer value.');
    }
    const now = Date.now();
    const { disrupted, recheckAt } = disruptedPods(pdb, selected, now);
    const status = pdbStatus(pdb, healthyCount(selected, disrupted, now), expected, disrupted);
    await writeStatus(ctx, pdb, status);
    return recheckAt === undefined ? undefined : { requeueAfterMs: Math.max(0, recheckAt - now) };
  };

  return runController({ name: 'disruption-controller', queue, workers: 2, informers: [pdbs, pods, ...Object.values(scaled)], reconcile });
}

/** `"50%"` of `total` (rounded up or down), or an integer as is. */
export function scaledValue(v: number | string, total: number, roundUp: boolean): number {
  if (typeof v === 'number') return v;
  const m = /^(\d+)%$/.exec(v);
  if (!m) throw new Error(`invalid value for IntOrString: invalid type: string is not a percentage`);
  const exact = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(exact) : Math.floor(exact);
}

/**
 * The number of pods the budget expects and how many of them must be healthy. An integer
 * minAvailable counts the selected pods; percentages and maxUnavailable are of the summed scale of
 * the pods' controllers (a Deployment's for pods of its ReplicaSets).
 */
export function expectedPodCount(pdb: Obj, pods: Obj[], lookup: ControllerLookup): ExpectedCount {
  const { minAvailable, maxUnavailable } = pdb.spec ?? {};
  if (maxUnavailable !== undefined && maxUnavailable !== null) {
    const { expectedCount, unmanagedPods } = expectedScale(pods, lookup);
    const desiredHealthy = Math.max(0, expectedCount - scaledValue(maxUnavailable, expectedCount, true));
    return { expectedCount, desiredHealthy, unmanagedPods };
  }
  if (typeof minAvailable === 'number') return { expectedCount: pods.length, desiredHealthy: minAvailable, unmanagedPods: [] };
  if (typeof minAvailable === 'string') {
    const { expectedCount, unmanagedPods } = expectedScale(pods, lookup);
    return { expectedCount, desiredHealthy: scaledValue(minAvailable, expectedCount, true), unmanagedPods };
  }
  return { expectedCount: 0, desiredHealthy: 0, unmanagedPods: [] };
}

function groupOf(apiVersion: string): string {
  const i = apiVersion.indexOf('/');
  return i < 0 ? '' : apiVersion.slice(0, i);
}

function expectedScale(pods: Obj[], lookup: ControllerLookup): { expectedCount: number; unmanagedPods: string[] } {
  const scaleByController = new Map<string, number>();
  const unmanagedPods: string[] = [];
  for (const pod of pods) {
    const ref = controllerOf(pod);
    if (!ref) { unmanagedPods.push(pod.metadata.name!); continue; }
    if (scaleByController.has(ref.uid)) continue;
    const found = controllerScale(ref.kind, groupOf(ref.apiVersion), pod.metadata.namespace!, ref.name, ref.uid, lookup);
    if (!found) throw new Error(`found no controllers for pod "${pod.metadata.name}"`);
    scaleByController.set(found.uid, found.scale);
  }
  let expectedCount = 0;
  for (const n of scaleByController.values()) expectedCount += n;
  return { expectedCount, unmanagedPods };
}

function controllerScale(kind: string, group: string, ns: string, name: string, uid: string, lookup: ControllerLookup): { uid: string; scale: number } | undefined {
  const c = lookup(kind, group, ns, name);
  if (!c || c.metadata.uid !== uid) return undefined;
  if (kind === 'ReplicaSet') {
    // A Deployment's ReplicaSets come and go during a rollout; the Deployment's scale is the one that lasts.
    const owner = controllerOf(c);
    if (owner?.kind === 'Deployment') return controllerScale('Deployment', groupOf(owner.apiVersion), ns, owner.name, owner.uid, lookup);
  }
  return { uid, scale: c.spec?.replicas ?? 1 };
}

/** Evicted pods still expected to start terminating, and when the earliest of them times out. */
export function disruptedPods(pdb: Obj, pods: Obj[], now: number): { disrupted: Record<string, string>; recheckAt?: number } {
  const recorded: Record<string, string> = pdb.status?.disruptedPods ?? {};
  const disrupted: Record<string, string> = {};
  let recheckAt: number | undefined;
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp) continue;
    const at = recorded[pod.metadata.name!];
    if (at === undefined) continue;
    const expires = Date.parse(at) + DELETION_TIMEOUT_MS;
    if (expires < now) continue;
    disrupted[pod.metadata.name!] = at;
    if (recheckAt === undefined || expires < recheckAt) recheckAt = expires;
  }
  return { disrupted, recheckAt };
}

export function healthyCount(pods: Obj[], disrupted: Record<string, string>, now: number): number {
  let n = 0;
  for (const pod of pods) {
    if (pod.metadata.deletionTimestamp) continue;
    const at = disrupted[pod.metadata.name!];
    if (at !== undefined && Date.parse(at) + DELETION_TIMEOUT_MS > now) continue;
    if (isPodReady(pod)) n++;
  }
  return n;
}

export function pdbStatus(pdb: Obj, currentHealthy: number, e: ExpectedCount, disrupted: Record<string, string>): Record<string, any> {
  // A budget that matches no pods yet allows nothing, so the first pods are safe before the next sync.
  let disruptionsAllowed = currentHealthy - e.desiredHealthy;
  if (e.expectedCount <= 0 || disruptionsAllowed <= 0) disruptionsAllowed = 0;
  const observedGeneration = pdb.metadata.generation ?? 0;
  const allowed = disruptionsAllowed > 0;
  return {
    ...(Object.keys(disrupted).length ? { disruptedPods: disrupted } : {}),
    disruptionsAllowed, currentHealthy, desiredHealthy: e.desiredHealthy, expectedPods: e.expectedCount, observedGeneration,
    conditions: withCondition(pdb.status?.conditions, {
      type: 'DisruptionAllowed', status: allowed ? 'True' : 'False', reason: allowed ? 'SufficientPods' : 'InsufficientPods', message: '', observedGeneration,
    }),
  };
}

function failSafeStatus(pdb: Obj, message: string): Record<string, any> {
  const status = structuredClone(pdb.status ?? {}) as Record<string, any>;
  status.disruptionsAllowed = 0;
  status.conditions = withCondition(status.conditions, {
    type: 'DisruptionAllowed', status: 'False', reason: 'SyncFailed', message, observedGeneration: status.observedGeneration ?? 0,
  });
  return status;
}

/** Sets one condition, keeping its lastTransitionTime unless its status changes (apimachinery's SetStatusCondition). */
function withCondition(conditions: any[] | undefined, c: { type: string; status: string; reason: string; message: string; observedGeneration: number }): any[] {
  const out = (conditions ?? []).filter((x) => x.type !== c.type).map((x) => ({ ...x }));
  const prev = (conditions ?? []).find((x) => x.type === c.type);
  const lastTransitionTime = prev && prev.status === c.status ? prev.lastTransitionTime : nowRfc3339();
  const { type, status, observedGeneration, reason, message } = c;
  out.push({ type, status, observedGeneration, lastTransitionTime, reason, message });
  return out;
}

async function writeStatus(ctx: ControllerContext, pdb: Obj, status: Record<string, any>): Promise<void> {
  if (JSON.stringify(pdb.status ?? {}) === JSON.stringify(status)) return;
  const next = structuredClone(pdb) as Obj;
  next.status = status;
  await ctx.client.updateStatus(Resources.podDisruptionBudgets, pdb.metadata.namespace, next);
}
