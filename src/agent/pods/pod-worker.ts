// One pod's worker: everything the agent does for a pod, serialised (one sync at a time per pod,
// concurrent across pods). Each sync is level-triggered like the kubelet's SyncPod: it reads the pod's
// sandboxes and containers back from CRI, compares them with the spec, takes the next steps (volumes,
// sandbox, init containers one by one, containers with restart policy and back-off, probes), and posts
// the status computed from what CRI then reports. A deleted pod is stopped gracefully (preStop, grace
// period), its sandbox and volumes removed, and the API object finally deleted.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isNotFound as isCriNotFound, nanosToDate, type CriClient } from '../runtime/cri-client.js';
import type { Container, PodSandbox, PodSandboxConfig } from '../runtime/cri-types.js';
import type { Logger } from '../../util/log.js';
import { Backoff, goDuration } from './backoff.js';
import { containerConfig, containerHash, containerMounts, type ContainerKind } from './containers.js';
import { podQosClass } from '../../api/pod.js';
import { ContainerConfigError, containerEnv } from './env.js';
import type { FieldContext, NodeResources } from './fields.js';
import { defaultPullPolicy, pullCredentials } from './image-pull.js';
import { registryCredentials } from '../runtime/registries.js';
import { pullImage } from '../runtime/rewrite-pull.js';
import {
  CONTAINER_HASH_ANNOTATION, CONTAINER_NAME_LABEL, CONTAINER_TYPE_ANNOTATION, NODE_LABEL, POD_UID_LABEL, RESTART_COUNT_ANNOTATION,
  podDescription,
} from './labels.js';
import type { EventType, Obj, PodApi } from './pod-api.js';
import { ContainerProbes, runHandler, type ProbeKind } from './probes.js';
import { podHostsFile, sandboxConfig, type DnsSettings } from './sandbox.js';
import { PodSources } from './sources.js';
import type { StartGate } from './start-gate.js';
import { computePodStatus, type ContainerHistory, type ObservedContainer } from './status.js';
import { rfc3339 } from '../../util/time.js';
import { podStartRecorder } from '../metrics.js';
import { PodVolumes, VolumeError, podDir, type PreparedVolume } from './volumes.js';

export interface WorkerDeps {
  cri: CriClient;
  api: PodApi;
  log: Logger;
  nodeName: string;
  nodeIPs: string[];
  dataDir: string;
  dns: DnsSettings;
  /** Pods' cgroups go under `<cgroupRoot>/pod<uid>` (cgroupfs driver). */
  cgroupRoot: string;
  node: NodeResources;
  crashBackoff: Backoff;
  pullBackoff: Backoff;
  /** The Services the node knows (for containers' service variables). */
  services?: () => readonly Obj[];
  /** Admits sandbox creations a few at a time, first come first served (see start-gate.ts). */
  startGate: StartGate;
  /** NetworkPolicy: resolves once the pod's rules (for these sandbox IPs) are in the kernel; containers wait for it. */
  networkReady?: (pod: Obj, ips: string[]) => Promise<void>;
  /** How often a pod is synced with nothing happening (configMap/secret volumes are refreshed then). */
  resyncMs: number;
  /** The worker is done: the pod is deleted and everything of it removed. */
  onDone(uid: string): void;
}

/** A container instance as read back from CRI. */
interface Instance extends ObservedContainer {
  sandboxId: string;
  hash: string;
  createdAt: bigint;
}

/** Where each kind of container is listed in the pod spec (events' fieldPath, status). */
const SPEC_LISTS: Record<ContainerKind, string> = { init: 'initContainers', regular: 'containers', ephemeral: 'ephemeralContainers' };

/** Retry delay after a failed step that has no back-off of its own (API or runtime hiccups). */
const RETRY_MS = 2_000;
/** After a preStop hook the container still gets this long for SIGTERM (the kubelet's minimum). */
const MIN_GRACE_SEC = 2;
const TERMINATION_MESSAGE_LIMIT = 4096;

/** Thrown by a step that decided the container must wait, with the reason its status shows. */
class WaitError extends Error {
  constructor(readonly reason: string, message: string, readonly retryMs = RETRY_MS) {
    super(message);
  }
}

export class PodWorker {
  readonly uid: string;
  private pod: Obj;
  private readonly d: WorkerDeps;
  private readonly log: Logger;
  private readonly dir: string;
  private readonly volumes: PodVolumes;
  private readonly waiting = new Map<string, { reason: string; message?: string }>();
  private readonly probes = new Map<string, ContainerProbes>();
  private readonly lastPullFailure = new Map<string, { at: number; message: string }>();
  private prepared?: Map<string, PreparedVolume>;
  private volumesSyncedAt = 0;
  private sandbox?: { id: string; config: PodSandboxConfig; ips: string[] };
  private lastSandboxFailure?: number;
  /** The sandbox whose IPs the network policy controller has admitted. */
  private networkAdmitted?: string;
  private lastStatus?: Obj;
  private lastPosted?: string;
  private readonly startTime: string;
  private gone = false;
  private stopped = false;
  private finished = false;
  private running = false;
  private again = false;
  private timer?: NodeJS.Timeout;
  private timerAt = Infinity;
  private idle: (() => void)[] = [];
  /** When this agent first saw the pod, and what to tell once it first runs (kubelet_pod_start_duration_seconds). */
  private readonly seenAt = performance.now();
  private recordStart?: (seconds: number) => void;

