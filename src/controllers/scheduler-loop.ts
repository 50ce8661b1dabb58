// The scheduling loop (kube-scheduler's role): follows unbound pods and the cluster through shared
// informers, decides placements one at a time against an incremental ClusterSnapshot, and binds
// through pods/binding with several bindings in flight. A placed pod counts on its node at once
// ("assumed"), so the next decision already sees it; a failed binding takes it back off.
//
// A pod that fits nowhere gets PodScheduled=False/Unschedulable with the FailedScheduling message and
// waits, as in kube-scheduler's scheduling queue, until the cluster changes in a way that could help
// (a node added or changed, a bound pod gone), or until it has waited `resyncMs`; retries back off
// per pod from 1 s to 10 s. Killed at any point, the loop starts over from the informers: binding is
// refused for a pod already bound, so nothing is placed twice.
import type { KObject } from '../api/object.js';
import { ApiError } from '../api/status.js';
import { nowRfc3339 } from '../util/time.js';
import { isPodActive, isPodTerminal } from '../api/pod.js';
import { Resources, isNotFound } from '../client/types.js';
import type { ControllerContext } from './context.js';
import { waitForCacheSync, type RunningController } from '../client/controller.js';
import { keyOf, type Informer } from '../client/informer.js';
import { ClusterSnapshot } from './scheduler/snapshot.js';
import type { Node, Pod } from './scheduler/types.js';
import { volumeDecision, type VolumeListers } from './scheduler/volume-binding.js';
import { SELECTED_NODE_ANNOTATION, type PersistentVolume, type PersistentVolumeClaim, type StorageClass } from './volumes/claim-matching.js';
import { logger } from '../util/log.js';
import { counter, currentMetricsRegistry } from '../client/metrics-scope.js';

function schedulerAttemptsMetric(): ((result: 'scheduled' | 'unschedulable' | 'error') => void) | undefined {
  const registry = currentMetricsRegistry();
  if (!registry) return undefined;
  const c = counter(registry, 'scheduler_schedule_attempts_total',
    'Number of attempts to schedule pods, by the result. \'unschedulable\' means a pod could not be scheduled, while \'error\' means an internal scheduler problem.',
    ['result', 'profile']);
  for (const r of ['scheduled', 'unschedulable', 'error']) c.labels(r, 'default-scheduler').inc(0);
  return (result) => c.labels(result, 'default-scheduler').inc();
}

const log = logger('scheduler');
const SCHEDULER_NAME = 'default-scheduler';

export interface SchedulerTuning {
  /** Bindings written concurrently; decisions stay sequential. */
  maxBindsInFlight: number;
  /** Per-pod retry backoff after a failed attempt (kube-scheduler: 1 s doubling to 10 s). */
  initialBackoffMs: number;
  maxBackoffMs: number;
  /** An unschedulable pod is tried again after this long even if nothing changed (default: ctx.options.resyncMs). */
  unschedulableRetryMs?: number;
}

const DEFAULT_TUNING: SchedulerTuning = { maxBindsInFlight: 64, initialBackoffMs: 1000, maxBackoffMs: 10_000 };

type State = 'active' | 'backoff' | 'unschedulable' | 'binding';

/** One pending pod in the scheduling queue. Replaced (not reused) when the pod leaves and comes back. */
interface Entry {
  key: string;
  priority: number;
  /** FIFO order among equal priorities: when the entry last became active. */
  seq: number;
  state: State;
  /** Failed attempts so far; the backoff doubles with each. */
  attempts: number;
  lastTried: number;
  /** The last FailedScheduling message recorded, so a repeat does not record it again. */
  lastMessage?: string;
}

/** Binary heap of active entries: higher priority first, then FIFO. Stale entries are skipped on pop. */
class ActiveHeap {
  private items: Entry[] = [];
  get size(): number { return this.items.length; }

  push(e: Entry): void {
    const a = this.items;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!before(a[i]!, a[p]!)) break;
      [a[i], a[p]] = [a[p]!, a[i]!];
      i = p;
    }
  }

  pop(): Entry | undefined {
    const a = this.items;
    if (a.length === 0) return undefined;
    const top = a[0]!;
    const last = a.pop()!;
    if (a.length) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1, r = l + 1;
        let m = i;
        if (l < a.length && before(a[l]!, a[m]!)) m = l;
        if (r < a.length && before(a[r]!, a[m]!)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m]!, a[i]!];
        i = m;
      }
    }
    return top;
  }
}

const before = (a: Entry, b: Entry) => a.priority !== b.priority ? a.priority > b.priority : a.seq < b.seq;

