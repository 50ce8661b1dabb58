// The StatefulSet controller (pkg/controller/statefulset): pods with stable names `<set>-<ordinal>`,
// each with its own PersistentVolumeClaims `<claim>-<set>-<ordinal>` from volumeClaimTemplates.
// OrderedReady creates one pod at a time in ordinal order, each only after the previous is Running and
// Ready, and removes them highest ordinal first; Parallel does both without waiting. RollingUpdate
// replaces pods from the highest ordinal down to `partition`, one at a time and only while every pod
// is healthy; OnDelete replaces a pod when someone deletes it. Templates are ControllerRevisions; each
// pod's `controller-revision-hash` label names the revision it runs.
//
// Names are deterministic, so a restarted loop finds what it made and never makes it twice: a
// create that races an earlier one fails with AlreadyExists and the next pass sees the pod.
import type { KObject } from '../api/object.js';
import { Resources, isAlreadyExists, isNotFound } from '../client/types.js';
import { enqueueOnChange, runController, type RunningController } from '../client/controller.js';
import { keyOf } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';
import type { ControllerContext } from './context.js';
import { REVISION_HASH_LABEL, ensureRevision, hashOf, revisionData, templateOf, truncateHistory } from './revision-hash.js';
import {
  controllerOf, controllerUidIndex, isPodAvailable, isPodReady, isTerminating, msUntilAvailable, podFromTemplate,
} from './workload-pods.js';

type Obj = Record<string, any>;

const KIND = 'StatefulSet';
const POD_INDEX = 'statefulset-controller:owner';
const REVISION_INDEX = 'statefulset-controller:owner';
export const POD_NAME_LABEL = 'statefulset.kubernetes.io/pod-name';
export const POD_INDEX_LABEL = 'apps.kubernetes.io/pod-index';

/** The ordinal in a member pod's name, or -1 when the pod is not named like one of the set's. */
export function ordinalOf(setName: string, podName: string): number {
  if (!podName.startsWith(`${setName}-`)) return -1;
  const rest = podName.slice(setName.length + 1);
  return /^(0|[1-9]\d*)$/.test(rest) ? Number(rest) : -1;
}

export function claimName(claim: string, setName: string, ordinal: number): string {
  return `${claim}-${setName}-${ordinal}`;
}

export interface StatefulSetControllerOptions {
  workers?: number;
  now?: () => number;
}

