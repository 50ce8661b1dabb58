// The DaemonSet controller (pkg/controller/daemon): one pod per eligible node. A node is eligible when
// the template's nodeSelector and required node affinity match it and its NoSchedule/NoExecute taints
// are tolerated (conditions don't count: pods carry the default DaemonSet tolerations, so NotReady
// or cordoned nodes still get their daemons). Each pod is pinned to its node by a required node
// affinity `matchFields metadata.name In [node]`, so the scheduler binds it there.
//
// Updates follow `spec.updateStrategy`: RollingUpdate replaces old pods at most maxUnavailable at a
// time, or with maxSurge a new pod starts beside the old one, which goes once the new is available;
// OnDelete replaces a pod only when someone deletes it. Templates are recorded as ControllerRevisions
// and pods labelled `controller-revision-hash` and `pod-template-generation`.
import type { KObject } from '../api/object.js';
import { Resources, isNotFound } from '../client/types.js';
import { enqueueAll, runController, type RunningController } from '../client/controller.js';
import { keyOf } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';
import type { ControllerContext } from './context.js';
import { Expectations } from './expectations.js';
import { slowStartBatch } from './slow-start.js';
import { NodeAffinity } from './scheduler/node-affinity.js';
import { tolerated } from './scheduler/taints.js';
import type { Pod, Taint, Toleration } from './scheduler/types.js';
import {
  REVISION_HASH_LABEL, ensureRevision, hashOf, revisionData, truncateHistory,
} from './revision-hash.js';
import {
  byCreation, controllerOf, controllerUidIndex, isPodAvailable, isPodReady, msUntilAvailable,
  podFromTemplate, scaledValue,
} from './workload-pods.js';

type Obj = Record<string, any>;

const KIND = 'DaemonSet';
const POD_INDEX = 'daemonset-controller:owner';
const REVISION_INDEX = 'daemonset-controller:owner';
export const TEMPLATE_GENERATION_LABEL = 'pod-template-generation';
const TEMPLATE_GENERATION_ANNOTATION = 'deprecated.daemonset.template.generation';
/** A failed daemon pod on a node is replaced after this, doubling up to the max (kubelet may keep rejecting it). */
const FAILED_POD_BACKOFF_MS = 1000;
const FAILED_POD_BACKOFF_MAX_MS = 15 * 60_000;

