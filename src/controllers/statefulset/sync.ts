// One StatefulSet's reconcile, against listers and a client (no informer, queue or timer of its own).
// The wiring is controller.ts.
import type { KObject } from '../../api/object.js';
import { Resources, isAlreadyExists, isNotFound, type ApiClient } from '../../client/types.js';
import type { ReconcileResult } from '../../client/controller.js';
import type { Lister } from '../../client/informer.js';
import { REVISION_HASH_LABEL, ensureRevision, hashOf, revisionData, templateOf, truncateHistory } from '../revision-hash.js';
import { isTerminating, podFromTemplate } from '../workload-pods.js';
import { POD_INDEX_LABEL, POD_NAME_LABEL, claimName, ordinalOf } from './pods.js';
import { statefulSetStatus } from './status.js';
import { type EventRecorder } from '../../client/events.js';
import { isPodAvailable, msUntilAvailable } from '../../api/pod.js';


type Obj = Record<string, any>;

export const STATEFULSET_KIND = 'StatefulSet';
/** The pod lister's and the revision lister's index of objects by their StatefulSet's uid. */
export const STATEFULSET_OWNER_INDEX = 'statefulset-controller:owner';

/** StatefulSets, their pods and ControllerRevisions (both with STATEFULSET_OWNER_INDEX), and the claims. */
export interface StatefulSetListers {
  sets: Lister;
  pods: Lister;
  revisions: Lister;
  claims: Lister;
}

export interface StatefulSetSyncDeps {
  client: ApiClient;
  events: EventRecorder;
  listers: StatefulSetListers;
  /** The clock minReadySeconds is judged by. */
  now: () => number;
}

export class StatefulSetSync {
  constructor(private readonly d: StatefulSetSyncDeps) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { client, listers } = this.d;
    const set = listers.sets.get(key) as Obj | undefined;
    if (!set || set.metadata.deletionTimestamp) return;
    const ns = String(set.metadata.namespace);
    const name = String(set.metadata.name);
    const uid = String(set.metadata.uid);
    const spec = set.spec ?? {};
    const t = this.d.now();
    const minReady = Number(spec.minReadySeconds ?? 0);

    const revisions = listers.revisions.byIndex(STATEFULSET_OWNER_INDEX, uid);
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
    for (const p of listers.pods.byIndex(STATEFULSET_OWNER_INDEX, uid)) {
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
          await this.deletePod(set, pod);
          if (monotonic) return;
          continue;
        }
        if (!pod) {
          await this.ensureClaims(set, ord);
          await this.createPod(set, newPod(ord));
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
        await this.ensureClaims(set, ord);
      }
      const firstUnhealthy = [...[...replicas.entries()].sort((a, b) => a[0] - b[0]).map(([, p]) => p), ...condemned.map((c) => c.pod)]
        .find((p) => !healthy(p));
      for (const { pod } of condemned) {
        if (isTerminating(pod)) { if (monotonic) return; continue; }
        if (monotonic && firstUnhealthy && firstUnhealthy !== pod) return;
        await this.releaseClaimsToPod(set, pod);
        await this.deletePod(set, pod);
        if (monotonic) return;
      }
      if ((spec.updateStrategy?.type ?? 'RollingUpdate') !== 'RollingUpdate') return;
      const partition = Number(spec.updateStrategy?.rollingUpdate?.partition ?? 0);
      for (let ord = end - 1; ord >= start + partition; ord--) {
        const pod = replicas.get(ord);
        if (!pod) return;
        if (revisionOfPod(pod) !== hashOfRev(updateRev) && !isTerminating(pod)) {
          await this.deletePod(set, pod);
          return;
        }
        if (!healthy(pod)) return;
      }
    };
    await act();

    const inUse = new Set<string>([updateName, currentName]);
    const liveHashes = new Set(listers.pods.byIndex(STATEFULSET_OWNER_INDEX, uid).map(revisionOfPod));
    for (const r of revisions) if (liveHashes.has(hashOfRev(r))) inUse.add(String(r.metadata.name));
    await truncateHistory(client, listers.revisions.byIndex(STATEFULSET_OWNER_INDEX, uid), inUse, Number(spec.revisionHistoryLimit ?? 10));

    const { status, recheckInMs } = statefulSetStatus(set, listers.pods.byIndex(STATEFULSET_OWNER_INDEX, uid),
      { currentHash: hashOfRev(currentRev), updateHash: hashOfRev(updateRev), currentName, updateName }, t);
    if (recheckInMs !== undefined) wakeIn(recheckInMs);
    if (JSON.stringify(status) !== JSON.stringify(set.status ?? {})) {
      const next = structuredClone(set);
      next.status = status;
      await client.updateStatus(Resources.statefulSets, ns, next as KObject);
    }
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }


  private async createPod(set: Obj, pod: Obj): Promise<KObject | undefined> {
    const { client, events } = this.d;
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

  private async deletePod(set: Obj, pod: KObject): Promise<void> {
    const { client, events } = this.d;
    try {
      await client.delete(Resources.pods, set.metadata.namespace, String(pod.metadata.name), { preconditions: { uid: pod.metadata.uid } });
      events.record(set as KObject, 'Normal', 'SuccessfulDelete', `delete Pod ${pod.metadata.name} in StatefulSet ${set.metadata.name} successful`);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /** Creates the pod's missing claims; with `whenDeleted: Delete` they are owned by the set, so they go with it. */
  private async ensureClaims(set: Obj, ord: number): Promise<void> {
    const { client, events } = this.d;
    const ns = String(set.metadata.namespace);
    const name = String(set.metadata.name);
    const deleteWithSet = set.spec?.persistentVolumeClaimRetentionPolicy?.whenDeleted === 'Delete';
    for (const c of set.spec?.volumeClaimTemplates ?? []) {
      const claim = claimName(c.metadata.name, name, ord);
      if (this.d.listers.claims.getByName(ns, claim)) continue;
      const body: Obj = {
        apiVersion: 'v1', kind: 'PersistentVolumeClaim',
        metadata: { name: claim, namespace: ns, labels: { ...(c.metadata.labels ?? {}), ...(set.spec?.selector?.matchLabels ?? {}) } },
        spec: structuredClone(c.spec ?? {}),
      };
      if (c.metadata.annotations) body.metadata.annotations = { ...c.metadata.annotations };
      if (deleteWithSet) body.metadata.ownerReferences = [{ apiVersion: 'apps/v1', kind: STATEFULSET_KIND, name, uid: set.metadata.uid }];
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
  private async releaseClaimsToPod(set: Obj, pod: KObject): Promise<void> {
    const { client } = this.d;
    if (set.spec?.persistentVolumeClaimRetentionPolicy?.whenScaled !== 'Delete') return;
    const ns = String(set.metadata.namespace);
    const ord = ordinalOf(String(set.metadata.name), String(pod.metadata.name));
    for (const c of set.spec?.volumeClaimTemplates ?? []) {
      const pvc = this.d.listers.claims.getByName(ns, claimName(c.metadata.name, String(set.metadata.name), ord));
      if (!pvc || pvc.metadata.ownerReferences?.some((r) => r.uid === pod.metadata.uid)) continue;
      const next = structuredClone(pvc) as Obj;
      next.metadata.ownerReferences = [...(next.metadata.ownerReferences ?? []), { apiVersion: 'v1', kind: 'Pod', name: pod.metadata.name, uid: pod.metadata.uid }];
      await client.update(Resources.persistentVolumeClaims, ns, next as KObject);
    }
  }
}