  constructor(pod: Obj, deps: WorkerDeps) {
    this.pod = pod;
    this.uid = pod.metadata.uid!;
    this.d = deps;
    this.log = deps.log.child({ pod: `${pod.metadata.namespace}/${pod.metadata.name}`, uid: this.uid });
    this.dir = podDir(deps.dataDir, this.uid);
    this.volumes = new PodVolumes({ podDir: this.dir, api: deps.api, node: deps.node });
    this.startTime = pod.status?.startTime ?? rfc3339(new Date());
    // A pod already running when the agent (re)starts is not a start the kubelet would time.
    if (pod.status?.phase !== 'Running') this.recordStart = podStartRecorder();
  }

  /** A newer copy of the pod from the API. */
  update(pod: Obj): void {
    if (pod.metadata.uid !== this.uid) throw new Error(`pod ${pod.metadata.name}: worker of uid ${this.uid} got uid ${pod.metadata.uid}`);
    const changed = desired(pod) !== desired(this.pod);
    this.pod = pod;
    // Our own status writes come back as updates; only a change of what the pod asks for needs a sync.
    // Or a status someone else rewrote (the node lifecycle controller marks the pods of an unreachable
    // node not ready): post ours again, as the kubelet's status manager reconciles its pods.
    const overwritten = this.lastStatus !== undefined && statusDigest(pod.status) !== statusDigest(this.lastStatus);
    if (overwritten) this.lastPosted = undefined;
    if (changed || overwritten) this.kick();
  }

  /** The pod is gone from the API (force-deleted, or an orphan): stop everything, no API calls. */
  remove(): void {
    this.gone = true;
    this.kick();
  }

  /** Agent shutdown: stop syncing and probing, leave the containers running for the next agent. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    for (const p of this.probes.values()) p.stop();
    this.probes.clear();
    if (this.running) await new Promise<void>((r) => this.idle.push(r));
  }

  /** Runs a sync now, or within `afterMs` (the earliest request wins). */
  kick(afterMs = 0): void {
    if (this.stopped || this.finished) return;
    if (afterMs > 0) {
      const at = Date.now() + afterMs;
      if (at >= this.timerAt) return;
      clearTimeout(this.timer);
      this.timerAt = at;
      this.timer = setTimeout(() => { this.timerAt = Infinity; this.kick(); }, afterMs);
      this.timer.unref?.();
      return;
    }
    this.again = true;
    if (!this.running) void this.loop();
  }

  private async loop(): Promise<void> {
    this.running = true;
    try {
      while (this.again && !this.stopped && !this.finished) {
        this.again = false;
        let next: number | undefined;
        try {
          next = await this.syncOnce();
        } catch (err) {
          this.log.warn({ err: (err as Error).message }, 'pod sync failed; retrying');
          next = RETRY_MS;
        }
        if (next !== undefined && !this.finished) this.kick(Math.max(1, next));
      }
    } finally {
      this.running = false;
      for (const r of this.idle.splice(0)) r();
    }
  }

  private event(type: EventType, reason: string, message: string, container?: { kind: ContainerKind; name: string }): void {
    const fieldPath = container ? `spec.${SPEC_LISTS[container.kind]}{${container.name}}` : undefined;
    this.d.api.recordEvent(this.pod, type, reason, message, fieldPath);
  }

  // ── observing ────────────────────────────────────────────────────────────

  private selector(): Record<string, string> {
    return { [POD_UID_LABEL]: this.uid, [NODE_LABEL]: this.d.nodeName };
  }

  private async sandboxes(): Promise<PodSandbox[]> {
    const list = await this.d.cri.listPodSandbox({ labelSelector: this.selector() });
    return list.sort((a, b) => (BigInt(b.createdAt) > BigInt(a.createdAt) ? 1 : -1));
  }

  private async instances(): Promise<Instance[]> {
    const list: Container[] = await this.d.cri.listContainers({ labelSelector: this.selector() });
    const out: Instance[] = [];
    for (const c of list) {
      let st;
      try {
        st = (await this.d.cri.containerStatus(c.id)).status;
      } catch (err) {
        if (isCriNotFound(err)) continue;   // removed since the list
        throw err;
      }
      if (!st) continue;
      const type = c.annotations[CONTAINER_TYPE_ANNOTATION];
      const kind: ContainerKind = type === 'init' || type === 'ephemeral' ? type : 'regular';
      const restartCount = Number(c.annotations[RESTART_COUNT_ANNOTATION] ?? c.metadata?.attempt ?? 0);
      const name = c.labels[CONTAINER_NAME_LABEL] ?? c.metadata?.name ?? '';
      out.push({
        name, kind, id: c.id, sandboxId: c.podSandboxId, state: st.state,
        startedAt: nanosToDate(st.startedAt), finishedAt: nanosToDate(st.finishedAt), exitCode: st.exitCode,
        reason: st.reason === 'Completed' || st.reason === 'Error' ? '' : st.reason,
        message: st.state === 'CONTAINER_EXITED' ? this.terminationMessage(name, restartCount) || st.message : '',
        image: st.image?.image && !st.image.image.startsWith('sha256:') ? st.image.image : '',
        imageRef: st.imageRef, restartCount, hash: c.annotations[CONTAINER_HASH_ANNOTATION] ?? '', createdAt: BigInt(st.createdAt),
      });
    }
    // Newest first: highest restart count, then latest created.
    return out.sort((a, b) => b.restartCount - a.restartCount || (b.createdAt > a.createdAt ? 1 : -1));
  }

