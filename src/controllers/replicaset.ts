// The ReplicaSet controller: keeps `spec.replicas` active pods that match a ReplicaSet's selector and
// that it owns (controller ownerReference), as kube-controller-manager's replicaset controller does:
//  - it adopts matching orphans and releases owned pods that stopped matching;
//  - it creates missing pods in slow-start batches (1, 2, 4, ...) of at most `burstReplicas`, and
//    deletes surplus ones least valuable first (Kubernetes' ranking, see `comparePodsForDeletion`);
//  - expectations (expectations.ts) remember the creations and deletions in flight, so a resync
//    before the informer has seen them does not create or delete twice;
//  - status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (minReadySeconds),
//    observedGeneration and the ReplicaFailure condition.
// The helpers below (ownership, pod readiness) are shared with the Deployment controller.
import type { KObject, OwnerReference } from '../api/object.js';
import { matchLabelSelectorObject } from '../api/selectors.js';
import { ApiError } from '../api/status.js';
import { isNotFound, Resources, type ApiClient, type ResourceRef } from '../client/types.js';
import type { ControllerContext } from './context.js';
import { enqueueOnChange, runController, type RunningController } from '../client/controller.js';
import { keyOf } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';
import { Expectations } from './expectations.js';
import { slowStartBatch } from './slow-start.js';

/** Kubernetes' default: never more than this many creations or deletions in one sync. */
export const BURST_REPLICAS = 500;

const IDX_PODS_BY_CONTROLLER = 'replicaset/pods-by-controller';
const IDX_ORPHAN_PODS = 'replicaset/orphan-pods-by-namespace';
const IDX_RS_BY_NAMESPACE = 'replicaset/by-namespace';
const IDX_RS_BY_CONTROLLER = 'replicaset/by-controller';

type Obj = KObject & Record<string, any>;

// ---- ownership ----------------------------------------------------------------------------------

export function controllerRefOf(o: KObject): OwnerReference | undefined {
  return o.metadata.ownerReferences?.find((r) => r.controller === true);
}

export function ownerRef(owner: KObject, apiVersion: string, kind: string): OwnerReference {
  return { apiVersion, kind, name: owner.metadata.name!, uid: owner.metadata.uid!, controller: true, blockOwnerDeletion: true };
}

/** Index: an object's controller's uid. */
export const byControllerUid = (o: KObject): string[] => {
  const ref = controllerRefOf(o);
  return ref ? [ref.uid] : [];
};

/** Index: the namespace of objects nobody controls (candidates for adoption). */
export const orphansByNamespace = (o: KObject): string[] => (controllerRefOf(o) ? [] : [o.metadata.namespace ?? '']);

export const byNamespace = (o: KObject): string[] => [o.metadata.namespace ?? ''];

export interface ClaimSpec<T extends KObject> {
  client: ApiClient;
  resource: ResourceRef;
  owner: KObject;
  ownerRef: OwnerReference;
  /** Objects the owner controls plus orphans in its namespace. */
  candidates: T[];
  matches(o: T): boolean;
  /** Fresh read of the owner from the API: adoption must not happen for an owner being deleted. */
  ownerResource: ResourceRef;
}

/**
 * client-go's ControllerRefManager: the objects `owner` controls after adopting matching orphans and
 * releasing owned objects that no longer match. Objects controlled by someone else are left alone.
 */
export async function claimObjects<T extends KObject>(spec: ClaimSpec<T>): Promise<T[]> {
  const { owner, client, resource } = spec;
  const ownerUid = owner.metadata.uid;
  const ownerDeleting = Boolean(owner.metadata.deletionTimestamp);
  const claimed: T[] = [];
  const failures: unknown[] = [];
  let adoptable: Promise<void> | undefined;
  const canAdopt = () => (adoptable ??= (async () => {
    const fresh = await client.get(spec.ownerResource, owner.metadata.namespace, owner.metadata.name!);
    if (!fresh || fresh.metadata.uid !== ownerUid) throw new Error(`original ${owner.metadata.namespace}/${owner.metadata.name} is gone: got uid ${fresh?.metadata.uid}, wanted ${ownerUid}`);
    if (fresh.metadata.deletionTimestamp) throw new Error(`${owner.metadata.namespace}/${owner.metadata.name} has just been deleted at ${fresh.metadata.deletionTimestamp}`);
  })());

  for (const o of spec.candidates) {
    const ref = controllerRefOf(o);
    const ns = o.metadata.namespace;
    const name = o.metadata.name!;
    if (ref) {
      if (ref.uid !== ownerUid) continue;
      if (spec.matches(o)) { claimed.push(o); continue; }
      // Ours but no longer selected: let go, unless the owner is going away anyway.
      if (ownerDeleting) continue;
      try {
        await client.patch(resource, ns, name, 'strategic', { metadata: { ownerReferences: [{ $patch: 'delete', uid: ownerUid }], uid: o.metadata.uid } });
      } catch (e) {
        // Gone, or its ownerReferences changed under us: either way it is not ours any more.
        if (!isNotFound(e) && !(e instanceof ApiError && e.code === 422)) failures.push(e);
      }
      continue;
    }
    if (ownerDeleting || o.metadata.deletionTimestamp || !spec.matches(o)) continue;
    try {
      await canAdopt();
      const adopted = await client.patch<T>(resource, ns, name, 'strategic', { metadata: { ownerReferences: [spec.ownerRef], uid: o.metadata.uid } });
      claimed.push(adopted);
    } catch (e) {
      if (!isNotFound(e)) failures.push(e);
    }
  }
  if (failures.length) throw failures[0];
  return claimed;
}

