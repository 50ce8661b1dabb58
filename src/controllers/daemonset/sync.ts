// One DaemonSet's reconcile, against listers and a client (no informer, queue or timer of its own).
// The wiring is controller.ts.
import type { KObject } from '../../api/object.js';
import { Resources, isNotFound, type ApiClient } from '../../client/types.js';
import type { ReconcileResult } from '../../client/controller.js';
import type { Lister } from '../../client/informer.js';
import { Expectations } from '../expectations.js';
import { slowStartBatch } from '../slow-start.js';
import { REVISION_HASH_LABEL, ensureRevision, hashOf, revisionData, truncateHistory } from '../revision-hash.js';
import { podFromTemplate, scaledValue } from '../workload-pods.js';
import { eligibilityChecker, pinToNode, targetNode, withDaemonTolerations, type Eligibility } from './nodes.js';
import { daemonSetStatus } from './status.js';
import { rollingUpdate } from './update.js';
import { type EventRecorder } from '../../client/events.js';
import { byCreation, isPodAvailable, isPodReady } from '../../api/pod.js';


type Obj = Record<string, any>;

export const DAEMONSET_KIND = 'DaemonSet';
/** The pod lister's and the revision lister's index of objects by their DaemonSet's uid. */
export const DAEMONSET_OWNER_INDEX = 'daemonset-controller:owner';
export const TEMPLATE_GENERATION_LABEL = 'pod-template-generation';
const TEMPLATE_GENERATION_ANNOTATION = 'deprecated.daemonset.template.generation';
/** A failed daemon pod on a node is replaced after this, doubling up to the max (kubelet may keep rejecting it). */
const FAILED_POD_BACKOFF_MS = 1000;
const FAILED_POD_BACKOFF_MAX_MS = 15 * 60_000;

/** DaemonSets, their pods and ControllerRevisions (both with DAEMONSET_OWNER_INDEX), and the nodes. */
export interface DaemonSetListers {
  sets: Lister;
  pods: Lister;
  nodes: Lister;
  revisions: Lister;
}

export interface DaemonSetSyncDeps {
  client: ApiClient;
  events: EventRecorder;
  listers: DaemonSetListers;
  /** Shared with the pod event handlers, which observe what the syncs asked for. */
  expectations: Expectations;
  /** The clock minReadySeconds and failed-pod backoff are judged by. */
  now: () => number;
}

export class DaemonSetSync {
  /** Per `<ds uid>/<node>`: how long a failed pod there waits before it is replaced again. */
  private readonly failedBackoff = new Map<string, { delay: number; until: number }>();

  constructor(private readonly d: DaemonSetSyncDeps) {}

