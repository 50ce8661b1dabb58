// Node lifecycle, as kube-controller-manager's node lifecycle and taint eviction controllers do it.
//
// Health: a node is alive while its kubelet renews its Lease in kube-node-lease or posts a fresh Ready
// heartbeat. Each sign of life is timed on this process's clock when it is seen (never by the
// timestamps inside, which may come from a skewed clock). A node silent for nodeMonitorGracePeriodMs
// gets Ready, MemoryPressure, DiskPressure and PIDPressure set to Unknown ("Kubelet stopped posting
// node status."), a NodeNotReady event, and its pods marked not ready. Every node counts as just seen
// when this loop starts judging (its first reconcile, once the node, Lease and pod caches are full),
// as kube-controller-manager counts node-monitor-grace-period from its own start: a restarted server,
// down for longer than the grace period, gives each node one full grace period to reconnect instead
// of marking thousands NotReady (and evicting their pods) from their stale Lease times. The same holds
// when leadership moves to another server: the controller manager starts this loop anew (new caches,
// new `judgingSince`) for each term it leads, so the takeover's own delay never counts as silence.
//
// A restart with thousands of nodes is a reconnection storm: every node opens its connections at
// once and the server admits them as fast as its CPU allows (5,000 nodes took over a minute on two
// cores), so a node still waiting in that queue is not silent by its own doing. While nodes known
// from before the start are still coming back, the ones that have not yet are judged from the most
// recent comeback (no longer than RECONNECT_STORM_GRACES grace periods after the start); once the
// comebacks stop, the usual grace period runs from the last one. A node that died with the server
// is thus marked at most that much later; one silent while nothing else reconnects, as before.
// Before marking, the Lease is read once more from the store: under load the informer can lag a
// renewal already committed.
//
// Taints follow the conditions (TaintNodesByCondition plus the NoExecute taints): Ready=False gives
// node.kubernetes.io/not-ready, Ready=Unknown node.kubernetes.io/unreachable, both NoSchedule and
// NoExecute with timeAdded; pressure conditions and cordoning give their NoSchedule taints; a node
// that reports Ready again loses them. When no node at all is ready (the server lost its network,
// say), NoExecute taints are withheld, as Kubernetes' full-disruption mode does, so one outage does
// not evict every pod in the cluster.
//
// Taint eviction: a pod on a node with NoExecute taints it does not tolerate is deleted at once; one
// that tolerates them for tolerationSeconds is deleted when that time has passed since the taint was
// added (the taint's timeAdded, so a restarted loop keeps the same deadline).
import type { KObject } from '../api/object.js';
import { nowRfc3339 } from '../util/time.js';
import { Resources, isNotFound } from '../client/types.js';
import type { ControllerContext } from './context.js';
import { enqueueAll, runController, type RunningController } from '../client/controller.js';
import { keyOf, type Informer } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';
import { toleratesTaint } from './scheduler/taints.js';
import type { Node, Pod, Taint, Toleration } from './scheduler/types.js';
import { logger } from '../util/log.js';

const log = logger('node-lifecycle');
const LEASE_NAMESPACE = 'kube-node-lease';
const PODS_BY_NODE = 'node-lifecycle:spec.nodeName';
const EXCLUDE_DISRUPTION = 'node.kubernetes.io/exclude-disruption';
/** How long after this loop's start a reconnection storm may keep postponing judgement (in grace periods). */
const RECONNECT_STORM_GRACES = 5;

export const TAINT_NOT_READY = 'node.kubernetes.io/not-ready';
export const TAINT_UNREACHABLE = 'node.kubernetes.io/unreachable';
const TAINT_UNSCHEDULABLE = 'node.kubernetes.io/unschedulable';