/** The tolerations every daemon pod gets (util.AddOrUpdateDaemonPodTolerations). */
export function daemonTolerations(hostNetwork: boolean): Toleration[] {
  const t: Toleration[] = [
    { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute' },
    { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute' },
    { key: 'node.kubernetes.io/disk-pressure', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/memory-pressure', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/pid-pressure', operator: 'Exists', effect: 'NoSchedule' },
    { key: 'node.kubernetes.io/unschedulable', operator: 'Exists', effect: 'NoSchedule' },
  ];
  if (hostNetwork) t.push({ key: 'node.kubernetes.io/network-unavailable', operator: 'Exists', effect: 'NoSchedule' });
  return t;
}

function withDaemonTolerations(spec: Obj): Toleration[] {
  const out: Toleration[] = [...(spec.tolerations ?? [])];
  for (const d of daemonTolerations(spec.hostNetwork === true)) {
    const same = out.some((t) => t.key === d.key && (t.operator ?? 'Equal') === d.operator && t.effect === d.effect && !t.value && t.tolerationSeconds === undefined);
    if (!same) out.push(d);
  }
  return out;
}

/** The affinity with every required term pinned to `node` (ReplaceDaemonSetPodNodeNameNodeAffinity). */
export function pinToNode(affinity: Obj | undefined, node: string): Obj {
  const pin = [{ key: 'metadata.name', operator: 'In', values: [node] }];
  const a = structuredClone(affinity ?? {});
  a.nodeAffinity ??= {};
  const required = a.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution;
  const terms: Obj[] | undefined = required?.nodeSelectorTerms;
  if (!terms?.length) {
    a.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution = { nodeSelectorTerms: [{ matchFields: pin }] };
  } else {
    // Terms are ORed: each keeps its expressions, and all of them now name only this node.
    for (const t of terms) t.matchFields = structuredClone(pin);
  }
  return a;
}

/** The node a daemon pod is on or meant for: spec.nodeName, else the node its affinity pins. */
export function targetNode(pod: KObject): string | undefined {
  const spec = (pod as Obj).spec ?? {};
  if (spec.nodeName) return spec.nodeName;
  for (const t of spec.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms ?? []) {
    for (const f of t.matchFields ?? []) {
      if (f.key === 'metadata.name' && f.operator === 'In' && f.values?.length === 1) return f.values[0];
    }
  }
  return undefined;
}

/** Whether a node should run the daemon pod, and whether a pod already there may stay (NodeShouldRunDaemonPod). */
export interface Eligibility { shouldRun: boolean; shouldContinueRunning: boolean }

export function eligibilityChecker(template: Obj): (node: KObject) => Eligibility {
  const spec = template.spec ?? {};
  const tolerations = withDaemonTolerations(spec);
  const affinity = new NodeAffinity({ metadata: {}, spec: { nodeSelector: spec.nodeSelector, affinity: spec.affinity } } as Pod);
  return (node) => {
    const name = String(node.metadata.name);
    if (spec.nodeName && spec.nodeName !== name) return { shouldRun: false, shouldContinueRunning: false };
    if (!affinity.matches({ name, labels: node.metadata.labels })) return { shouldRun: false, shouldContinueRunning: false };
    const taints: Taint[] = (node as Obj).spec?.taints ?? [];
    let fits = true;
    let noExecuteUntolerated = false;
    for (const taint of taints) {
      if (taint.effect !== 'NoSchedule' && taint.effect !== 'NoExecute') continue;
      if (tolerated(tolerations, taint)) continue;
      fits = false;
      if (taint.effect === 'NoExecute') noExecuteUntolerated = true;
    }
    if (fits) return { shouldRun: true, shouldContinueRunning: true };
    return { shouldRun: false, shouldContinueRunning: !noExecuteUntolerated };
  };
}

export interface DaemonSetControllerOptions {
  workers?: number;
  /** The clock minReadySeconds is judged by (tests inject one). */
  now?: () => number;
}

export function startDaemonSetController(ctx: ControllerContext, opts: DaemonSetControllerOptions = {}): RunningController {
  const now = opts.now ?? Date.now;
  const { client, events } = ctx;
  const dsInf = ctx.informers.informerFor(Resources.daemonSets);
  const podInf = ctx.informers.informerFor(Resources.pods, { indexers: { [POD_INDEX]: controllerUidIndex(KIND) } });
  const nodeInf = ctx.informers.informerFor(Resources.nodes);
  const revInf = ctx.informers.informerFor(Resources.controllerRevisions, { indexers: { [REVISION_INDEX]: controllerUidIndex(KIND) } });
  const queue = new WorkQueue<string>();
  const expectations = new Expectations();
  const failedBackoff = new Map<string, { delay: number; until: number }>();

  const enqueueAllSets = () => enqueueAll(queue, dsInf);
  const ownerKey = (pod: KObject): string | undefined => {
    const ref = controllerOf(pod);
    if (!ref || ref.kind !== KIND) return undefined;
    const ds = dsInf.getByName(pod.metadata.namespace, ref.name);
    return ds && ds.metadata.uid === ref.uid ? keyOf(ds) : undefined;
  };

  dsInf.addHandlers({
    onAdd: (o) => queue.add(keyOf(o)),
    onUpdate: (_o, n) => queue.add(keyOf(n)),
    onDelete: (o) => { expectations.forget(keyOf(o)); queue.add(keyOf(o)); },
  });
  podInf.addHandlers({
    onAdd: (p) => {
      const k = ownerKey(p);
      if (!k) return;
      expectations.creationObserved(k);
      queue.add(k);
    },
    onUpdate: (o, p) => {
      const k = ownerKey(p);
      if (!k) return;
      if (!o.metadata.deletionTimestamp && p.metadata.deletionTimestamp) expectations.deletionObserved(k, keyOf(p));
      queue.add(k);
    },
    onDelete: (p) => {
      const k = ownerKey(p);
      if (!k) return;
      if (!p.metadata.deletionTimestamp) expectations.deletionObserved(k, keyOf(p));
      queue.add(k);
    },
  });
  nodeInf.addHandlers({
    onAdd: enqueueAllSets,
    // Heartbeats change only status; eligibility depends on labels, taints and the name.
    onUpdate: (o, n) => {
      if (JSON.stringify(o.metadata.labels ?? {}) !== JSON.stringify(n.metadata.labels ?? {})
        || JSON.stringify((o as Obj).spec?.taints ?? []) !== JSON.stringify((n as Obj).spec?.taints ?? [])) enqueueAllSets();
    },
    onDelete: enqueueAllSets,
  });

  async function sync(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const ds = dsInf.get(key) as Obj | undefined;
    if (!ds || ds.metadata.deletionTimestamp) return;
    const ns = String(ds.metadata.namespace);
    const uid = String(ds.metadata.uid);
    const template = ds.spec?.template ?? {};
    const minReady = Number(ds.spec?.minReadySeconds ?? 0);
    const t = now();

    // History first: the pods created below carry the current revision's hash.
    const revisions = revInf.byIndex(REVISION_INDEX, uid);
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

    const nodes = nodeInf.list();
    const nodeNames = new Set(nodes.map((n) => String(n.metadata.name)));
    const byNode = new Map<string, KObject[]>();
    const podsToDelete = new Set<string>();
    for (const p of podInf.byIndex(POD_INDEX, uid)) {
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
            const b = failedBackoff.get(`${uid}/${name}`);
            if (b && b.until > t) { wakeIn(b.until - t); continue; }
            const delay = b ? Math.min(b.delay * 2, FAILED_POD_BACKOFF_MAX_MS) : FAILED_POD_BACKOFF_MS;
            failedBackoff.set(`${uid}/${name}`, { delay, until: t + delay });
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
        await syncNodes(ds, key, nodesNeedingPods, [...podsToDelete], hash, generation);
      } else if (rolling) {
        const r = rollingUpdate(byNode, verdicts, isUpdated, maxSurge, maxUnavailable, minReady, t);
        await syncNodes(ds, key, r.creates, r.deletes, hash, generation);
      }
    }

    // Old revisions beyond the limit go, unless a live pod still runs them.
    const liveHashes = new Set<string>([hash]);
    for (const p of podInf.byIndex(POD_INDEX, uid)) {
      const h = p.metadata.labels?.[REVISION_HASH_LABEL];
      if (h) liveHashes.add(h);
    }
    const inUse = new Set(revisions.filter((r) => liveHashes.has(String(r.metadata.labels?.[REVISION_HASH_LABEL]))).map((r) => String(r.metadata.name)));
    inUse.add(String(ensured.revision.metadata.name));
    await truncateHistory(client, revInf.byIndex(REVISION_INDEX, uid), inUse, Number(ds.spec?.revisionHistoryLimit ?? 10));

    await updateStatus(ds, isUpdated, t, wakeIn);
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  async function syncNodes(ds: Obj, key: string, createOn: string[], deletes: string[], hash: string, generation: string): Promise<void> {
    if (createOn.length === 0 && deletes.length === 0) return;
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

  async function updateStatus(ds: Obj, isUpdated: (p: KObject) => boolean, t: number, wakeIn: (ms: number) => void): Promise<void> {
    const uid = String(ds.metadata.uid);
    const minReady = Number(ds.spec?.minReadySeconds ?? 0);
    const eligible = eligibilityChecker(ds.spec?.template ?? {});
    const byNode = new Map<string, KObject[]>();
    for (const p of podInf.byIndex(POD_INDEX, uid)) {
      const node = targetNode(p);
      if (!node) continue;
      let list = byNode.get(node);
      if (!list) byNode.set(node, list = []);
      list.push(p);
    }
    let desired = 0, current = 0, misscheduled = 0, ready = 0, available = 0, updated = 0;
    for (const n of nodeInf.list()) {
      const name = String(n.metadata.name);
      const pods = byNode.get(name) ?? [];
      if (eligible(n).shouldRun) {
        desired++;
        if (pods.length === 0) continue;
        current++;
        const pod = [...pods].sort(byCreationAndPhase)[0]!;
        if (isPodReady(pod)) {
          ready++;
          if (isPodAvailable(pod, minReady, t)) available++;
          else wakeIn(msUntilAvailable(pod, minReady, t) ?? 0);
        }
        if (isUpdated(pod)) updated++;
      } else if (pods.length > 0) {
        misscheduled++;
      }
    }
    const status: Obj = {
      ...(ds.status ?? {}),
      currentNumberScheduled: current, numberMisscheduled: misscheduled, desiredNumberScheduled: desired,
      numberReady: ready, observedGeneration: ds.metadata.generation,
      updatedNumberScheduled: updated, numberAvailable: available, numberUnavailable: desired - available,
    };
    for (const k of ['numberAvailable', 'numberUnavailable', 'updatedNumberScheduled']) if (!status[k]) delete status[k];
    if (JSON.stringify(status) === JSON.stringify(ds.status ?? {})) return;
    const next = structuredClone(ds);
    next.status = status;
    await client.updateStatus(Resources.daemonSets, ds.metadata.namespace, next as KObject);
  }

  // Acting on a half-filled cache would delete pods of nodes not listed yet: wait, as upstream does.
  return runController({ name: 'daemonset-controller', workers: opts.workers ?? 2, queue, informers: [dsInf, podInf, nodeInf, revInf], reconcile: sync });
}

/** Older first, and a running pod before a pending one of the same age (podByCreationTimestampAndPhase). */
function byCreationAndPhase(a: KObject, b: KObject): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta === tb) {
    const ra = (a as Obj).status?.phase === 'Running' ? 0 : 1;
    const rb = (b as Obj).status?.phase === 'Running' ? 0 : 1;
    if (ra !== rb) return ra - rb;
  }
  return byCreation(a, b);
}

/**
 * Which old pods to delete and which nodes get a new pod now (rollingUpdate in update.go). Without
 * surge, old pods go while fewer than maxUnavailable daemons are unavailable (unavailable old ones
 * first, as they cost nothing); with surge, new pods start beside at most maxSurge available old ones
 * and an old pod goes as soon as its replacement is available.
 */
function rollingUpdate(byNode: Map<string, KObject[]>, verdicts: Map<string, Eligibility>, isUpdated: (p: KObject) => boolean,
  maxSurge: number, maxUnavailable: number, minReady: number, t: number): { deletes: string[]; creates: string[] } {
  const deletes: string[] = [];
  const creates: string[] = [];
  const available = (p: KObject) => isPodAvailable(p, minReady, t);
  if (maxSurge === 0) {
    let unavailable = 0;
    const candidates: string[] = [];
    for (const [node, pods] of byNode) {
      if (!verdicts.get(node)?.shouldRun) continue;
      const split = splitPods(pods, isUpdated);
      if (!split) { unavailable++; continue; }
      const { newPod, oldPod } = split;
      if ((!oldPod && !newPod) || (oldPod && newPod)) { unavailable++; continue; }
      if (newPod) { if (!available(newPod)) unavailable++; continue; }
      if (!available(oldPod!)) deletes.push(String(oldPod!.metadata.name));
      else if (unavailable < maxUnavailable) candidates.push(String(oldPod!.metadata.name));
    }
    const room = Math.max(0, Math.min(maxUnavailable - unavailable, candidates.length));
    deletes.push(...candidates.slice(0, room));
    return { deletes, creates };
  }
  let surging = 0;
  const candidates: string[] = [];
  for (const [node, pods] of byNode) {
    const split = splitPods(pods, isUpdated);
    if (!split) continue;
    const { newPod, oldPod } = split;
    if (!oldPod) continue;
    const shouldRun = verdicts.get(node)?.shouldRun === true;
    if (!newPod) {
      if (!available(oldPod)) {
        if (!shouldRun) deletes.push(String(oldPod.metadata.name));
        else creates.push(node);
      } else if (!shouldRun) {
        deletes.push(String(oldPod.metadata.name));
      } else if (surging < maxSurge) {
        candidates.push(node);
      }
      continue;
    }
    if (!available(newPod)) { surging++; continue; }
    deletes.push(String(oldPod.metadata.name));
  }
  const room = Math.max(0, Math.min(maxSurge - surging, candidates.length));
  creates.push(...candidates.slice(0, room));
  return { deletes, creates };
}

/** The one new and one old pod on a node, or undefined when there are more (the manage pass prunes them first). */
function splitPods(pods: KObject[], isUpdated: (p: KObject) => boolean): { newPod?: KObject; oldPod?: KObject } | undefined {
  let newPod: KObject | undefined;
  let oldPod: KObject | undefined;
  for (const p of pods) {
    if (p.metadata.deletionTimestamp) continue;
    if (isUpdated(p)) { if (newPod) return undefined; newPod = p; }
    else { if (oldPod) return undefined; oldPod = p; }
  }
  return { newPod, oldPod };
}