// ---- pods ---------------------------------------------------------------------------------------

/** Not finished and not being deleted (controller.IsPodActive). */
export function isPodActive(p: Obj): boolean {
  const phase = p.status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed' && !p.metadata.deletionTimestamp;
}

function readyCondition(p: Obj): any {
  return (p.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
}

export function isPodReady(p: Obj): boolean {
  return readyCondition(p)?.status === 'True';
}

/** Ready for at least `minReadySeconds` (podutil.IsPodAvailable). */
export function isPodAvailable(p: Obj, minReadySeconds: number, nowMs: number): boolean {
  if (!isPodReady(p)) return false;
  if (!minReadySeconds) return true;
  const since = Date.parse(readyCondition(p)?.lastTransitionTime ?? '');
  return Number.isFinite(since) && since + minReadySeconds * 1000 < nowMs;
}

const PHASE_ORDINAL: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };
const DELETION_COST = 'controller.kubernetes.io/pod-deletion-cost';

function deletionCost(p: Obj): number {
  const v = p.metadata.annotations?.[DELETION_COST];
  if (v === undefined || !/^[-+]?\d+$/.test(v)) return 0;
  const n = Number(v);
  return n >= -2147483648 && n <= 2147483647 ? n : 0;
}

function readyTime(p: Obj): number {
  const c = readyCondition(p);
  return c?.status === 'True' ? Date.parse(c.lastTransitionTime ?? '') || 0 : 0;
}

function maxRestarts(p: Obj): number {
  let max = 0;
  for (const c of p.status?.containerStatuses ?? []) max = Math.max(max, c.restartCount ?? 0);
  return max;
}

/** Compares durations since `now` by their power of two, so pods of about the same age tie. */
function logRankDiff(t1: number, t2: number, now: number): number {
  const r = (t: number) => (now - t > 0 ? Math.floor(Math.log2((now - t) * 1e6)) : -1);  // Go compares nanoseconds
  return r(t1) - r(t2);
}

/** "a is more recent than b", with an unknown time counting as most recent (afterOrZero). */
function afterOrZero(a: number, b: number): boolean {
  if (!a || !b) return !a;
  return a > b;
}

interface RankedPod { pod: Obj; rank: number }

/**
 * Kubernetes' order of preference for deletion (ActivePodsWithRanks.Less with LogarithmicScaleDown):
 * unassigned before assigned; Pending before Unknown before Running; not ready before ready; lower
 * pod-deletion-cost first; more pods of the same family on its node first; ready more recently
 * first; more container restarts first; created more recently first; then by uid.
 * Returns < 0 when `a` should go before `b`.
 */