/** (condition type, status) → the NoSchedule taint it implies. */
const CONDITION_TAINTS: Record<string, Record<string, string>> = {
  Ready: { False: TAINT_NOT_READY, Unknown: TAINT_UNREACHABLE },
  MemoryPressure: { True: 'node.kubernetes.io/memory-pressure' },
  DiskPressure: { True: 'node.kubernetes.io/disk-pressure' },
  NetworkUnavailable: { True: 'node.kubernetes.io/network-unavailable' },
  PIDPressure: { True: 'node.kubernetes.io/pid-pressure' },
};
const CONDITION_TAINT_KEYS = new Set(Object.values(CONDITION_TAINTS).flatMap((m) => Object.values(m)));
/** Conditions the kubelet owns and that turn Unknown when it goes silent (NetworkUnavailable is not the kubelet's). */
const KUBELET_CONDITIONS = ['Ready', 'MemoryPressure', 'DiskPressure', 'PIDPressure'];

interface NodeCondition { type: string; status: string; reason?: string; message?: string; lastHeartbeatTime?: string; lastTransitionTime?: string }
interface PodCondition { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }
type FullTaint = Taint & { timeAdded?: string };

const conditionsOf = (n: Node) => (n.status?.conditions ?? []) as NodeCondition[];
const readyOf = (n: Node) => conditionsOf(n).find((c) => c.type === 'Ready');
const podConditions = (p: Pod) => ((p.status as { conditions?: PodCondition[] } | undefined)?.conditions ?? []);
const errText = (err: unknown) => (err instanceof Error ? err.message : String(err));

/** The pods informer indexed by node; one index however many of these loops share the informer. */
function podsInformer(ctx: ControllerContext): Informer<Pod> {
  const pods = ctx.informers.informerFor<Pod>(Resources.pods);
  if (!indexed.has(pods)) {
    indexed.add(pods);
    pods.addIndexers({ [PODS_BY_NODE]: (p) => (p.spec?.nodeName ? [p.spec.nodeName] : []) });
  }
  return pods;
}
const indexed = new WeakSet<Informer<Pod>>();

// ---- taints as data --------------------------------------------------------------------------------

const isOwnTaint = (t: Taint) =>
  (t.effect === 'NoSchedule' && (CONDITION_TAINT_KEYS.has(t.key) || t.key === TAINT_UNSCHEDULABLE))
  || (t.effect === 'NoExecute' && (t.key === TAINT_NOT_READY || t.key === TAINT_UNREACHABLE));

/** The taints this loop owns that the node should carry now. */
export function desiredTaints(node: Node, withholdNoExecute: boolean): Taint[] {
  const out: Taint[] = [];
  for (const c of conditionsOf(node)) {
    const key = CONDITION_TAINTS[c.type]?.[c.status];
    if (key) out.push({ key, effect: 'NoSchedule' });
  }
  if (node.spec?.unschedulable) out.push({ key: TAINT_UNSCHEDULABLE, effect: 'NoSchedule' });
  const ready = readyOf(node)?.status;
  if (!withholdNoExecute && ready === 'False') out.push({ key: TAINT_NOT_READY, effect: 'NoExecute' });
  if (!withholdNoExecute && ready === 'Unknown') out.push({ key: TAINT_UNREACHABLE, effect: 'NoExecute' });
  return out;
}

/** The node's taints with ours made equal to `desired` (others untouched, kept ones keep timeAdded), or undefined if nothing changes. */
export function reconcileTaints(current: FullTaint[], desired: Taint[]): FullTaint[] | undefined {
  const same = (a: Taint, b: Taint) => a.key === b.key && a.effect === b.effect;
  const kept = current.filter((t) => !isOwnTaint(t) || desired.some((d) => same(d, t)));
  const added = desired.filter((d) => !current.some((t) => same(d, t)));
  if (kept.length === current.length && added.length === 0) return undefined;
  const now = nowRfc3339();
  return [...kept, ...added.map((t) => ({ key: t.key, effect: t.effect, timeAdded: now }))];
}

