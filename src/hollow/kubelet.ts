// One hollow node: the parts of a kubelet the control plane can see. It registers its Node, renews
// its Lease every heartbeat interval and posts node status less often (as the kubelet does since
// leases exist), and "runs" the pods bound to it: after the start delay they are reported Running
// and Ready, and a pod being deleted is removed (grace period 0, uid precondition) after a short
// simulated termination. Pod work is level-triggered: the owner's work queue hands it pod keys,
// and each reconcile reads the pod from this node's informer, so a restart simply converges.
import { isConflict, isNotFound, Resources, type ApiClient } from '../client/types.js';
import { ApiError } from '../api/status.js';
import { Informer, keyOf } from '../client/informer.js';
import type { ReconcileResult } from '../client/controller.js';
import { logger, type Logger } from '../util/log.js';
import { microTime, rfc3339 } from '../util/time.js';
import {
  LEASE_NAMESPACE, exitedStatus, ipv4Add, leaseObject, nodeAddresses, nodeConditions, nodeObject, plannedExit,
  runningStatus, type Obj, type Taint,
} from './objects.js';

export interface HollowKubeletOptions {
  name: string;
  /** Position in the fleet: picks the node's fake InternalIP and pod IP block. */
  ordinal: number;
  /** Acting as `system:node:<name>`: the node authorizer lets it write only its own objects. */
  client: ApiClient;
  labels: Record<string, string>;
  taints: Taint[];
  podStartDelayMs: number;
  /** Lease renewal period (the kubelet's: 10 s, a quarter of the 40 s lease). */
  heartbeatIntervalMs: number;
  /** How often node status (conditions' lastHeartbeatTime) is posted besides the Lease (and after a gap in renewals). */
  nodeStatusIntervalMs: number;
  /** Upper bound of the simulated termination of a deleted pod (its grace period may be shorter). */
  terminationDelayMs: number;
  /** Queues a pod key (`namespace/name`) of this node for reconcilePod, optionally after a delay. */
  enqueue(podKey: string, afterMs?: number): void;
}

interface PodState {
  uid: string;
  /** When this node first saw the pod: its status.startTime, and where the start delay counts from. */
  seenAt: number;
  terminatingAt?: number;
  /** Given out but maybe not yet in the informer's copy. */
  ip?: string;
}

/** Registration and lease writes retry on this schedule while the server is unreachable. */
const RETRY_MIN_MS = 200;
const RETRY_MAX_MS = 7_000;
/** After a gap in renewals the server's Ready is checked every 3 heartbeats (30 s) for 9 (90 s: past a 40 s grace period). */
const VERIFY_EVERY_HEARTBEATS = 3;
const VERIFY_FOR_HEARTBEATS = 9;

export class HollowKubelet {
  readonly name: string;
  private readonly o: HollowKubeletOptions;
  private readonly log: Logger;
  private readonly informer: Informer<Obj>;
  private readonly pods = new Map<string, PodState>();
  private readonly hostIP: string;
  private readonly podBlockBase: string;
  private nodeUid?: string;
  private lease?: Obj;
  private readySince = new Date();
  private frozen = false;
  private stopped = false;
  private registered = false;
  private heartbeatTimer?: NodeJS.Timeout;
  private statusTimer?: NodeJS.Timeout;
  private heartbeatInFlight = false;
  /** When the last Lease renewal succeeded (this process's clock). */
  private lastRenewed?: number;
  /** Until then (after a gap in renewals), every few heartbeats check that the server shows this node Ready. */
  private verifyReadyUntil = 0;
  private lastVerified = 0;
  /** Cuts a registration retry's wait short when stopped. */
  private wakeRetry?: () => void;

  constructor(o: HollowKubeletOptions) {
    this.o = o;
    this.name = o.name;
    this.log = logger('hollow').child({ node: o.name });
    const addr = nodeAddresses(o.ordinal);
    this.hostIP = addr.internalIP;
    this.podBlockBase = addr.podBlockBase;
    this.informer = new Informer<Obj>({ client: o.client, resource: Resources.pods, fieldSelector: `spec.nodeName=${o.name}` });
    const enqueue = (p: Obj) => o.enqueue(keyOf(p));
    this.informer.addHandlers({ onAdd: enqueue, onUpdate: (_old, p) => enqueue(p), onDelete: enqueue });
  }