export function comparePodsForDeletion(a: RankedPod, b: RankedPod, now: number): number {
  const pa = a.pod, pb = b.pod;
  const na = pa.spec?.nodeName ?? '', nb = pb.spec?.nodeName ?? '';
  if (na !== nb && (!na || !nb)) return !na ? -1 : 1;
  const oa = PHASE_ORDINAL[pa.status?.phase] ?? 0, ob = PHASE_ORDINAL[pb.status?.phase] ?? 0;
  if (oa !== ob) return oa - ob;
  const ra = isPodReady(pa), rb = isPodReady(pb);
  if (ra !== rb) return ra ? 1 : -1;
  const ca = deletionCost(pa), cb = deletionCost(pb);
  if (ca !== cb) return ca - cb;
  if (a.rank !== b.rank) return b.rank - a.rank;
  const byUid = () => (String(pa.metadata.uid) < String(pb.metadata.uid) ? -1 : 1);
  if (ra && rb) {
    const ta = readyTime(pa), tb = readyTime(pb);
    if (ta !== tb) {
      if (!ta || !tb) return afterOrZero(ta, tb) ? -1 : 1;
      const d = logRankDiff(ta, tb, now);
      return d === 0 ? byUid() : d;
    }
  }
  const xa = maxRestarts(pa), xb = maxRestarts(pb);
  if (xa !== xb) return xb - xa;
  const ta = Date.parse(pa.metadata.creationTimestamp ?? '') || 0, tb = Date.parse(pb.metadata.creationTimestamp ?? '') || 0;
  if (ta !== tb) {
    if (!ta || !tb) return afterOrZero(ta, tb) ? -1 : 1;
    const d = logRankDiff(ta, tb, now);
    return d === 0 ? byUid() : d;
  }
  return 0;
}

/**
 * The `count` pods to delete from `pods`: ranked by how many active `related` pods (the family's
 * pods, e.g. every ReplicaSet of one Deployment) share their node, then by comparePodsForDeletion.
 */
export function podsToDelete(pods: Obj[], related: Obj[], count: number, now = Date.now()): Obj[] {
  if (count >= pods.length) return pods.slice(0, count);
  const onNode = new Map<string, number>();
  for (const p of related) if (isPodActive(p)) onNode.set(p.spec?.nodeName ?? '', (onNode.get(p.spec?.nodeName ?? '') ?? 0) + 1);
  const ranked = pods.map((pod) => ({ pod, rank: onNode.get(pod.spec?.nodeName ?? '') ?? 0 }));
  ranked.sort((a, b) => comparePodsForDeletion(a, b, now));
  return ranked.slice(0, count).map((r) => r.pod);
}

// ---- status -------------------------------------------------------------------------------------

function rfc3339(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d+Z$/, 'Z');
}

/** The status a ReplicaSet should report for the pods it owns (`manageError` from the last sync). */
export function replicaSetStatus(rs: Obj, pods: Obj[], manageError: unknown, now = Date.now()): Record<string, any> {
  const templateLabels: Record<string, string> = rs.spec?.template?.metadata?.labels ?? {};
  const minReady = rs.spec?.minReadySeconds ?? 0;
  let fullyLabeled = 0, ready = 0, available = 0;
  for (const p of pods) {
    const labels = p.metadata.labels ?? {};
    if (Object.entries(templateLabels).every(([k, v]) => labels[k] === v)) fullyLabeled++;
    if (isPodReady(p)) {
      ready++;
      if (isPodAvailable(p, minReady, now)) available++;
    }
  }
  const old = rs.status ?? {};
  let conditions: any[] = (old.conditions ?? []).slice();
  const failure = conditions.find((c) => c.type === 'ReplicaFailure');
  if (manageError && !failure) {
    const diff = pods.length - (rs.spec?.replicas ?? 1);
    const reason = diff < 0 ? 'FailedCreate' : diff > 0 ? 'FailedDelete' : '';
    const message = manageError instanceof Error ? manageError.message : String(manageError);
    conditions.push({ type: 'ReplicaFailure', status: 'True', lastTransitionTime: rfc3339(now), reason, message });
  } else if (!manageError && failure) {
    conditions = conditions.filter((c) => c.type !== 'ReplicaFailure');
  }
  // Field presence as Kubernetes serializes ReplicaSetStatus: `replicas` always, the rest omitempty.
  const status: Record<string, any> = { replicas: pods.length };
  if (fullyLabeled) status.fullyLabeledReplicas = fullyLabeled;
  if (ready) status.readyReplicas = ready;
  if (available) status.availableReplicas = available;
  status.observedGeneration = rs.metadata.generation ?? old.observedGeneration;
  if (conditions.length) status.conditions = conditions;
  return status;
}

function sameStatus(a: Record<string, any> | undefined, b: Record<string, any>): boolean {
  return JSON.stringify(sortKeys(a ?? {})) === JSON.stringify(sortKeys(b));
}

function sortKeys(v: any): any {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys(v[k])]));
  return v;
}

// ---- the controller -----------------------------------------------------------------------------

export interface ReplicaSetControllerOptions {
  workers?: number;
  burstReplicas?: number;
}