/** The node's conditions after a silence: kubelet-owned ones Unknown, or undefined when they already are. */
export function unknownConditions(node: Node): NodeCondition[] | undefined {
  const now = nowRfc3339();
  const conditions = conditionsOf(node).map((c) => ({ ...c }));
  let changed = false;
  for (const type of KUBELET_CONDITIONS) {
    const c = conditions.find((x) => x.type === type);
    if (!c) {
      conditions.push({
        type, status: 'Unknown', reason: 'NodeStatusNeverUpdated', message: 'Kubelet never posted node status.',
        lastHeartbeatTime: node.metadata.creationTimestamp, lastTransitionTime: now,
      });
      changed = true;
    } else if (c.status !== 'Unknown') {
      // lastHeartbeatTime stays: it is the last time the kubelet was heard from.
      Object.assign(c, { status: 'Unknown', reason: 'NodeStatusUnknown', message: 'Kubelet stopped posting node status.', lastTransitionTime: now });
      changed = true;
    }
  }
  return changed ? conditions : undefined;
}

// ---- node health -------------------------------------------------------------------------------------

interface Health {
  /** When this process last saw the node alive (ms, local clock). */
  probeAt: number;
  heartbeat?: string;
  readyStatus?: string;
  renewTime?: string;
}

class NodeLifecycle {
  private readonly health = new Map<string, Health>();
  /** Nodes counted for full disruption, and whether each is Ready. */
  private readonly readiness = new Map<string, boolean>();
  private readyCount = 0;
  private fullDisruption = false;
  private readonly queue = new WorkQueue<string>();
  private readonly controller: RunningController;
  private readonly grace: number;
  /** When this loop first judged a node: no silence counts from before it (see the header). */
  private judgingSince?: number;
  /** Nodes known when judging began that have not been heard from since (the reconnection storm). */
  private awaitingComeback?: Set<string>;
  /** When the last of those came back. */
  private lastComebackAt = 0;

  constructor(private readonly ctx: ControllerContext, private readonly nodes: Informer<Node>, leases: Informer,
    private readonly pods: Informer<Pod>) {
    this.grace = ctx.options.nodeMonitorGracePeriodMs;
    nodes.addHandlers({
      onAdd: (n) => {
        ctx.events.record(n, 'Normal', 'RegisteredNode', `Node ${n.metadata.name} event: Registered Node ${n.metadata.name} in Controller`);
        this.observeNode(n);
      },
      onUpdate: (_old, n) => this.observeNode(n),
      onDelete: (n) => {
        const name = n.metadata.name ?? '';
        this.health.delete(name);
        this.countReady(name, undefined);
      },
    });
    leases.addHandlers({ onAdd: (l) => this.observeLease(l), onUpdate: (_old, l) => this.observeLease(l) });
    // A pod bound to a silent node is marked not ready too.
    const podToNode = (p: Pod) => {
      const node = p.spec?.nodeName ? nodes.get(p.spec.nodeName) : undefined;
      if (node && readyOf(node)?.status === 'Unknown') this.queue.add(p.spec!.nodeName!);
    };
    pods.addHandlers({ onAdd: podToNode, onUpdate: (old, p) => { if (old.spec?.nodeName !== p.spec?.nodeName) podToNode(p); } });
    // A half-filled cache could look like "no node is ready" and strip NoExecute taints (restarting
    // their eviction clocks), so nothing is judged until all three caches are full.
    this.controller = runController({
      name: 'node-lifecycle', workers: 4, queue: this.queue, informers: [nodes, leases, pods], reconcile: (name) => this.reconcile(name),
    });
  }

  stop(): Promise<void> {
    return this.controller.stop();
  }

  private sawAlive(name: string): Health {
    let h = this.health.get(name);
    if (!h) this.health.set(name, (h = { probeAt: Date.now() }));
    else h.probeAt = Date.now();
    if (this.awaitingComeback?.delete(name)) this.lastComebackAt = h.probeAt;
    return h;
  }

  /** When `name`'s silence starts counting (see the header on restarts). */
  private silenceSince(name: string, h: Health, judgingSince: number): number {
    const since = Math.max(h.probeAt, judgingSince);
    if (!this.awaitingComeback?.has(name)) return since;
    return Math.max(since, Math.min(this.lastComebackAt, judgingSince + RECONNECT_STORM_GRACES * this.grace));
  }