/** Unbound, ours, alive and not held back by scheduling gates. */
function wantsScheduling(p: Pod): boolean {
  const spec = p.spec as (Pod['spec'] & { schedulerName?: string; schedulingGates?: unknown[] }) | undefined;
  if (!spec || spec.nodeName) return false;
  if ((spec.schedulerName || SCHEDULER_NAME) !== SCHEDULER_NAME) return false;
  if (!isPodActive(p)) return false;
  return !spec.schedulingGates?.length;
}

/** What about a node can change where pods fit (not its heartbeats). */
function schedulingSignature(n: Node): string {
  return JSON.stringify([
    n.metadata.labels, n.spec?.taints, n.spec?.unschedulable, n.status?.allocatable,
    n.status?.conditions?.map((c) => `${c.type}=${c.status}`),
  ]);
}

interface PodCondition { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }
const specOrLabelsChanged = (a: Pod, b: Pod) =>
  JSON.stringify(a.spec) !== JSON.stringify(b.spec) || JSON.stringify(a.metadata.labels) !== JSON.stringify(b.metadata.labels);

const conditionsOf = (p: Pod) => ((p.status as { conditions?: PodCondition[] } | undefined)?.conditions ?? []);

class SchedulingLoop {
  private readonly snapshot: ClusterSnapshot;
  private readonly entries = new Map<string, Entry>();
  private readonly heap = new ActiveHeap();
  /** Entries waiting (unschedulable or backing off), so sweeps don't walk the whole queue. */
  private readonly parked = new Set<Entry>();
  /** uid → node for pods placed by us whose binding the informer has not confirmed yet. */
  private readonly assumed = new Map<string, string>();
  private seq = 0;
  private inFlight = 0;
  /** Bindings and status writes under way; stop() waits for them. */
  private readonly writes = new Set<Promise<unknown>>();
  private stopped = false;
  private signalStop!: () => void;
  private readonly stopping = new Promise<void>((resolve) => { this.signalStop = resolve; });
  private wake?: () => void;
  private readonly ticker: NodeJS.Timeout;
  private readonly loop: Promise<void>;
  private readonly tuning: SchedulerTuning & { unschedulableRetryMs: number };
  /** kube-scheduler's scheduler_schedule_attempts_total{result,profile}, when metrics are kept. */
  private readonly attemptsMetric = schedulerAttemptsMetric();