export function startStatefulSetController(ctx: ControllerContext, opts: StatefulSetControllerOptions = {}): RunningController {
  const now = opts.now ?? Date.now;
  const { client, events } = ctx;
  const setInf = ctx.informers.informerFor(Resources.statefulSets);
  const podInf = ctx.informers.informerFor(Resources.pods, { indexers: { [POD_INDEX]: controllerUidIndex(KIND) } });
  const revInf = ctx.informers.informerFor(Resources.controllerRevisions, { indexers: { [REVISION_INDEX]: controllerUidIndex(KIND) } });
  const pvcInf = ctx.informers.informerFor(Resources.persistentVolumeClaims);
  const queue = new WorkQueue<string>();

  const ownerKey = (pod: KObject): string | undefined => {
    const ref = controllerOf(pod);
    if (!ref || ref.kind !== KIND) return undefined;
    const set = setInf.getByName(pod.metadata.namespace, ref.name);
    return set && set.metadata.uid === ref.uid ? keyOf(set) : undefined;
  };
  const enqueuePod = (p: KObject) => { const k = ownerKey(p); if (k) queue.add(k); };
  setInf.addHandlers(enqueueOnChange(queue));
  podInf.addHandlers({ onAdd: enqueuePod, onUpdate: (_o, n) => enqueuePod(n), onDelete: enqueuePod });

  async function sync(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const set = setInf.get(key) as Obj | undefined;
    if (!set || set.metadata.deletionTimestamp) return;
    const ns = String(set.metadata.namespace);
    const name = String(set.metadata.name);
    const uid = String(set.metadata.uid);
    const spec = set.spec ?? {};
    const t = now();
    const minReady = Number(spec.minReadySeconds ?? 0);

    const revisions = revInf.byIndex(REVISION_INDEX, uid);
    const collisionCount = Number(set.status?.collisionCount ?? 0);
    const data = revisionData(spec.template ?? {});
    const ensured = await ensureRevision(client, set as KObject, revisions, hashOf(data, collisionCount), data, spec.template?.metadata?.labels);
    if (ensured.collision) {
      const next = structuredClone(set);
      next.status = { ...(next.status ?? {}), collisionCount: collisionCount + 1 };
      await client.updateStatus(Resources.statefulSets, ns, next as KObject);
      throw new Error(`controller revision name taken; retrying with collisionCount ${collisionCount + 1}`);
    }
    const updateRev = ensured.revision;
    const currentRev = revisions.find((r) => r.metadata.name === set.status?.currentRevision) ?? updateRev;
    const updateName = String(updateRev.metadata.name);
    const currentName = String(currentRev.metadata.name);
    const hashOfRev = (r: KObject) => String(r.metadata.labels?.[REVISION_HASH_LABEL]);
    const revisionOfPod = (p: KObject) => p.metadata.labels?.[REVISION_HASH_LABEL];
    const currentTemplate = templateOf(currentRev) ?? spec.template ?? {};

    const start = Number(spec.ordinals?.start ?? 0);
    const count = Number(spec.replicas ?? 1);
    const end = start + count;
    const replicas = new Map<number, KObject>();
    const condemned: { ord: number; pod: KObject }[] = [];
    for (const p of podInf.byIndex(POD_INDEX, uid)) {
      const ord = ordinalOf(name, String(p.metadata.name));
      if (ord < 0) continue;
      if (ord >= start && ord < end) replicas.set(ord, p);
      else condemned.push({ ord, pod: p });
    }
    condemned.sort((a, b) => b.ord - a.ord);
    const monotonic = spec.podManagementPolicy !== 'Parallel';
    const healthy = (p: KObject) => !isTerminating(p) && (p as Obj).status?.phase === 'Running' && isPodAvailable(p, minReady, t);
    let requeueAfterMs: number | undefined;
    const wakeIn = (ms: number) => { requeueAfterMs = requeueAfterMs === undefined ? ms : Math.min(requeueAfterMs, ms); };

    const newPod = (ord: number): Obj => {
      const rolling = (spec.updateStrategy?.type ?? 'RollingUpdate') === 'RollingUpdate';
      const partition = Number(spec.updateStrategy?.rollingUpdate?.partition ?? 0);
      const keepCurrent = rolling && currentName !== updateName && (spec.updateStrategy?.rollingUpdate
        ? ord < start + partition
        : ord < start + Number(set.status?.currentReplicas ?? 0));
      const template = keepCurrent ? currentTemplate : spec.template ?? {};
      const podName = `${name}-${ord}`;
      const pod = podFromTemplate(template, {
        namespace: ns, owner: set as KObject, name: podName,
        labels: { [POD_NAME_LABEL]: podName, [POD_INDEX_LABEL]: String(ord), [REVISION_HASH_LABEL]: hashOfRev(keepCurrent ? currentRev : updateRev) },
      });
      pod.spec.hostname = podName;
      if (spec.serviceName) pod.spec.subdomain = spec.serviceName;
      const volumes: Obj[] = (pod.spec.volumes ?? []).filter((v: Obj) => !(spec.volumeClaimTemplates ?? []).some((c: Obj) => c.metadata?.name === v.name));
      for (const c of spec.volumeClaimTemplates ?? []) {
        volumes.push({ name: c.metadata.name, persistentVolumeClaim: { claimName: claimName(c.metadata.name, name, ord) } });
      }
      if (volumes.length) pod.spec.volumes = volumes;
      return pod;
    };

    const act = async (): Promise<void> => {
      for (let ord = start; ord < end; ord++) {
        const pod = replicas.get(ord);
        const phase = pod ? (pod as Obj).status?.phase : undefined;
        if (pod && !isTerminating(pod) && (phase === 'Failed' || phase === 'Succeeded')) {
          // A pod that ended is recreated under the same name, once its deletion is through.
          await deletePod(set, pod);
          if (monotonic) return;
          continue;
        }
        if (!pod) {
          await ensureClaims(set, ord);
          await createPod(set, newPod(ord));
          if (monotonic) return;
          continue;
        }
        if (isTerminating(pod)) { if (monotonic) return; continue; }
        if (!healthy(pod)) {
          const wait = msUntilAvailable(pod, minReady, t);
          if (wait) wakeIn(wait);
          if (monotonic) return;
          continue;
        }
        await ensureClaims(set, ord);
      }
      const firstUnhealthy = [...[...replicas.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p), ...condemned.map((c) => c.pod)]
        .find((p) => !healthy(p));
      for (const { pod } of condemned) {
        if (isTerminating(pod)) { if (monotonic) return; continue; }
        if (monotonic && firstUnhealthy && firstUnhealthy !== pod) return;
        await releaseClaimsToPod(set, pod);
        await deletePod(set, pod);
        if (monotonic) return;
      }
      if ((spec.updateStrategy?.type ?? 'RollingUpdate') !== 'RollingUpdate') return;
      const partition = Number(spec.updateStrategy?.rollingUpdate?.partition ?? 0);
      for (let ord = end - 1; ord >= start + partition; ord--) {
        const pod = replicas.get(ord);
        if (!pod) return;
        if (revisionOfPod(pod) !== hashOfRev(updateRev) && !isTerminating(pod)) {
          await deletePod(set, pod);
          return;
        }
        if (!healthy(pod)) return;
      }
    };
    await act();

    const inUse = new Set<string>([updateName, currentName]);
    const liveHashes = new Set(podInf.byIndex(POD_INDEX, uid).map(revisionOfPod));
    for (const r of revisions) if (liveHashes.has(hashOfRev(r))) inUse.add(String(r.metadata.name));
    await truncateHistory(client, revInf.byIndex(REVISION_INDEX, uid), inUse, Number(spec.revisionHistoryLimit ?? 10));

    await updateStatus(set, hashOfRev(currentRev), hashOfRev(updateRev), currentName, updateName, minReady, t, wakeIn);
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  async function createPod(set: Obj, pod: Obj): Promise<KObject | undefined> {
    try {
      const made = await client.create(Resources.pods, set.metadata.namespace, pod as KObject);
      events.record(set as KObject, 'Normal', 'SuccessfulCreate', `create Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} successful`);
      return made;
    } catch (e) {
      // Made already by an earlier pass the cache has not shown yet: the next pass sees it.
      if (isAlreadyExists(e)) return undefined;
      events.record(set as KObject, 'Warning', 'FailedCreate', `create Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} failed error: ${(e as Error).message}`);
      throw e;
    }
  }

  async function deletePod(set: Obj, pod: KObject): Promise<void> {
    try {
      await client.delete(Resources.pods, set.metadata.namespace, String(pod.metadata.name), { preconditions: { uid: pod.metadata.uid } });
      events.record(set as KObject, 'Normal', 'SuccessfulDelete', `delete Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} successful`);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** Creates the pod's missing claims; with `whenDeleted: Delete` they are owned by the set, so they go with it. */
  async function ensureClaims(set: Obj, ord: number): Promise<void> {
    const ns = String(set.metadata.namespace);
    const name = String(set.metadata.name);
    const deleteWithSet = set.spec?.persistentVolumeClaimRetentionPolicy?.whenDeleted === 'Delete';
    for (const c of set.spec?.volumeClaimTemplates ?? []) {
      const claim = claimName(c.metadata.name, name, ord);
      if (pvcInf.getByName(ns, claim)) continue;
      const body: Obj = {
        apiVersion: 'v1', kind: 'PersistentVolumeClaim',
        metadata: { name: claim, namespace: ns, labels: { ...(c.metadata.labels ?? {}), ...(set.spec?.selector?.matchLabels ?? {}) } },
        spec: structuredClone(c.spec ?? {}),
      };
      if (c.metadata.annotations) body.metadata.annotations = { ...c.metadata.annotations };
      if (deleteWithSet) body.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: KIND, name, uid: set.metadata.uid }];
      try {
        await client.create(Resources.persistentVolumeClaims, ns, body as KObject);
        events.record(set as KObject, 'Normal', 'SuccessfulCreate', `create Claim ${claim} Pod ${name}-${ord} in StatefulSet ${name} success`);
      } catch (e) {
        if (isAlreadyExists(e)) continue;
        events.record(set as KObject, 'Warning', 'FailedCreate', `create Claim ${claim} for Pod ${name}-${ord} in StatefulSet ${name} failed error: ${(e as Error).message}`);
        throw e;
      }
    }
  }

  /** With `whenScaled: Delete`, a condemned pod's claims become the pod's, so the garbage collector removes them after it. */
  async function releaseClaimsToPod(set: Obj, pod: KObject): Promise<void> {
    if (set.spec?.persistentVolumeClaimRetentionPolicy?.whenScaled !== 'Delete') return;
    const ns = String(set.metadata.namespace);
    const ord = ordinalOf(String(set.metadata.name), String(pod.metadata.name));
    for (const c of set.spec?.volumeClaimTemplates ?? []) {
      const pvc = pvcInf.getByName(ns, claimName(c.metadata.name, String(set.metadata.name), ord));
      if (!pvc || pvc.metadata.ownerReferences?.some((r) => r.uid === pod.metadata.uid)) continue;
      const next = structuredClone(pvc) as Obj;
      next.metadata.ownerReferences = [...(next.metadata.ownerReferences ?? []), { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid }];
      await client.update(Resources.persistentVolumeClaims, ns, next as KObject);
    }
  }

  async function updateStatus(set: Obj, currentHash: string, updateHash: string, currentName: string, updateName: string,
    minReady: number, t: number, wakeIn: (ms: number) => void): Promise<void> {
    let replicas = 0, ready = 0, available = 0, current = 0, updated = 0;
    for (const p of podInf.byIndex(POD_INDEX, String(set.metadata.uid))) {
      if (ordinalOf(String(set.metadata.name), String(p.metadata.name)) < 0) continue;
      replicas++;
      if ((p as Obj).status?.phase === 'Running' && isPodReady(p) && !isTerminating(p)) {
        ready++;
        if (isPodAvailable(p, minReady, t)) available++;
        else wakeIn(msUntilAvailable(p, minReady, t) ?? 0);
      }
      if (isTerminating(p)) continue;
      const h = p.metadata.labels?.[REVISION_HASH_LABEL];
      if (h === currentHash) current++;
      if (h === updateHash) updated++;
    }
    const status: Obj = {
      ...(set.status ?? {}),
      observedGeneration: set.metadata.generation, replicas, readyReplicas: ready, currentReplicas: current,
      updatedReplicas: updated, availableReplicas: available, currentRevision: currentName, updateRevision: updateName,
    };
    status.collisionCount = Number(set.status?.collisionCount ?? 0);
    // A finished rolling update makes the update revision the current one (completeRollingUpdate).
    if ((set.spec?.updateStrategy?.type ?? 'RollingUpdate') === 'RollingUpdate' && updated === replicas && ready === replicas
      && replicas === Number(set.spec?.replicas ?? 1)) {
      status.currentReplicas = updated;
      status.currentRevision = updateName;
    }
    if (JSON.stringify(status) === JSON.stringify(set.status ?? {})) return;
    const next = structuredClone(set);
    next.status = status;
    await client.updateStatus(Resources.statefulSets, set.metadata.namespace, next as KObject);
  }

  return runController({ name: 'statefulset-controller', workers: opts.workers ?? 2, queue, informers: [setInf, podInf, revInf, pvcInf], reconcile: sync });
}