  private observeNode(n: Node): void {
    const name = n.metadata.name ?? '';
    const ready = readyOf(n);
    const h = this.health.get(name);
    // A new heartbeat, or a Ready status the kubelet posted (this loop only ever writes Unknown).
    if (!h || h.heartbeat !== ready?.lastHeartbeatTime || (h.readyStatus !== ready?.status && ready?.status !== 'Unknown')) {
      const fresh = this.sawAlive(name);
      fresh.heartbeat = ready?.lastHeartbeatTime;
    }
    this.health.get(name)!.readyStatus = ready?.status;
    this.countReady(name, n.metadata.labels?.[EXCLUDE_DISRUPTION] === undefined ? ready?.status === 'True' : undefined);
    this.queue.add(name);
  }

  private observeLease(l: KObject): void {
    const name = l.metadata.name ?? '';
    const renew = (l.spec as { renewTime?: string } | undefined)?.renewTime;
    const h = this.health.get(name);
    if (h && h.renewTime === renew) return;
    this.sawAlive(name).renewTime = renew;
    if (this.nodes.get(name)) this.queue.add(name);
  }

  /** Keeps the ready count; entering or leaving full disruption revisits every node. */
  private countReady(name: string, ready: boolean | undefined): void {
    const before = this.readiness.get(name);
    if (before === true) this.readyCount--;
    if (ready === undefined) this.readiness.delete(name);
    else this.readiness.set(name, ready);
    if (ready === true) this.readyCount++;
    const full = this.readiness.size > 0 && this.readyCount === 0;
    if (full === this.fullDisruption) return;
    this.fullDisruption = full;
    log.info({ fullDisruption: full }, full ? 'no node is ready: withholding NoExecute taints' : 'a node is ready again: resuming NoExecute taints');
    // Leaving it, every node gets a fresh grace period, as Kubernetes does.
    if (!full) for (const h of this.health.values()) h.probeAt = Date.now();
    enqueueAll(this.queue, this.nodes);
  }

  /** Whether no node would be ready if `name` is as just written (the informer may not have shown our write yet). */
  private fullDisruptionWith(name: string, ready: boolean): boolean {
    if (!this.readiness.has(name)) return this.fullDisruption;
    const count = this.readyCount - (this.readiness.get(name) ? 1 : 0) + (ready ? 1 : 0);
    return count === 0;
  }

  private async reconcile(name: string): Promise<{ requeueAfterMs: number } | void> {
    let node = this.nodes.get(name);
    if (!node) return;
    const h = this.health.get(name) ?? this.sawAlive(name);
    if (this.judgingSince === undefined) {
      this.judgingSince = Date.now();
      this.awaitingComeback = new Set(this.health.keys());
    }
    let silentFor = Date.now() - this.silenceSince(name, h, this.judgingSince);
    // Only before marking: a node already Unknown has nothing left to mark, and the informer brings its renewal.
    if (silentFor > this.grace && readyOf(node)?.status !== 'Unknown' && await this.leaseMovedUnseen(name, h)) silentFor = 0;
    if (silentFor > this.grace) {
      const conditions = unknownConditions(node);
      if (conditions) {
        const wasReady = readyOf(node)?.status === 'True';
        const next = structuredClone(node) as Node;
        next.status = { ...next.status, conditions };
        node = await this.ctx.client.updateStatus<Node>(Resources.nodes, undefined, next);
        log.info({ node: name, silentMs: silentFor }, 'node stopped posting status; marked Unknown');
        if (wasReady) this.ctx.events.record(node, 'Normal', 'NodeNotReady', `Node ${name} status is now: NodeNotReady`);
      }
    }
    if (readyOf(node)?.status === 'Unknown') await this.markPodsNotReady(name);

    const taints = reconcileTaints((node.spec?.taints ?? []) as FullTaint[], desiredTaints(node, this.fullDisruptionWith(name, readyOf(node)?.status === 'True')));
    if (taints) {
      const next = structuredClone(node) as Node;
      next.spec = { ...next.spec, taints };
      await this.ctx.client.update(Resources.nodes, undefined, next);
    }
    if (silentFor <= this.grace) return { requeueAfterMs: this.grace - silentFor + 1 };
  }