  private history(all: Instance[], kind: ContainerKind, name: string): Instance[] {
    return all.filter((i) => i.kind === kind && i.name === name);
  }

  private terminationFile(name: string, restartCount: number): string {
    return join(this.dir, 'containers', name, String(restartCount));
  }

  private terminationMessage(name: string, restartCount: number): string {
    try {
      return readFileSync(this.terminationFile(name, restartCount), 'utf8').slice(0, TERMINATION_MESSAGE_LIMIT);
    } catch {
      return '';
    }
  }

  // ── syncing ──────────────────────────────────────────────────────────────

  /** One pass over the pod; returns when the next pass is due (ms), or undefined for "only on change". */
  private async syncOnce(): Promise<number | undefined> {
    const pod = this.pod;
    if (this.gone) {
      await this.terminate(pod, pod.metadata.deletionGracePeriodSeconds ?? MIN_GRACE_SEC, false);
      return undefined;
    }
    if (pod.metadata.deletionTimestamp) {
      await this.terminate(pod, pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30, true);
      return undefined;
    }
    const prevPhase = (this.lastStatus ?? pod.status)?.phase;
    if (prevPhase === 'Succeeded' || prevPhase === 'Failed') {
      await this.stopTerminal();
      return undefined;
    }

    const now = Date.now();
    const sources = new PodSources(this.d.api, pod.metadata.namespace!);
    let wakeAt = now + this.d.resyncMs;
    const wake = (ms: number) => { wakeAt = Math.min(wakeAt, Date.now() + ms); };

    // Volumes first: nothing can start without them. Later passes refresh their contents.
    if (!this.prepared || now - this.volumesSyncedAt >= this.d.resyncMs || (this.volumes.nextTokenRefresh() ?? Infinity) <= now) {
      try {
        this.prepared = await this.volumes.setUp(pod, sources, this.fields());
        this.volumesSyncedAt = now;
      } catch (err) {
        if (!(err instanceof VolumeError)) throw err;
        this.event('Warning', 'FailedMount', err.message);
        this.log.warn({ err: err.message }, 'volume setup failed');
        if (!this.prepared) {
          await this.postStatus(await this.instances());
          return RETRY_MS;
        }
      }
    }
    const tokenAt = this.volumes.nextTokenRefresh();
    if (tokenAt !== undefined) wake(Math.max(0, tokenAt - Date.now()));

    let sandboxReady = await this.ensureSandbox(wake);
    // A pod under a deny policy must never receive an unwanted packet: its rules go in before its containers.
    if (sandboxReady && this.d.networkReady && this.networkAdmitted !== this.sandbox!.id) sandboxReady = await this.admitNetwork(wake);
    let all = await this.instances();
    if (sandboxReady) {
      const initDone = await this.syncInitContainers(all, sources, wake);
      if (initDone) await this.syncContainers(all, sources, wake);
      // Ephemeral containers may start before initialization is over (to debug a stuck init container).
      await this.syncEphemeralContainers(all, sources, wake);
      all = await this.instances();
      this.dropOldInstances(all);
      this.syncProbes(all);
    }
    const status = await this.postStatus(all);
    if (status.phase === 'Running' && this.recordStart) {
      this.recordStart((performance.now() - this.seenAt) / 1000);
      this.recordStart = undefined;
    }
    if (status.phase === 'Succeeded' || status.phase === 'Failed') {
      await this.stopTerminal();
      return undefined;
    }
    return Math.max(0, wakeAt - Date.now());
  }

  private fields(): FieldContext {
    return { nodeName: this.d.nodeName, podIPs: this.sandbox?.ips ?? [], hostIPs: this.d.nodeIPs };
  }

