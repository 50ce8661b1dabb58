// What the ReplicaSet controller (replicaset/: its wiring and reconcile) applies, and the Deployment
// controller shares, as kube-controller-manager's replicaset controller does it:
//  - ownership: a controller adopts matching orphans and releases owned objects that stopped
//    matching (claimObjects, client-go's ControllerRefManager);
//  - surplus pods are deleted least valuable first (Kubernetes' ranking, see `comparePodsForDeletion`);
//  - status: replicas, fullyLabeledReplicas, readyReplicas, availableReplicas (minReadySeconds),
//    observedGeneration and the ReplicaFailure condition.
import { controllerOf, type KObject, type OwnerReference } from '../api/object.js';
import { matchLabelSet } from '../api/selectors.js';
import { isPodActive, isPodAvailable, isPodReady, podReadyCondition } from '../api/pod.js';
import { rfc3339 } from '../util/time.js';
import { ApiError } from '../api/status.js';
import { isNotFound, type ApiClient, type ResourceRef } from '../client/types.js';

type Obj = KObject & Record<string, any>;

// ---- ownership ----------------------------------------------------------------------------------

/** Index: an object's controller's uid. */
export const byControllerUid = (o: KObject): string[] => {
  const ref = controllerOf(o);
  return ref ? [ref.uid] : [];
};

/** Index: the namespace of objects nobody controls (candidates for adoption). */
export const orphansByNamespace = (o: KObject): string[] => (controllerOf(o) ? [] : [o.metadata.namespace ?? '']);

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
    const ref = controllerOf(o);
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

const PHASE_ORDINAL: Record<string, number> = { Pending: 0, Unknown: 1, Running: 2 };
const DELETION_COST = 'controller.kubernetes.io/pod-deletion-cost';

function deletionCost(p: Obj): number {
  const v = p.metadata.annotations?.[DELETION_COST];
  if (v === undefined || !/^[-+]?\d+$/.test(v)) return 0;
  const n = Number(v);
  return n >= -2147483648 && n <= 2147483647 ? n : 0;
}

function readyTime(p: Obj): number {
  const c = podReadyCondition(p);
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


/** The status a ReplicaSet should report for the pods it owns (`manageError` from the last sync). */
export function replicaSetStatus(rs: Obj, pods: Obj[], manageError: unknown, now = Date.now()): Record<string, any> {
  const templateLabels: Record<string, string> = rs.spec?.template?.metadata?.labels ?? {};
  const minReady = rs.spec?.minReadySeconds ?? 0;
  let fullyLabeled = 0, ready = 0, available = 0;
  for (const p of pods) {
    const labels = p.metadata.labels ?? {};
    if (matchLabelSet(templateLabels, labels)) fullyLabeled++;
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