  /** Whether the store has a renewal of `name`'s Lease the informer has not delivered yet (counted as a sign of life). */
  private async leaseMovedUnseen(name: string, h: Health): Promise<boolean> {
    const lease = await this.ctx.client.get(Resources.leases, LEASE_NAMESPACE, name);
    const renew = (lease?.spec as { renewTime?: string } | undefined)?.renewTime;
    if (renew === undefined || renew === h.renewTime) return false;
    this.sawAlive(name).renewTime = renew;
    return true;
  }

  /** Ready=False on the pods of a silent node, so endpoints stop sending them traffic. */
  private async markPodsNotReady(nodeName: string): Promise<void> {
    for (const pod of this.pods.byIndex(PODS_BY_NODE, nodeName)) {
      const ready = podConditions(pod).find((c) => c.type === 'Ready');
      if (!ready || ready.status === 'False') continue;
      const { namespace, name } = pod.metadata;
      try {
        await this.ctx.client.patch(Resources.pods, namespace, name ?? '', 'strategic',
          { status: { conditions: [{ type: 'Ready', status: 'False', lastTransitionTime: nowRfc3339() }] } }, { subresource: 'status' });
      } catch (err) {
        if (isNotFound(err)) continue;
        throw err;
      }
      this.ctx.events.record(pod, 'Warning', 'NodeNotReady', 'Node is not ready');
    }
  }
}

/** Marks silent nodes Unknown and keeps the condition taints of every node. */
export function startNodeLifecycleController(ctx: ControllerContext): RunningController {
  const nodes = ctx.informers.informerFor<Node>(Resources.nodes);
  const leases = ctx.informers.informerFor(Resources.leases, { namespace: LEASE_NAMESPACE });
  const loop = new NodeLifecycle(ctx, nodes, leases, podsInformer(ctx));
  return { name: 'node-lifecycle', stop: () => loop.stop() };
}

// ---- taint eviction ----------------------------------------------------------------------------------

const noExecuteTaints = (n: Node | undefined) => ((n?.spec?.taints ?? []) as FullTaint[]).filter((t) => t.effect === 'NoExecute');

/**
 * Whether every taint is tolerated, and the tolerations that do it (for each taint the first that
 * matches), as Kubernetes' GetMatchingTolerations.
 */
function matchingTolerations(taints: Taint[], tolerations: Toleration[]): Toleration[] | undefined {
  const used: Toleration[] = [];
  for (const taint of taints) {
    const t = tolerations.find((tol) => toleratesTaint(tol, taint));
    if (!t) return undefined;
    used.push(t);
  }
  return used;
}

/** Seconds the pod may stay: the smallest tolerationSeconds (≤ 0 means none), or -1 for forever. */
export function minTolerationSeconds(used: Toleration[]): number {
  if (used.length === 0) return 0;
  let min = Infinity;
  for (const t of used) {
    if (t.tolerationSeconds === undefined || t.tolerationSeconds === null) continue;
    if (t.tolerationSeconds <= 0) return 0;
    min = Math.min(min, t.tolerationSeconds);
  }
  return min === Infinity ? -1 : min;
}

class TaintEviction {
  private readonly queue = new WorkQueue<string>();
  private readonly controller: RunningController;
  /** Pods with an eviction pending (key → when), so a cancelled one can be told. */
  private readonly scheduled = new Map<string, number>();
  /** node → when this loop first saw a NoExecute taint without timeAdded on it. */
  private readonly firstSeen = new Map<string, number>();

  constructor(private readonly ctx: ControllerContext, private readonly nodes: Informer<Node>, private readonly pods: Informer<Pod>) {
    const podsOn = (name: string | undefined) => {
      if (name) for (const p of pods.byIndex(PODS_BY_NODE, name)) this.queue.add(keyOf(p));
    };
    const sig = (n: Node | undefined) => JSON.stringify(noExecuteTaints(n));
    nodes.addHandlers({
      onAdd: (n) => { if (noExecuteTaints(n).length) podsOn(n.metadata.name); },
      onUpdate: (old, n) => { if (sig(old) !== sig(n)) podsOn(n.metadata.name); },
      onDelete: (n) => { this.firstSeen.delete(n.metadata.name ?? ''); podsOn(n.metadata.name); },
    });
    pods.addHandlers({
      onAdd: (p) => { if (p.spec?.nodeName) this.queue.add(keyOf(p)); },
      onUpdate: (old, p) => {
        if (old.spec?.nodeName !== p.spec?.nodeName || JSON.stringify(old.spec?.tolerations) !== JSON.stringify(p.spec?.tolerations)) this.queue.add(keyOf(p));
      },
      onDelete: (p) => this.cancel(keyOf(p), p),
    });
    // Until the node cache is full, a pod's node may simply not be known yet.
    this.controller = runController({
      name: 'taint-eviction', workers: 4, queue: this.queue, informers: [nodes, pods], reconcile: (key) => this.reconcile(key),
    });
  }