  constructor(private readonly ctx: ControllerContext, private readonly pods: Informer<Pod>, private readonly nodes: Informer<Node>,
    private readonly namespaces: Informer, private readonly volumes: VolumeListers, tuning: Partial<SchedulerTuning>) {
    this.tuning = { ...DEFAULT_TUNING, unschedulableRetryMs: ctx.options.resyncMs, ...tuning };
    this.snapshot = new ClusterSnapshot({ namespaces: (name) => namespaces.getByName(undefined, name)?.metadata.labels });
    nodes.addHandlers({
      onAdd: (n) => { this.snapshot.addNode(n); this.moveAllToActive(); },
      onUpdate: (old, n) => {
        this.snapshot.updateNode(n);
        if (schedulingSignature(old) !== schedulingSignature(n)) this.moveAllToActive();
      },
      onDelete: (n) => this.snapshot.removeNode(n.metadata.name ?? ''),
    });
    pods.addHandlers({
      onAdd: (p) => this.podSeen(p),
      onUpdate: (old, p) => this.podSeen(p, old),
      onDelete: (p) => this.podGone(p),
    });
    // One ticker moves backed-off pods whose time has come and long-parked unschedulable ones.
    const tick = Math.max(10, Math.min(1000, this.tuning.initialBackoffMs, this.tuning.unschedulableRetryMs));
    this.ticker = setInterval(() => this.flush(), tick);
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.ticker);
    this.signalStop();
    this.wake?.();
    await this.loop;
    await Promise.allSettled([...this.writes]);
  }

  private track(write: Promise<unknown>): void {
    this.writes.add(write);
    void write.finally(() => this.writes.delete(write)).catch(() => undefined);
  }

  // ---- informer events ---------------------------------------------------------------------------

  private podSeen(p: Pod, old?: Pod): void {
    const key = keyOf(p);
    if (p.spec?.nodeName) {
      this.drop(key);
      if (p.metadata.uid) this.assumed.delete(p.metadata.uid);
      // Finished pods free their node, as kube-scheduler's cache drops Succeeded/Failed pods.
      if (isPodTerminal(p)) { this.snapshot.removePod(p); this.moveAllToActive(); }
      else this.snapshot.updatePod(p);
      return;
    }
    if (!wantsScheduling(p)) { this.drop(key); return; }
    const e = this.entries.get(key);
    if (!e) {
      this.activate({ key, priority: p.spec?.priority ?? 0, seq: 0, state: 'active', attempts: 0, lastTried: 0 });
    } else if (e.state === 'unschedulable' && old && specOrLabelsChanged(old, p)) {
      // The pod itself changed (its tolerations, affinity, requests): worth another look. Status
      // writes (our own PodScheduled condition among them) are not.
      this.retryAfterBackoff(e);
    }
  }

  private podGone(p: Pod): void {
    this.drop(keyOf(p));
    if (p.metadata.uid) this.assumed.delete(p.metadata.uid);
    this.snapshot.removePod(p);
    if (p.spec?.nodeName) this.moveAllToActive();
  }

  private drop(key: string): void {
    const e = this.entries.get(key);
    if (!e) return;
    this.entries.delete(key);
    this.parked.delete(e);
  }

  // ---- the queue ---------------------------------------------------------------------------------

  private activate(e: Entry): void {
    e.state = 'active';
    e.seq = this.seq++;
    this.entries.set(e.key, e);
    this.parked.delete(e);
    this.heap.push(e);
    this.wake?.();
  }

  private park(e: Entry, state: 'backoff' | 'unschedulable'): void {
    e.state = state;
    this.parked.add(e);
  }

  private readyAt(e: Entry): number {
    if (e.attempts === 0) return 0;
    return e.lastTried + Math.min(this.tuning.initialBackoffMs * 2 ** (e.attempts - 1), this.tuning.maxBackoffMs);
  }

  private retryAfterBackoff(e: Entry): void {
    if (this.readyAt(e) <= Date.now()) this.activate(e);
    else this.park(e, 'backoff');
  }

  /** Claims, volumes or classes changed: pods that wait on volumes (or were refused for them) try again. */
  volumesChanged(): void {
    this.moveAllToActive();
  }

  /** A change that may let parked pods fit: each gets another try once its backoff allows. */
  private moveAllToActive(): void {
    for (const e of this.parked) if (e.state === 'unschedulable') this.retryAfterBackoff(e);
  }

  private flush(): void {
    const now = Date.now();
    for (const e of this.parked) {
      if (e.state === 'backoff' ? this.readyAt(e) <= now : now - e.lastTried >= this.tuning.unschedulableRetryMs) this.activate(e);
    }
  }

  // ---- scheduling --------------------------------------------------------------------------------

  private async run(): Promise<void> {
    // Deciding before the caches are full would call every pod unschedulable on an empty cluster.
    if (!await waitForCacheSync([this.pods, this.nodes, this.namespaces], this.stopping)) return;
    let sinceYield = 0;
    while (!this.stopped) {
      if (this.inFlight >= this.tuning.maxBindsInFlight || this.heap.size === 0) {
        await new Promise<void>((resolve) => { this.wake = resolve; });
        this.wake = undefined;
        continue;
      }
      const e = this.heap.pop()!;
      if (this.entries.get(e.key) !== e || e.state !== 'active') continue;
      this.attempt(e);
      // Let informer events and binding replies in between decisions.
      if (++sinceYield >= 32) { sinceYield = 0; await new Promise((r) => setImmediate(r)); }
    }
  }

  private attempt(e: Entry): void {
    const pod = this.pods.get(e.key);
    if (!pod || !wantsScheduling(pod)) { this.drop(e.key); return; }
    e.lastTried = Date.now();
    const volumes = volumeDecision(pod, this.volumes, this.snapshot.nodes.length);
    const result = volumes.kind === 'unschedulable' ? { node: undefined, message: volumes.message } : this.snapshot.schedule(volumes.pod);
    if (result.node === undefined) {
      this.attemptsMetric?.('unschedulable');
      e.attempts++;
      this.park(e, 'unschedulable');
      this.reportUnschedulable(e, pod, result.message);
      return;
    }
    if (volumes.kind === 'schedule' && (volumes.delayed.length || volumes.waiting)) {
      // WaitForFirstConsumer: the claims learn the node; the pod is bound once they are (a claim
      // update moves it back to active).
      this.park(e, 'unschedulable');
      for (const pvc of volumes.delayed) this.selectNode(pvc, result.node);
      return;
    }
    e.state = 'binding';
    this.snapshot.addPod(pod, result.node);
    if (pod.metadata.uid) this.assumed.set(pod.metadata.uid, result.node);
    this.inFlight++;
    this.track(this.bind(e, pod, result.node).finally(() => { this.inFlight--; this.wake?.(); }));
  }

  private async bind(e: Entry, pod: Pod, node: string): Promise<void> {
    const { namespace = 'default', name = '', uid } = pod.metadata;
    try {
      await this.ctx.client.bind(namespace, name, node);
    } catch (err) {
      // Undo the assumption unless the informer has meanwhile shown where the pod really is.
      if (uid && this.assumed.get(uid) === node) { this.assumed.delete(uid); this.snapshot.removePod(pod); }
      if (this.entries.get(e.key) !== e || this.stopped) return;
      // Gone, or bound by someone else: the informer will tell the rest.
      if (isNotFound(err) || (err instanceof ApiError && err.code === 409)) { this.drop(e.key); return; }
      log.warn({ pod: e.key, node, err: err instanceof Error ? err.message : String(err) }, 'binding failed; retrying');
      this.attemptsMetric?.('error');
      e.attempts++;
      this.park(e, 'backoff');
      return;
    }
    if (this.entries.get(e.key) === e) this.drop(e.key);
    this.attemptsMetric?.('scheduled');
    this.ctx.events.record(pod, 'Normal', 'Scheduled', `Successfully assigned ${namespace}/${name} to ${node}`);
  }

  private selectNode(pvc: PersistentVolumeClaim, node: string): void {
    const { namespace, name } = pvc.metadata;
    this.track(this.ctx.client.patch(Resources.persistentVolumeClaims, namespace, name ?? '', 'merge',
      { metadata: { annotations: { [SELECTED_NODE_ANNOTATION]: node } } })
      .catch((err: unknown) => log.debug({ pvc: `${namespace}/${name}`, err: err instanceof Error ? err.message : String(err) }, 'could not select a node for the claim')));
  }

  /** PodScheduled=False with the message, and one FailedScheduling event per distinct message. */
  private reportUnschedulable(e: Entry, pod: Pod, message: string): void {
    const { namespace, name } = pod.metadata;
    if (e.lastMessage !== message) {
      e.lastMessage = message;
      this.ctx.events.record(pod, 'Warning', 'FailedScheduling', message);
    }
    const prev = conditionsOf(pod).find((c) => c.type === 'PodScheduled');
    if (prev?.status === 'False' && prev.reason === 'Unschedulable' && prev.message === message) return;
    const condition = {
      type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message, lastProbeTime: null,
      lastTransitionTime: prev?.status === 'False' && prev.lastTransitionTime ? prev.lastTransitionTime : nowRfc3339(),
    };
    this.track(this.ctx.client.patch(Resources.pods, namespace, name ?? '', 'strategic', { status: { conditions: [condition] } }, { subresource: 'status' })
      .catch((err: unknown) => {
        if (!isNotFound(err)) log.debug({ pod: e.key, err: err instanceof Error ? err.message : String(err) }, 'could not set PodScheduled=False');
      }));
  }
}