  /** A ready sandbox for the pod, created (again) when there is none. False: not yet (retry is scheduled). */
  private async ensureSandbox(wake: (ms: number) => void): Promise<boolean> {
    const pod = this.pod;
    const boxes = await this.sandboxes();
    const ready = boxes.find((b) => b.state === 'SANDBOX_READY');
    const attempt = boxes.reduce((m, b) => Math.max(m, (b.metadata?.attempt ?? 0) + 1), 0);
    const config = sandboxConfig(pod, {
      ...this.d.dns, nodeName: this.d.nodeName, attempt: ready?.metadata?.attempt ?? attempt,
      logDirectory: podLogDir(this.d.dataDir, pod), cgroupParent: this.cgroupParent(),
    });
    if (ready) {
      if (this.sandbox?.id !== ready.id) this.sandbox = { id: ready.id, config, ips: await this.sandboxIPs(ready.id) };
      return true;
    }
    const key = `${this.uid}/sandbox`;
    const since = this.lastSandboxFailure ?? 0;
    const left = this.d.crashBackoff.remaining(key, since);
    if (left > 0) {
      wake(left);
      return false;
    }
    if (boxes.length) {
      this.event('Normal', 'SandboxChanged', 'Pod sandbox changed, it will be killed and re-created.');
      // Keep the newest old sandbox (its containers carry restart counts and previous logs); older go.
      // The kept one is stopped all the same: that releases its IP, which a dead sandbox (after a
      // reboot, say) still holds in IPAM. A failure costs an IP until the pod goes, not the pod's start.
      await this.d.cri.stopPodSandbox(boxes[0]!.id).catch((err) => this.log.warn({ err: (err as Error).message, sandbox: boxes[0]!.id }, 'old sandbox not stopped'));
      for (const b of boxes.slice(1)) await this.removeSandbox(b.id);
    }
    mkdirSync(config.logDirectory!, { recursive: true });
    try {
      const handler = await this.runtimeHandler();
      const id = await this.d.startGate.run(() => this.d.cri.runPodSandbox(config, handler));
      this.sandbox = { id, config, ips: await this.sandboxIPs(id) };
      this.d.crashBackoff.reset(key);
      this.log.debug({ sandbox: id }, 'sandbox running');
      return true;
    } catch (err) {
      this.lastSandboxFailure = Date.now();
      this.d.crashBackoff.next(key);
      this.event('Warning', 'FailedCreatePodSandBox', `Failed to create pod sandbox: ${(err as Error).message}`);
      wake(this.d.crashBackoff.delay(key));
      return false;
    }
  }