export function startReplicaSetController(ctx: ControllerContext, opts: ReplicaSetControllerOptions = {}): RunningController {
  const { client, events } = ctx;
  const burst = opts.burstReplicas ?? BURST_REPLICAS;
  const rsInf = ctx.informers.informerFor<Obj>(Resources.replicaSets, {
    indexers: { [IDX_RS_BY_NAMESPACE]: byNamespace, [IDX_RS_BY_CONTROLLER]: byControllerUid },
  });
  const podInf = ctx.informers.informerFor<Obj>(Resources.pods, {
    indexers: { [IDX_PODS_BY_CONTROLLER]: byControllerUid, [IDX_ORPHAN_PODS]: orphansByNamespace },
  });
  const queue = new WorkQueue<string>();
  const expectations = new Expectations();

  const ownerOf = (pod: Obj, ref = controllerRefOf(pod)): Obj | undefined => {
    if (!ref || ref.kind !== 'ReplicaSet' || !ref.apiVersion.startsWith('apps/')) return undefined;
    const rs = rsInf.getByName(pod.metadata.namespace, ref.name);
    return rs && rs.metadata.uid === ref.uid ? rs : undefined;
  };
  const enqueueMatching = (pod: Obj) => {
    for (const rs of rsInf.byIndex(IDX_RS_BY_NAMESPACE, pod.metadata.namespace ?? '')) {
      if (matchLabelSelectorObject(rs.spec?.selector, pod.metadata.labels)) queue.add(keyOf(rs));
    }
  };
  const podDeleted = (pod: Obj) => {
    const rs = ownerOf(pod);
    if (!rs) return;
    const key = keyOf(rs);
    expectations.deletionObserved(key, keyOf(pod));
    queue.add(key);
  };

  rsInf.addHandlers(enqueueOnChange(queue));
  podInf.addHandlers({
    onAdd: (pod) => {
      if (pod.metadata.deletionTimestamp) { podDeleted(pod); return; }
      if (controllerRefOf(pod)) {
        const rs = ownerOf(pod);
        if (!rs) return;
        expectations.creationObserved(keyOf(rs));
        queue.add(keyOf(rs));
        return;
      }
      enqueueMatching(pod);
    },
    onUpdate: (old, cur) => {
      if (old.metadata.resourceVersion === cur.metadata.resourceVersion) return;
      const labelsChanged = JSON.stringify(old.metadata.labels ?? {}) !== JSON.stringify(cur.metadata.labels ?? {});
      if (cur.metadata.deletionTimestamp) {
        // Being deleted counts as deleted: the controller replaces it without waiting for it to go.
        podDeleted(cur);
        if (labelsChanged) podDeleted(old);
        return;
      }
      const oldRef = controllerRefOf(old), curRef = controllerRefOf(cur);
      const refChanged = oldRef?.uid !== curRef?.uid;
      if (refChanged && oldRef) {
        const rs = ownerOf(old, oldRef);
        if (rs) queue.add(keyOf(rs));
      }
      if (curRef) {
        const rs = ownerOf(cur, curRef);
        if (!rs) return;
        queue.add(keyOf(rs));
        // Becoming available takes minReadySeconds more: look again then, not only on the next event.
        const minReady = rs.spec?.minReadySeconds ?? 0;
        if (!isPodReady(old) && isPodReady(cur) && minReady > 0) queue.addAfter(keyOf(rs), (minReady + 1) * 1000);
        return;
      }
      if (labelsChanged || refChanged) enqueueMatching(cur);
    },
    onDelete: podDeleted,
  });

  const createPod = async (rs: Obj): Promise<void> => {
    const t = rs.spec.template ?? {};
    const meta = t.metadata ?? {};
    const pod: Obj = {
      apiVersion: 'v1', kind: 'Pod',
      metadata: {
        generateName: `${rs.metadata.name}-`,
        namespace: rs.metadata.namespace,
        labels: { ...(meta.labels ?? {}) },
        ...(meta.annotations ? { annotations: { ...meta.annotations } } : {}),
        ...(meta.finalizers ? { finalizers: [...meta.finalizers] } : {}),
        ownerReferences: [ownerRef(rs, 'apps/v1', 'ReplicaSet')],
      },
      spec: structuredClone(t.spec ?? {}),
    };
    try {
      const created = await client.create(Resources.pods, rs.metadata.namespace, pod);
      events.record(rs, 'Normal', 'SuccessfulCreate', `Created pod: ${created.metadata.name}`);
    } catch (e) {
      // A namespace being deleted refuses every creation; there is nothing to retry.
      if (e instanceof ApiError && e.code === 403 && /being terminated/.test(e.message)) return;
      events.record(rs, 'Warning', 'FailedCreate', `Error creating: ${e instanceof Error ? e.message : String(e)}`);
      throw e;
    }
  };

  const manageReplicas = async (rs: Obj, key: string, pods: Obj[]): Promise<void> => {
    const diff = pods.length - (rs.spec?.replicas ?? 1);
    if (diff < 0) {
      const n = Math.min(-diff, burst);
      expectations.expect(key, n);
      const { successes, error } = await slowStartBatch(Array.from({ length: n }), () => createPod(rs));
      // Creations never attempted (or failed) will not be seen by the informer: stop expecting them.
      for (let i = successes; i < n; i++) expectations.creationObserved(key);
      if (error) throw error;
    } else if (diff > 0) {
      const n = Math.min(diff, burst);
      const victims = podsToDelete(pods, relatedPods(rs, pods), n);
      expectations.expect(key, 0, victims.map(keyOf));
      const failures: unknown[] = [];
      await Promise.all(victims.map(async (pod) => {
        try {
          await client.delete(Resources.pods, pod.metadata.namespace, pod.metadata.name!);
          events.record(rs, 'Normal', 'SuccessfulDelete', `Deleted pod: ${pod.metadata.name}`);
        } catch (e) {
          expectations.deletionObserved(key, keyOf(pod));
          if (!isNotFound(e)) {
            events.record(rs, 'Warning', 'FailedDelete', `Error deleting: ${e instanceof Error ? e.message : String(e)}`);
            failures.push(e);
          }
        }
      }));
      if (failures.length) throw failures[0];
    }
  };

  /** Pods of every ReplicaSet sharing this one's controller (a Deployment's family), for node ranking. */
  const relatedPods = (rs: Obj, own: Obj[]): Obj[] => {
    const ref = controllerRefOf(rs);
    if (!ref) return own;
    const out: Obj[] = [];
    for (const sibling of rsInf.byIndex(IDX_RS_BY_CONTROLLER, ref.uid)) out.push(...podInf.byIndex(IDX_PODS_BY_CONTROLLER, sibling.metadata.uid!));
    return out;
  };

  const writeStatus = async (rs: Obj, status: Record<string, any>): Promise<void> => {
    let current = rs;
    for (let attempt = 0; ; attempt++) {
      if (sameStatus(current.status, status)) return;
      try {
        // observedGeneration stays the generation this sync acted on, even when retrying on a newer object.
        await client.updateStatus(Resources.replicaSets, current.metadata.namespace, { ...current, status });
        return;
      } catch (e) {
        if (attempt >= 1 || !(e instanceof ApiError && e.code === 409)) throw e;
        const fresh = await client.get<Obj>(Resources.replicaSets, rs.metadata.namespace, rs.metadata.name!);
        if (!fresh || fresh.metadata.uid !== rs.metadata.uid) return;
        current = fresh;
      }
    }
  };

  const reconcile = async (key: string) => {
    const rs = rsInf.get(key);
    if (!rs) { expectations.forget(key); return; }
    const needsSync = expectations.satisfied(key);
    const ns = rs.metadata.namespace!;
    const matches = (p: Obj) => matchLabelSelectorObject(rs.spec?.selector, p.metadata.labels);
    const candidates = [...podInf.byIndex(IDX_PODS_BY_CONTROLLER, rs.metadata.uid!), ...podInf.byIndex(IDX_ORPHAN_PODS, ns)].filter(isPodActive);
    const pods = await claimObjects({
      client, resource: Resources.pods, owner: rs, ownerRef: ownerRef(rs, 'apps/v1', 'ReplicaSet'),
      candidates, matches, ownerResource: Resources.replicaSets,
    });
    let manageError: unknown;
    if (needsSync && !rs.metadata.deletionTimestamp) {
      try { await manageReplicas(rs, key, pods); } catch (e) { manageError = e; }
    }
    const status = replicaSetStatus(rs, pods, manageError);
    await writeStatus(rs, status);
    if (manageError) throw manageError;
    const minReady = rs.spec?.minReadySeconds ?? 0;
    if (minReady > 0 && (rs.spec?.replicas ?? 1) === (status.readyReplicas ?? 0) && (status.readyReplicas ?? 0) !== (status.availableReplicas ?? 0)) {
      return { requeueAfterMs: minReady * 1000 };
    }
    return undefined;
  };

  return runController({ name: 'replicaset-controller', queue, informers: [rsInf, podInf], workers: opts.workers ?? 5, reconcile });
}