/** The scheduler: places every pod whose schedulerName is default-scheduler (or unset). */
export function startSchedulerController(ctx: ControllerContext, tuning: Partial<SchedulerTuning> = {}): RunningController {
  const pods = ctx.informers.informerFor<Pod>(Resources.pods);
  const nodes = ctx.informers.informerFor<Node>(Resources.nodes);
  const namespaces = ctx.informers.informerFor<KObject>(Resources.namespaces);
  const claims = ctx.informers.informerFor<PersistentVolumeClaim>(Resources.persistentVolumeClaims);
  const pvs = ctx.informers.informerFor<PersistentVolume>(Resources.persistentVolumes);
  const classes = ctx.informers.informerFor<StorageClass>(Resources.storageClasses);
  const listers: VolumeListers = {
    claim: (ns, name) => claims.getByName(ns, name),
    volume: (name) => pvs.getByName(undefined, name),
    volumes: () => pvs.list(),
    storageClass: (name) => classes.getByName(undefined, name),
  };
  const loop = new SchedulingLoop(ctx, pods, nodes, namespaces, listers, tuning);
  // A claim bound, created or given a volume may let waiting pods through.
  const retry = () => loop.volumesChanged();
  claims.addHandlers({ onAdd: retry, onUpdate: retry });
  pvs.addHandlers({ onAdd: retry, onUpdate: retry });
  classes.addHandlers({ onAdd: retry });
  return { name: 'scheduler', stop: () => loop.stop() };
}