  private async admitNetwork(wake: (ms: number) => void): Promise<boolean> {
    const { id, ips } = this.sandbox!;
    try {
      await this.d.networkReady!(this.pod, ips);
      this.networkAdmitted = id;
      return true;
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'network policy rules not in place yet; containers wait');
      wake(RETRY_MS);
      return false;
    }
  }

  /** Writes `<pod dir>/etc-hosts` when missing or changed (in place: running containers bind-mount the inode). */
  private hostsFile(): string {
    const file = join(this.dir, 'etc-hosts');
    let hostHosts: string | undefined;
    if (this.pod.spec.hostNetwork) {
      try { hostHosts = readFileSync('/etc/hosts', 'utf8'); } catch { hostHosts = ''; }
    }
    const text = podHostsFile(this.pod, this.sandbox?.ips ?? [], this.d.dns.clusterDomain, hostHosts);
    let current: string | undefined;
    try { current = readFileSync(file, 'utf8'); } catch { current = undefined; }
    if (current !== text) {
      mkdirSync(this.dir, { recursive: true });
      writeFileSync(file, text, { mode: 0o644 });
    }
    return file;
  }

  /**
   * The CRI runtime handler of the pod's RuntimeClass ('' for the default runtime), as the kubelet
   * resolves it; a missing class fails the sandbox with the kubelet's message.
   */
  private async runtimeHandler(): Promise<string> {
    const name = this.pod.spec.runtimeClassName;
    if (!name) return '';
    const rc = await this.d.api.getRuntimeClass?.(name);
    if (!rc) throw new Error(`runtimeclass.node.k8s.io "${name}" not found`);
    return String(rc.handler ?? '');
  }

  private async sandboxIPs(id: string): Promise<string[]> {
    if (this.pod.spec.hostNetwork) return this.d.nodeIPs;
    const st = (await this.d.cri.podSandboxStatus(id)).status;
    const net = st?.network;
    return net?.ip ? [net.ip, ...net.additionalIps.map((a) => a.ip)] : [];
  }

  private cgroupParent(): string {
    return `${this.d.cgroupRoot.replace(/\/$/, '')}/pod${this.uid}`;
  }

  private async removeSandbox(id: string): Promise<void> {
    await this.d.cri.stopPodSandbox(id);
    await this.d.cri.removePodSandbox(id);
  }

  /** Runs init containers in order, each to completion. True once all have succeeded. */
  private async syncInitContainers(all: Instance[], sources: PodSources, wake: (ms: number) => void): Promise<boolean> {
    const specs: Obj[] = this.pod.spec.initContainers ?? [];
    if (specs.length === 0) return true;
    // Once an app container exists, init is over (also after their records were cleaned up).
    if (all.some((i) => i.kind === 'regular' && i.sandboxId === this.sandbox!.id)) return true;
    for (const c of specs) {
      const hist = this.history(all, 'init', c.name);
      const cur = hist[0]?.sandboxId === this.sandbox!.id ? hist[0] : undefined;
      if (cur?.state === 'CONTAINER_EXITED' && cur.exitCode === 0) continue;
      if (cur?.state === 'CONTAINER_RUNNING') return false;
      if (cur?.state === 'CONTAINER_EXITED') {
        // A failed init container fails the pod under Never; otherwise it is retried with back-off.
        if ((this.pod.spec.restartPolicy ?? 'Always') === 'Never') return false;
        await this.restartWithBackoff(c, 'init', cur, sources, wake);
        return false;
      }
      await this.start(c, 'init', hist[0] ? hist[0].restartCount + (hist[0].sandboxId === this.sandbox!.id ? 0 : 1) : 0, sources, wake, cur);
      return false;
    }
    return true;
  }

  private async syncContainers(all: Instance[], sources: PodSources, wake: (ms: number) => void): Promise<void> {
    const policy = this.pod.spec.restartPolicy ?? 'Always';
    await Promise.all((this.pod.spec.containers ?? []).map(async (c: Obj) => {
      const hist = this.history(all, 'regular', c.name);
      let cur = hist[0]?.sandboxId === this.sandbox!.id ? hist[0] : undefined;
      if (cur?.state === 'CONTAINER_RUNNING') {
        const probes = this.probes.get(cur.id);
        let why: string | undefined;
        if (cur.hash && cur.hash !== containerHash(c)) why = `Container ${c.name} definition changed, will be restarted`;
        else if (probes?.failed) why = `Container ${c.name} failed ${probes.failed} probe, will be restarted`;
        if (!why) return;
        await this.killContainer(c, 'regular', cur.id, why, this.pod.spec.terminationGracePeriodSeconds ?? 30);
        cur = { ...cur, state: 'CONTAINER_EXITED', finishedAt: new Date() };
        // A changed definition restarts at once; a failed probe counts as a crash.
        if (why.includes('definition changed')) {
          await this.start(c, 'regular', cur.restartCount + 1, sources, wake);
          return;
        }
      }
      if (cur?.state === 'CONTAINER_EXITED') {
        if (policy === 'Never' || (policy === 'OnFailure' && cur.exitCode === 0)) return;
        await this.restartWithBackoff(c, 'regular', cur, sources, wake);
        return;
      }
      const restartCount = hist[0] ? hist[0].restartCount + (cur ? 0 : 1) : 0;
      await this.start(c, 'regular', restartCount, sources, wake, cur);
    }));
  }

  /**
   * Ephemeral containers run once in the current sandbox: started when they have never run, never
   * restarted after they exit (nor in a new sandbox). With `targetContainerName` the container joins
   * that container's process namespace.
   */
  private async syncEphemeralContainers(all: Instance[], sources: PodSources, wake: (ms: number) => void): Promise<void> {
    await Promise.all((this.pod.spec.ephemeralContainers ?? []).map(async (c: Obj) => {
      const hist = this.history(all, 'ephemeral', c.name);
      const cur = hist[0]?.sandboxId === this.sandbox!.id ? hist[0] : undefined;
      // Only a created-but-never-started instance (the agent died between the two calls) is retried.
      if (hist[0] && !(cur && cur.state === 'CONTAINER_CREATED')) return;
      let targetId: string | undefined;
      if (c.targetContainerName) {
        const target = all.find((i) => i.kind !== 'ephemeral' && i.name === c.targetContainerName && i.sandboxId === this.sandbox!.id);
        if (!target) {
          const message = `unable to find target container ${c.targetContainerName}`;
          if (this.waiting.get(`ephemeral/${c.name}`)?.message !== message) this.event('Warning', 'Failed', `Error: ${message}`, { kind: 'ephemeral', name: c.name });
          this.waiting.set(`ephemeral/${c.name}`, { reason: 'CreateContainerConfigError', message });
          wake(RETRY_MS);
          return;
        }
        targetId = target.id;
      }
      await this.start(c, 'ephemeral', 0, sources, wake, cur, targetId);
    }));
  }

  /** The kubelet's CrashLoopBackOff: the first restart is immediate, later ones wait 10 s, 20 s... */
  private async restartWithBackoff(c: Obj, kind: ContainerKind, exited: Instance, sources: PodSources, wake: (ms: number) => void): Promise<void> {
    const key = `${this.uid}/${kind}/${c.name}`;
    const left = this.d.crashBackoff.remaining(key, exited.finishedAt?.getTime() ?? Date.now());
    if (left > 0) {
      const delay = goDuration(this.d.crashBackoff.delay(key));
      const message = `back-off ${delay} restarting failed container=${c.name} pod=${podDescription(this.pod)}`;
      if (this.waiting.get(`${kind}/${c.name}`)?.reason !== 'CrashLoopBackOff' || this.waiting.get(`${kind}/${c.name}`)?.message !== message) {
        this.event('Warning', 'BackOff', `Back-off restarting failed container ${c.name} in pod ${podDescription(this.pod)}`, { kind, name: c.name });
      }
      this.waiting.set(`${kind}/${c.name}`, { reason: 'CrashLoopBackOff', message });
      wake(left);
      return;
    }
    this.d.crashBackoff.next(key);
    await this.start(c, kind, exited.restartCount + 1, sources, wake);
  }

  /** Pulls, creates and starts one container instance; on failure records why it waits. */
  private async start(c: Obj, kind: ContainerKind, restartCount: number, sources: PodSources, wake: (ms: number) => void, stale?: Instance, targetId?: string): Promise<void> {
    const key = `${kind}/${c.name}`;
    const ref = { kind, name: c.name as string };
    if (!this.waiting.has(key) || this.waiting.get(key)!.reason === 'CrashLoopBackOff') this.waiting.set(key, { reason: 'ContainerCreating' });
    try {
      // A created-but-never-started instance (agent died between the two calls) is replaced.
      if (stale && stale.state !== 'CONTAINER_EXITED') await this.d.cri.removeContainer(stale.id).catch(() => undefined);
      const image = await this.ensureImage(c, kind, sources);
      const envs = await containerEnv(this.pod, c, { ...this.fields(), sources, node: this.d.node, services: this.d.services?.() });
      const vars = new Map(envs.map((e) => [e.key, e.value] as const));
      const mounts = containerMounts(c, this.prepared ?? new Map(), vars);
      const termFile = this.terminationFile(c.name, restartCount);
      mkdirSync(join(termFile, '..'), { recursive: true });
      writeFileSync(termFile, '');
      mounts.push({ containerPath: c.terminationMessagePath ?? '/dev/termination-log', hostPath: termFile });
      // The kubelet-managed /etc/hosts (hostname, subdomain FQDN, hostAliases), unless the container mounts its own.
      if (!mounts.some((m) => m.containerPath === '/etc/hosts')) mounts.push({ containerPath: '/etc/hosts', hostPath: this.hostsFile() });
      const config = containerConfig(this.pod, c, {
        kind, nodeName: this.d.nodeName, restartCount, image, envs, mounts,
        logPath: join(c.name, `${restartCount}.log`), qos: podQosClass(this.pod), nodeMemoryBytes: this.d.node.memoryBytes, targetId,
      });
      let id: string;
      try {
        id = await this.d.cri.createContainer(this.sandbox!.id, config, this.sandbox!.config);
      } catch (err) {
        throw new WaitError('CreateContainerError', (err as Error).message);
      }
      this.event('Normal', 'Created', `Created container ${c.name}`, ref);
      try {
        await this.d.cri.startContainer(id);
      } catch (err) {
        this.event('Warning', 'Failed', `Error: ${(err as Error).message}`, ref);
        this.waiting.delete(key);
        return;   // the instance shows as exited (RunContainerError); the restart policy takes it from here
      }
      this.event('Normal', 'Started', `Started container ${c.name}`, ref);
      this.waiting.delete(key);
      if (c.lifecycle?.postStart) {
        const r = await runHandler(c.lifecycle.postStart, this.probeTarget(c, id), this.pod.spec.terminationGracePeriodSeconds ?? 30);
        if (!r.ok) {
          this.event('Warning', 'FailedPostStartHook', r.output, ref);
          await this.killContainer(c, kind, id, `FailedPostStartHook`, this.pod.spec.terminationGracePeriodSeconds ?? 30);
        }
      }
    } catch (err) {
      if (err instanceof WaitError) {
        this.waiting.set(key, { reason: err.reason, message: err.message });
        if (err.reason !== 'ImagePullBackOff' && err.reason !== 'ErrImagePull' && err.reason !== 'ErrImageNeverPull') {
          this.event('Warning', 'Failed', `Error: ${err.message}`, ref);
        }
        wake(err.retryMs);
        return;
      }
      if (err instanceof ContainerConfigError) {
        this.waiting.set(key, { reason: 'CreateContainerConfigError', message: err.message });
        this.event('Warning', 'Failed', `Error: ${err.message}`, ref);
        wake(RETRY_MS);
        return;
      }
      throw err;
    }
  }

  /** The image per imagePullPolicy, with pull credentials and ImagePullBackOff. */
  private async ensureImage(c: Obj, kind: ContainerKind, sources: PodSources): Promise<string> {
    const image: string = c.image;
    const ref = { kind, name: c.name as string };
    const policy: string = c.imagePullPolicy ?? defaultPullPolicy(image);
    if (policy !== 'Always' && await this.d.cri.imageStatus(image)) {
      this.event('Normal', 'Pulled', `Container image "${image}" already present on machine`, ref);
      return image;
    }
    if (policy === 'Never') {
      const msg = `Container image "${image}" is not present with pull policy of Never`;
      this.event('Warning', 'ErrImageNeverPull', msg, ref);
      throw new WaitError('ErrImageNeverPull', msg);
    }
    const key = `${this.uid}/pull/${image}`;
    const failed = this.lastPullFailure.get(key);
    const left = failed ? this.d.pullBackoff.remaining(key, failed.at) : 0;
    if (left > 0) {
      this.event('Normal', 'BackOff', `Back-off pulling image "${image}"`, ref);
      throw new WaitError('ImagePullBackOff', `Back-off pulling image "${image}": ErrImagePull: ${failed!.message}`, left);
    }
    this.event('Normal', 'Pulling', `Pulling image "${image}"`, ref);
    const t0 = Date.now();
    const { auths, missing } = await pullCredentials(this.pod, image, sources);
    // registries.yaml's credentials apply only when no imagePullSecret names the registry.
    if (!auths.length) auths.push(...registryCredentials(this.d.dataDir, image));
    for (const name of missing) {
      this.event('Warning', 'FailedToRetrieveImagePullSecret', `Unable to retrieve some image pull secrets (${name}); attempting to pull the image may not succeed.`);
    }
    let lastErr: Error | undefined;
    // Each matching credential in turn, then none (the registry may allow anonymous pulls).
    for (const auth of [...auths, undefined]) {
      try {
        await pullImage(this.d.cri, this.d.dataDir, image, auth, this.sandbox?.config);
        const ms = Date.now() - t0;
        this.event('Normal', 'Pulled', `Successfully pulled image "${image}" in ${goDuration(ms)} (${goDuration(ms)} including waiting)`, ref);
        this.lastPullFailure.delete(key);
        this.d.pullBackoff.reset(key);
        return image;
      } catch (err) {
        lastErr = err as Error;
        if (auths.length && auth === undefined) break;
      }
    }
    const message = lastErr?.message ?? 'pull failed';
    this.d.pullBackoff.next(key);
    this.lastPullFailure.set(key, { at: Date.now(), message });
    this.event('Warning', 'Failed', `Failed to pull image "${image}": ${message}`, ref);
    this.event('Warning', 'Failed', 'Error: ErrImagePull', ref);
    // Look again well inside the back-off window, so the status moves on to ImagePullBackOff.
    throw new WaitError('ErrImagePull', message, Math.min(RETRY_MS, this.d.pullBackoff.delay(key) / 2));
  }

  private probeTarget(c: Obj, id: string) {
    const host = this.pod.spec.hostNetwork ? '127.0.0.1' : this.sandbox?.ips[0] ?? '127.0.0.1';
    return { cri: this.d.cri, containerId: id, container: c, host };
  }

  /** Probes for each running app container of the current sandbox; dropped for everything else. */
  private syncProbes(all: Instance[]): void {
    const live = new Set<string>();
    for (const c of this.pod.spec.containers ?? []) {
      const cur = this.history(all, 'regular', c.name)[0];
      if (!cur || cur.state !== 'CONTAINER_RUNNING' || cur.sandboxId !== this.sandbox?.id) continue;
      live.add(cur.id);
      if (this.probes.has(cur.id) || !(c.livenessProbe || c.readinessProbe || c.startupProbe)) continue;
      const ref = { kind: 'regular' as const, name: c.name as string };
      this.probes.set(cur.id, new ContainerProbes(this.probeTarget(c, cur.id), cur.startedAt?.getTime() ?? Date.now(), {
        onResult: () => this.kick(),
        onFailure: (kind: ProbeKind, output: string) => {
          const Kind = kind[0]!.toUpperCase() + kind.slice(1);
          this.event('Warning', 'Unhealthy', `${Kind} probe failed: ${output}`, ref);
        },
      }));
    }
    for (const [id, p] of this.probes) {
      if (live.has(id)) continue;
      p.stop();
      this.probes.delete(id);
    }
  }

  /** Removes instances older than the last exited one of each container (kept for lastState and --previous logs). */
  private dropOldInstances(all: Instance[]): void {
    const seen = new Map<string, number>();
    for (const i of all) {
      const key = `${i.kind}/${i.name}`;
      const n = (seen.get(key) ?? 0) + 1;
      seen.set(key, n);
      if (n > 2 && i.state !== 'CONTAINER_RUNNING') {
        void this.d.cri.removeContainer(i.id).catch((err) => this.log.debug({ err: (err as Error).message }, 'old container not removed'));
      }
    }
  }

  /** preStop, then StopContainer with what is left of the grace period (SIGTERM, later SIGKILL). */
  private async killContainer(c: Obj | undefined, kind: ContainerKind, id: string, message: string, graceSec: number): Promise<void> {
    const name = c?.name ?? id;
    this.event('Normal', 'Killing', message, c ? { kind, name } : undefined);
    this.probes.get(id)?.stop();
    this.probes.delete(id);
    const t0 = Date.now();
    let grace = graceSec;
    if (c?.lifecycle?.preStop && graceSec > 0) {
      const r = await Promise.race([
        runHandler(c.lifecycle.preStop, this.probeTarget(c, id), graceSec),
        new Promise<{ ok: boolean; output: string }>((res) => setTimeout(() => res({ ok: false, output: `timed out after ${graceSec}s` }), graceSec * 1000).unref()),
      ]);
      if (!r.ok) this.event('Warning', 'FailedPreStopHook', `PreStopHook failed: ${r.output}`, { kind, name });
      grace = Math.max(MIN_GRACE_SEC, graceSec - Math.floor((Date.now() - t0) / 1000));
    }
    try {
      await this.d.cri.stopContainer(id, grace);
    } catch (err) {
      // Gone already, or created but never started: nothing runs that could be stopped.
      if (!isCriNotFound(err)) this.log.debug({ err: (err as Error).message, container: name }, 'stop failed');
    }
  }

  /** A finished pod: nothing may run any more; its sandbox is stopped (IP released), containers kept for logs. */
  private async stopTerminal(): Promise<void> {
    for (const p of this.probes.values()) p.stop();
    this.probes.clear();
    for (const b of await this.sandboxes()) {
      if (b.state === 'SANDBOX_READY') await this.d.cri.stopPodSandbox(b.id);
    }
  }

  private async terminate(pod: Obj, graceSec: number, viaApi: boolean): Promise<void> {
    const all = await this.instances();
    const specOf = (i: Instance): Obj | undefined => (pod.spec[SPEC_LISTS[i.kind]] as Obj[] | undefined)?.find((c: Obj) => c.name === i.name);
    await Promise.all(all.filter((i) => i.state === 'CONTAINER_RUNNING' || i.state === 'CONTAINER_CREATED')
      .map((i) => this.killContainer(specOf(i), i.kind, i.id, `Stopping container ${i.name}`, graceSec)));
    for (const p of this.probes.values()) p.stop();
    this.probes.clear();
    // The last status the pod gets (every container terminated, the phase terminal), read before the
    // sandbox takes the containers with it, posted after: a terminal pod may be deleted at once.
    const final = viaApi ? this.computeStatus(await this.instances(), true) : undefined;
    for (const b of await this.sandboxes()) await this.removeSandbox(b.id);
    this.volumes.tearDown();
    rmSync(podLogDir(this.d.dataDir, pod), { recursive: true, force: true });
    removeCgroup(this.cgroupParent());
    this.d.crashBackoff.resetPrefix(`${this.uid}/`);
    this.d.pullBackoff.resetPrefix(`${this.uid}/`);
    if (final) {
      await this.publish(final).catch((err) => this.log.debug({ err: (err as Error).message }, 'final status not posted'));
      await this.d.api.deletePod(pod);
    }
    this.finished = true;
    clearTimeout(this.timer);
    this.log.info(viaApi ? 'pod terminated and deleted' : 'pod removed');
    this.d.onDone(this.uid);
  }

  // ── status ───────────────────────────────────────────────────────────────

  private async postStatus(all: Instance[]): Promise<Obj> {
    const status = this.computeStatus(all, false);
    await this.publish(status);
    return status;
  }

  /** Posts the status unless it is what was posted last. */
  private async publish(status: Obj): Promise<void> {
    const json = JSON.stringify(status);
    if (json !== this.lastPosted) {
      await this.d.api.updatePodStatus(this.pod, status);
      this.lastPosted = json;
    }
    this.lastStatus = status;
  }

  private computeStatus(all: Instance[], final: boolean): Obj {
    const pod = this.pod;
    const toHistory = (kind: ContainerKind): Map<string, ContainerHistory> => {
      const m = new Map<string, ContainerHistory>();
      for (const c of (pod.spec[SPEC_LISTS[kind]] as Obj[] | undefined) ?? []) {
        const h = this.history(all, kind, c.name);
        m.set(c.name, { latest: h[0], previous: h[1] });
      }
      return m;
    };
    const sandboxReady = !final && this.sandbox !== undefined;
    const status = computePodStatus({
      pod: { ...pod, status: this.lastStatus ?? pod.status },
      now: new Date(),
      hostIPs: this.d.nodeIPs,
      podIPs: this.sandbox?.ips ?? (pod.status?.podIPs ?? []).map((p: Obj) => p.ip),
      sandboxReady,
      init: toHistory('init'),
      regular: toHistory('regular'),
      ephemeral: toHistory('ephemeral'),
      waiting: final ? new Map() : this.waiting,
      probes: (id) => this.probeState(all, id),
      startTime: this.startTime,
      qosClass: podQosClass(pod),
    });
    if (final && status.phase !== 'Succeeded' && status.phase !== 'Failed') {
      const exits = (status.containerStatuses as Obj[]).map((s) => s.state.terminated?.exitCode ?? s.lastState?.terminated?.exitCode ?? 137);
      status.phase = exits.every((c) => c === 0) ? 'Succeeded' : 'Failed';
    }
    return status;
  }

  /** Readiness of a running container; one whose prober has not started yet counts as not probed yet. */
  private probeState(all: Instance[], id: string): { ready: boolean; started: boolean } | undefined {
    const p = this.probes.get(id);
    if (p) return { ready: p.ready, started: p.started };
    const i = all.find((x) => x.id === id);
    const c = i && (this.pod.spec.containers ?? []).find((x: Obj) => x.name === i.name);
    if (!c) return undefined;
    return { ready: !c.readinessProbe && !c.startupProbe, started: !c.startupProbe };
  }
}