  /** Registers the Node and its Lease (retrying until the server takes them), then starts watching pods. */
  async start(): Promise<void> {
    let delay = RETRY_MIN_MS;
    while (!this.stopped) {
      try {
        await this.register();
        await this.renewLease();
        break;
      } catch (err) {
        this.log.warn({ err: describe(err) }, 'registration failed; retrying');
        await new Promise<void>((resolve) => { this.wakeRetry = resolve; setTimeout(resolve, delay); });
        delay = Math.min(delay * 2, RETRY_MAX_MS);
      }
    }
    if (this.stopped) return;
    this.registered = true;
    this.informer.start();
    // Spread the first ticks so a thousand nodes started together don't renew in lockstep.
    const jitter = (ms: number) => Math.floor(Math.random() * ms);
    this.heartbeatTimer = setTimeout(() => this.heartbeatLoop(), jitter(this.o.heartbeatIntervalMs));
    this.statusTimer = setTimeout(() => this.statusLoop(), jitter(this.o.nodeStatusIntervalMs));
  }

  waitForPodSync(timeoutMs?: number): Promise<void> {
    return this.informer.waitForSync(timeoutMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.wakeRetry?.();
    clearTimeout(this.heartbeatTimer);
    clearTimeout(this.statusTimer);
    await this.informer.stop();
  }

  isFrozen(): boolean {
    return this.frozen;
  }

  /**
   * A frozen node behaves as if cut off: no Lease renewals, no node status, no pod work (its pods
   * stay as they are, deleted ones stay Terminating), until thawed, when it reports Ready again.
   */
  setFrozen(frozen: boolean): void {
    if (this.frozen === frozen) return;
    this.frozen = frozen;
    this.log.info({ frozen }, frozen ? 'heartbeats frozen' : 'heartbeats resumed');
    if (frozen || !this.registered || this.stopped) return;
    // The node lifecycle controller has likely marked it Unknown meanwhile: a new Ready transition.
    this.readySince = new Date();
    // The status goes out just below: the renewal must not post it too for the gap the freeze made.
    this.lastRenewed = undefined;
    void this.heartbeat().then(() => this.postStatus()).catch((err) => this.log.warn({ err: describe(err) }, 'status after thaw failed'));
    for (const key of this.informer.keys()) this.o.enqueue(key);
  }

  // ---- node and lease ----------------------------------------------------------------------------

  private async register(): Promise<void> {
    const desired = nodeObject({ name: this.name, ordinal: this.o.ordinal, labels: this.o.labels, taints: this.o.taints }, this.readySince);
    try {
      const created = await this.o.client.create(Resources.nodes, undefined, desired);
      this.nodeUid = created.metadata.uid;
      this.log.debug('node registered');
      return;
    } catch (err) {
      if (!(err instanceof ApiError && err.code === 409)) throw err;
    }
    // Already registered (a restart): like the kubelet, keep the object and refresh its status.
    const existing = await this.o.client.get(Resources.nodes, undefined, this.name);
    if (!existing) throw new Error(`node ${this.name} vanished during registration`);
    this.nodeUid = existing.metadata.uid;
    await this.postStatus(desired.status);
  }

  private async postStatus(full?: Record<string, any>): Promise<void> {
    const now = rfc3339();
    const status = { ...(full ?? {}), conditions: nodeConditions(now, rfc3339(this.readySince)) };
    // A merge patch replaces the conditions list whole: the node owns all four.
    await this.o.client.patch(Resources.nodes, undefined, this.name, 'merge', { status }, { subresource: 'status' });
  }

  private async renewLease(): Promise<void> {
    const now = new Date();
    if (this.lease) {
      const next = structuredClone(this.lease);
      next.spec = { ...next.spec, holderIdentity: this.name, renewTime: microTime(now) };
      try {
        this.lease = await this.o.client.update<Obj>(Resources.leases, LEASE_NAMESPACE, next);
        return;
      } catch (err) {
        // Someone else wrote it, or it was deleted with the Node: start over from the server's copy.
        if (!isConflict(err) && !isNotFound(err)) throw err;
        this.lease = undefined;
      }
    }
    const current = await this.o.client.get<Obj>(Resources.leases, LEASE_NAMESPACE, this.name);
    if (!current) {
      this.lease = await this.o.client.create<Obj>(Resources.leases, LEASE_NAMESPACE, leaseObject(this.name, this.nodeUid, now));
      return;
    }
    this.lease = current;
    await this.renewLease();
  }

  private async heartbeat(): Promise<void> {
    if (this.heartbeatInFlight || this.frozen || this.stopped) return;
    this.heartbeatInFlight = true;
    try {
      await this.renewLease();
      // Node status is otherwise posted only every report period (the Lease is the heartbeat, as
      // with the kubelet's nodeStatusReportFrequency). After a gap in renewals the node lifecycle
      // may have marked this node Unknown: report Ready at once, as a kubelet that finds its Node's
      // status differing from its own would.
      const now = Date.now();
      const gap = this.lastRenewed === undefined ? 0 : now - this.lastRenewed;
      this.lastRenewed = now;
      if (gap > 2 * this.o.heartbeatIntervalMs) {
        // The lifecycle loop may mark it Unknown even after this check, from a judgement made
        // before it saw this renewal. For a while, compare the server's Ready with ours every 3
        // heartbeats, as the kubelet does on every status tick (only after a gap here: 5,000 hollow
        // nodes reading their Node every 10 s would load the benchmark's server with reads that
        // change nothing). A read first, not a status write: after a server restart all 5,000
        // nodes come back at once, and most were never marked (a write each was 5,000 commits and
        // their watch events while the server was taking in 10,000 connections).
        this.verifyReadyUntil = now + VERIFY_FOR_HEARTBEATS * this.o.heartbeatIntervalMs;
        this.lastVerified = now;
        await this.postStatusUnlessReady();
      } else if (now < this.verifyReadyUntil && now - this.lastVerified >= VERIFY_EVERY_HEARTBEATS * this.o.heartbeatIntervalMs) {
        this.lastVerified = now;
        await this.postStatusUnlessReady();
      }
    } finally {
      this.heartbeatInFlight = false;
    }
  }

  /** Posts node status if the server does not show this node Ready (a missing Node is the heartbeat's to handle). */
  private async postStatusUnlessReady(): Promise<void> {
    const node = await this.o.client.get<Obj>(Resources.nodes, undefined, this.name);
    const ready = (node?.status?.conditions as Array<{ type?: string; status?: string }> | undefined)?.find((c) => c.type === 'Ready');
    if (node && ready?.status !== 'True') await this.postStatus();
  }

  private heartbeatLoop(): void {
    if (this.stopped) return;
    void this.heartbeat()
      .catch(async (err) => {
        this.log.warn({ err: describe(err) }, 'lease renewal failed');
        // The Node itself may be gone (deleted by an admin): register again, as the kubelet does.
        if (isNotFound(err) || (err instanceof ApiError && err.code === 403)) await this.register().catch(() => {});
      })
      .finally(() => {
        if (!this.stopped) this.heartbeatTimer = setTimeout(() => this.heartbeatLoop(), this.o.heartbeatIntervalMs);
      });
  }

  private statusLoop(): void {
    if (this.stopped) return;
    const post = this.frozen ? Promise.resolve() : this.postStatus().catch(async (err) => {
      this.log.warn({ err: describe(err) }, 'node status update failed');
      if (isNotFound(err)) await this.register().catch(() => {});
    });
    void post.finally(() => {
      if (!this.stopped) this.statusTimer = setTimeout(() => this.statusLoop(), this.o.nodeStatusIntervalMs);
    });
  }

  // ---- pods ---------------------------------------------------------------------------------------

  /** Brings one pod of this node one step closer to what a kubelet would report. */
  async reconcilePod(key: string): Promise<ReconcileResult | void> {
    if (this.frozen || this.stopped) return;   // thawing queues every pod again
    const pod = this.informer.get(key);
    let state = this.pods.get(key);
    if (!pod || pod.spec?.nodeName !== this.name) {
      this.pods.delete(key);
      return;
    }
    const uid = String(pod.metadata.uid);
    if (!state || state.uid !== uid) this.pods.set(key, state = { uid, seenAt: Date.now() });
    const now = Date.now();

    if (pod.metadata.deletionTimestamp) {
      state.terminatingAt ??= now;
      const grace = (pod.metadata.deletionGracePeriodSeconds ?? 30) * 1000;
      const wait = Math.min(grace, this.o.terminationDelayMs) - (now - state.terminatingAt);
      if (wait > 0) return { requeueAfterMs: wait };
      try {
        await this.o.client.delete(Resources.pods, pod.metadata.namespace, String(pod.metadata.name), { gracePeriodSeconds: 0, preconditions: { uid } });
      } catch (err) {
        // Gone already, or a new pod of the same name (the uid precondition failed): nothing to do.
        if (!isNotFound(err) && !(err instanceof ApiError && err.code === 409)) throw err;
      }
      return;
    }

    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') return;
    if (phase === 'Running' && pod.status?.podIP) {
      // Someone else set Ready (the node lifecycle marks a silent node's pods not ready): a live
      // kubelet's status manager puts back what it knows, as the kubelet does.
      if (readyDrifted(pod)) return this.repostRunning(pod);
      return this.maybeExit(pod);
    }

    const wait = this.o.podStartDelayMs - (now - state.seenAt);
    if (wait > 0) return { requeueAfterMs: wait };
    state.ip ??= this.allocateIP(key);
    // The informer's pod with a new status: only serialized, so it needs no deep copy.
    const next: Obj = { ...pod, status: runningStatus(pod, { hostIP: this.hostIP, podIP: state.ip, startTime: new Date(state.seenAt), startedAt: new Date(now) }) };
    // PUT with the informer's resourceVersion: a pod that changed (or was replaced) meanwhile
    // fails with a conflict and is retried from the newer copy.
    await this.o.client.updateStatus(Resources.pods, pod.metadata.namespace, next);
  }

  private async repostRunning(pod: Obj): Promise<void> {
    const started = Date.parse(pod.status?.startTime ?? '');
    const running = Date.parse(pod.status?.containerStatuses?.[0]?.state?.running?.startedAt ?? '');
    const next: Obj = { ...pod, status: runningStatus(pod, {
      hostIP: pod.status.hostIP ?? this.hostIP, podIP: pod.status.podIP,
      startTime: new Date(Number.isFinite(started) ? started : Date.now()), startedAt: new Date(Number.isFinite(running) ? running : Date.now()),
    }) };
    await this.o.client.updateStatus(Resources.pods, pod.metadata.namespace, next);
  }

  private async maybeExit(pod: Obj): Promise<ReconcileResult | void> {
    const exit = plannedExit(pod);
    if (!exit) return;
    const startedAt = Date.parse(pod.status?.containerStatuses?.[0]?.state?.running?.startedAt ?? '');
    const wait = (Number.isFinite(startedAt) ? startedAt : Date.now()) + exit.afterMs - Date.now();
    if (wait > 0) return { requeueAfterMs: wait };
    const next: Obj = { ...pod, status: exitedStatus(pod, exit.code, new Date()) };
    await this.o.client.updateStatus(Resources.pods, pod.metadata.namespace, next);
  }

  /** A free address of this node's /24 (.2 to .254); there are never more than 110 pods on it. */
  private allocateIP(key: string): string {
    const used = new Set<string>();
    for (const p of this.informer.list()) if (p.status?.podIP && keyOf(p) !== key) used.add(p.status.podIP);
    for (const [k, s] of this.pods) if (s.ip && k !== key) used.add(s.ip);
    for (let host = 2; host < 255; host++) {
      const ip = ipv4Add(this.podBlockBase, host);
      if (!used.has(ip)) return ip;
    }
    throw new Error(`node ${this.name}: no free pod IP in ${this.podBlockBase}/24`);
  }
}

/** Whether the pod's Ready condition differs from what this node reports for a running pod (readiness gates honoured). */
function readyDrifted(pod: Obj): boolean {
  const conditions: { type: string; status: string }[] = pod.status?.conditions ?? [];
  const gates: string[] = (pod.spec?.readinessGates ?? []).map((g: any) => g.conditionType);
  const want = gates.every((g) => conditions.some((c) => c.type === g && c.status === 'True')) ? 'True' : 'False';
  return conditions.find((c) => c.type === 'Ready')?.status !== want;
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