  async reconcile(key: string): Promise<ReconcileResult | void> {
    const { client, events, listers, expectations } = this.d;
    const ds = listers.sets.get(key) as Obj | undefined;
    if (!ds || ds.metadata.deletionTimestamp) return;
    const ns = String(ds.metadata.namespace);
    const uid = String(ds.metadata.uid);
    const template = ds.spec?.template ?? {};
    const minReady = Number(ds.spec?.minReadySeconds ?? 0);
    const t = this.d.now();

    // History first: the pods created below carry the current revision's hash.
    const revisions = listers.revisions.byIndex(DAEMONSET_OWNER_INDEX, uid);
    const collisionCount = Number(ds.status?.collisionCount ?? 0);
    const hash = hashOf(template, collisionCount);
    const ensured = await ensureRevision(client, ds as KObject, revisions, hash, revisionData(template), template.metadata?.labels);
    if (ensured.collision) {
      const next = structuredClone(ds);
      next.status = { ...(next.status ?? {}), collisionCount: collisionCount + 1 };
      await client.updateStatus(Resources.daemonSets, ns, next as KObject);
      throw new Error(`controller revision name for hash ${hash} is taken; retrying with collisionCount ${collisionCount + 1}`);
    }
    const generation = String(ds.metadata.annotations?.[TEMPLATE_GENERATION_ANNOTATION] ?? ds.metadata.generation ?? 1);
    const isUpdated = (p: KObject) => p.metadata.labels?.[REVISION_HASH_LABEL] === hash
      || (p.metadata.labels?.[REVISION_HASH_LABEL] === undefined && p.metadata.labels?.[TEMPLATE_GENERATION_LABEL] === generation);

    const nodes = listers.nodes.list();
    const nodeNames = new Set(nodes.map((n) => String(n.metadata.name)));
    const byNode = new Map<string, KObject[]>();
    const podsToDelete = new Set<string>();
    for (const p of listers.pods.byIndex(DAEMONSET_OWNER_INDEX, uid)) {
      const node = targetNode(p);
      // A pod for a node that is gone can never run: it goes.
      if (!node || !nodeNames.has(node)) { if (!p.metadata.deletionTimestamp) podsToDelete.add(String(p.metadata.name)); continue; }
      let list = byNode.get(node);
      if (!list) byNode.set(node, list = []);
      list.push(p);
    }
    const eligible = eligibilityChecker(template);
    const maxSurgeRaw = ds.spec?.updateStrategy?.rollingUpdate?.maxSurge;
    const rolling = (ds.spec?.updateStrategy?.type ?? 'RollingUpdate') === 'RollingUpdate';
    let requeueAfterMs: number | undefined;
    const wakeIn = (ms: number) => { requeueAfterMs = requeueAfterMs === undefined ? ms : Math.min(requeueAfterMs, ms); };

    const verdicts = new Map<string, Eligibility>();
    let desired = 0;
    for (const n of nodes) {
      const v = eligible(n);
      verdicts.set(String(n.metadata.name), v);
      if (v.shouldRun) desired++;
    }
    const maxSurge = rolling ? scaledValue(maxSurgeRaw, desired, true, 0) : 0;
    let maxUnavailable = rolling ? scaledValue(ds.spec?.updateStrategy?.rollingUpdate?.maxUnavailable, desired, true, 1) : 0;
    if (rolling && desired > 0 && maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
    const allowSurge = maxSurge > 0;

    if (expectations.satisfied(key)) {
      const nodesNeedingPods: string[] = [];
      // Node-by-node: create where missing, remove failed, excess and misplaced pods (podsShouldBeOnNode).
      for (const n of nodes) {
        const name = String(n.metadata.name);
        const { shouldRun, shouldContinueRunning } = verdicts.get(name)!;
        const pods = byNode.get(name) ?? [];
        if (shouldRun && pods.length === 0) { nodesNeedingPods.push(name); continue; }
        if (!shouldContinueRunning) {
          for (const p of pods) if (!p.metadata.deletionTimestamp) podsToDelete.add(String(p.metadata.name));
          continue;
        }
        const running: KObject[] = [];
        for (const p of pods) {
          if (p.metadata.deletionTimestamp) continue;
          if ((p as Obj).status?.phase === 'Failed') {
            const b = this.failedBackoff.get(`${uid}/${name}`);
            if (b && b.until > t) { wakeIn(b.until - t); continue; }
            const delay = b ? Math.min(b.delay * 2, FAILED_POD_BACKOFF_MAX_MS) : FAILED_POD_BACKOFF_MS;
            this.failedBackoff.set(`${uid}/${name}`, { delay, until: t + delay });
            events.record(ds as KObject, 'Warning', 'FailedDaemonPod', `Found failed daemon pod ${ns}/${p.metadata.name} on node ${name}, will try to kill it`);
            podsToDelete.add(String(p.metadata.name));
            continue;
          }
          running.push(p);
        }
        running.sort(byCreation);
        if (!allowSurge) {
          for (const p of running.slice(1)) podsToDelete.add(String(p.metadata.name));
          continue;
        }
        if (running.length === 0) { if (shouldRun) nodesNeedingPods.push(name); continue; }
        // Surging: an old and a new pod may share the node until the new one is available.
        let newest: KObject | undefined;
        let oldest: KObject | undefined;
        for (const p of running) {
          if (isUpdated(p) && !newest) newest = p;
          else if (!isUpdated(p) && !oldest) oldest = p;
          else podsToDelete.add(String(p.metadata.name));
        }
        if (newest && oldest && (!isPodReady(oldest) || isPodAvailable(newest, minReady, t))) podsToDelete.add(String(oldest.metadata.name));
      }

      // The update waits until the cache shows what the pass above did (as upstream, through the
      // expectations): judged on a stale view, a node whose pod is still being made looks healthy.
      if (nodesNeedingPods.length || podsToDelete.size) {
        await this.syncNodes(ds, key, nodesNeedingPods, [...podsToDelete], hash, generation);
      } else if (rolling) {
        const r = rollingUpdate(byNode, verdicts, isUpdated, maxSurge, maxUnavailable, minReady, t);
        await this.syncNodes(ds, key, r.creates, r.deletes, hash, generation);
      }
    }

    // Old revisions beyond the limit go, unless a live pod still runs them.
    const liveHashes = new Set<string>([hash]);
    for (const p of listers.pods.byIndex(DAEMONSET_OWNER_INDEX, uid)) {
      const h = p.metadata.labels?.[REVISION_HASH_LABEL];
      if (h) liveHashes.add(h);
    }
    const inUse = new Set(revisions.filter((r) => liveHashes.has(String(r.metadata.labels?.[REVISION_HASH_LABEL]))).map((r) => String(r.metadata.name)));
    inUse.add(String(ensured.revision.metadata.name));
    await truncateHistory(client, listers.revisions.byIndex(DAEMONSET_OWNER_INDEX, uid), inUse, Number(ds.spec?.revisionHistoryLimit ?? 10));

    const { status, recheckInMs } = daemonSetStatus(ds, listers.pods.byIndex(DAEMONSET_OWNER_INDEX, uid), listers.nodes.list(), isUpdated, t);
    if (recheckInMs !== undefined) wakeIn(recheckInMs);
    if (JSON.stringify(status) !== JSON.stringify(ds.status ?? {})) {
      const next = structuredClone(ds);
      next.status = status;
      await client.updateStatus(Resources.daemonSets, ds.metadata.namespace, next as KObject);
    }
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  /** Creates a pod on each of `createOn` (slow start) and deletes the pods named in `deletes`. */
  private async syncNodes(ds: Obj, key: string, createOn: string[], deletes: string[], hash: string, generation: string): Promise<void> {
    if (createOn.length === 0 && deletes.length === 0) return;
    const { client, events, expectations } = this.d;
    const ns = String(ds.metadata.namespace);
    expectations.expect(key, createOn.length, deletes.map((name) => `${ns}/${name}`));
    const template = ds.spec?.template ?? {};
    const errors: unknown[] = [];
    const created = await slowStartBatch(createOn, async (node) => {
      const pod = podFromTemplate(template, {
        namespace: ns, owner: ds as KObject,
        labels: { [REVISION_HASH_LABEL]: hash, [TEMPLATE_GENERATION_LABEL]: generation },
      });
      pod.spec.affinity = pinToNode(pod.spec.affinity, node);
      pod.spec.tolerations = withDaemonTolerations(pod.spec);
      try {
        const made = await client.create(Resources.pods, ns, pod as KObject);
        events.record(ds as KObject, 'Normal', 'SuccessfulCreate', `Created pod: ${made.metadata.name}`);
      } catch (e) {
        events.record(ds as KObject, 'Warning', 'FailedCreate', `Error creating: ${(e as Error).message}`);
        throw e;
      }
    });
    // Creations that failed, or were never attempted after a failed batch, will not be seen either.
    for (let i = created.successes; i < createOn.length; i++) expectations.creationObserved(key);
    if (created.error) errors.push(created.error);
    await Promise.all(deletes.map(async (name) => {
      try {
        await client.delete(Resources.pods, ns, name);
        events.record(ds as KObject, 'Normal', 'SuccessfulDelete', `Deleted pod: ${name}`);
      } catch (e) {
        expectations.deletionObserved(key, `${ns}/${name}`);
        if (!isNotFound(e)) errors.push(e);
      }
    }));
    if (errors.length) throw errors[0];
  }
}