/** The parts of a status only the agent writes and others may overwrite: phase, conditions, containers. */
function statusDigest(status: Obj | undefined): string {
  const conditions = ((status?.conditions ?? []) as Obj[]).map((c) => `${c.type}=${c.status}`).sort();
  const containers = ((status?.containerStatuses ?? []) as Obj[]).map((c) => `${c.name}:${c.containerID}:${c.restartCount}:${c.ready}`).sort();
  return JSON.stringify([status?.phase, conditions, containers]);
}

/** What a pod asks of its node: everything but its status and bookkeeping. */
function desired(pod: Obj): string {
  const { resourceVersion: _rv, managedFields: _mf, ...meta } = pod.metadata ?? {};
  return JSON.stringify([meta, pod.spec]);
}

/** `<dataDir>/agent/logs/pods/<ns>_<name>_<uid>`: the kubelet's /var/log/pods layout, per agent. */
export function podLogDir(dataDir: string, pod: Obj): string {
  return join(dataDir, 'agent', 'logs', 'pods', `${pod.metadata.namespace}_${pod.metadata.name}_${pod.metadata.uid}`);
}

/** The pod's now empty cgroup in every v1 hierarchy (runc removes the containers' own, not the parent). */
function removeCgroup(parent: string): void {
  const root = '/sys/fs/cgroup';
  let hierarchies: string[] = [];
  try {
    hierarchies = readdirSync(root);
  } catch {
    return;
  }
  for (const h of hierarchies) {
    const dir = join(root, h, parent);
    if (!existsSync(dir)) continue;
    try { rmdirSync(dir); } catch { /* still busy or gone: harmless, and rare */ }
  }
}