  stop(): Promise<void> {
    return this.controller.stop();
  }

  private cancel(key: string, pod: Pod | undefined): void {
    if (!this.scheduled.delete(key) || !pod) return;
    this.ctx.events.record(pod, 'Normal', 'TaintManagerEviction', `Cancelling deletion of Pod ${key}`);
  }

  private async reconcile(key: string): Promise<{ requeueAfterMs: number } | void> {
    const pod = this.pods.get(key);
    if (!pod) { this.scheduled.delete(key); return; }
    if (pod.metadata.deletionTimestamp) { this.scheduled.delete(key); return; }
    const nodeName = pod.spec?.nodeName;
    const node = nodeName ? this.nodes.get(nodeName) : undefined;
    const taints = noExecuteTaints(node);
    if (taints.length === 0) { this.cancel(key, pod); return; }
    const used = matchingTolerations(taints, pod.spec?.tolerations ?? []);
    if (!used) return this.evict(key, pod);
    const seconds = minTolerationSeconds(used);
    if (seconds < 0) { this.cancel(key, pod); return; }
    const at = this.taintedSince(nodeName!, taints) + seconds * 1000;
    const wait = at - Date.now();
    if (wait <= 0) return this.evict(key, pod);
    this.scheduled.set(key, at);
    return { requeueAfterMs: wait };
  }

  /** The earliest timeAdded of the node's NoExecute taints (or when first seen without one). */
  private taintedSince(nodeName: string, taints: FullTaint[]): number {
    let since = Infinity;
    for (const t of taints) {
      const added = t.timeAdded ? Date.parse(t.timeAdded) : NaN;
      if (!Number.isNaN(added)) since = Math.min(since, added);
      else {
        if (!this.firstSeen.has(nodeName)) this.firstSeen.set(nodeName, Date.now());
        since = Math.min(since, this.firstSeen.get(nodeName)!);
      }
    }
    return since;
  }

  private async evict(key: string, pod: Pod): Promise<void> {
    const { namespace, name = '' } = pod.metadata;
    this.scheduled.delete(key);
    this.ctx.events.record(pod, 'Normal', 'TaintManagerEviction', `Marking for deletion Pod ${key}`);
    try {
      if (!podConditions(pod).some((c) => c.type === 'DisruptionTarget' && c.status === 'True')) {
        await this.ctx.client.patch(Resources.pods, namespace, name, 'strategic', {
          status: { conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'DeletionByTaintManager', message: 'Taint manager: deleting due to NoExecute taint', lastTransitionTime: nowRfc3339() }] },
        }, { subresource: 'status' });
      }
      await this.ctx.client.delete(Resources.pods, namespace, name, { preconditions: pod.metadata.uid ? { uid: pod.metadata.uid } : undefined });
      log.info({ pod: key, node: pod.spec?.nodeName }, 'evicted pod from a NoExecute-tainted node');
    } catch (err) {
      if (isNotFound(err)) return;
      log.debug({ pod: key, err: errText(err) }, 'taint eviction failed; retrying');
      throw err;
    }
  }
}

/** Deletes pods from nodes whose NoExecute taints they do not tolerate (or no longer tolerate). */
export function startTaintEvictionController(ctx: ControllerContext): RunningController {
  const loop = new TaintEviction(ctx, ctx.informers.informerFor<Node>(Resources.nodes), podsInformer(ctx));
  return { name: 'taint-eviction', stop: () => loop.stop() };
}
