// The agent's pods: one PodWorker per pod uid, fed by the agent's watch of the pods bound to this node.
// Besides routing, it does what no single worker can: a periodic relist of the runtime (the kubelet's
// PLEG) that wakes the worker of any pod whose containers changed state, adoption of what a previous
// agent left running, and removal of sandboxes whose pods no longer exist.
import { cpus, totalmem } from 'node:os';
import { readdirSync, statfsSync } from 'node:fs';
import { join } from 'node:path';
import type { CriClient } from '../runtime/cri-client.js';
import { logger, type Logger } from '../../util/log.js';
import { Backoff, DEFAULT_BACKOFF, type BackoffOptions } from './backoff.js';
import type { NodeResources } from './fields.js';
import { NODE_LABEL, POD_NAME_LABEL, POD_NAMESPACE_LABEL, POD_UID_LABEL } from './labels.js';
import type { Obj, PodApi } from './pod-api.js';
import { PodWorker } from './pod-worker.js';
import { PodVolumes } from './volumes.js';
import { StartGate } from './start-gate.js';

export interface PodManagerOptions {
  cri: CriClient;
  dataDir: string;
  nodeName: string;
  /** The node's address(es): status.hostIP(s), and where host-network pods are probed. */
  nodeIp: string | string[];
  /** The cluster DNS service IP ('' when the cluster runs none: pods then use the host's resolvers). */
  clusterDns: string;
  clusterDomain: string;
  api: PodApi;
  log?: Logger;
  /** The host's resolver config for dnsPolicy Default. */
  resolvConf?: string;
  /** cgroupfs parent of all pods (default `/kubepods`); each pod gets `<root>/pod<uid>`. */
  cgroupRoot?: string;
  /** CrashLoopBackOff timing (default 10 s doubling to 5 min). */
  crashBackoff?: BackoffOptions;
  /** ImagePullBackOff timing (default 10 s doubling to 5 min). */
  imagePullBackoff?: BackoffOptions;
  /** Idle resync of each pod, which also refreshes configMap/secret volumes (default 10 s). */
  resyncMs?: number;
  /** How often the runtime is relisted to notice exited containers (default 1 s, as the kubelet's PLEG). */
  relistMs?: number;
  /** The Services the node knows, for containers' service variables (none when not given). */
  services?: () => readonly Obj[];
  /** NetworkPolicy admission of a new sandbox's IPs before its containers start (see pod-worker.ts). */
  networkReady?: (pod: Obj, ips: string[]) => Promise<void>;
  /** How many sandboxes may be created at once (default: the CPU count + 1). */
  sandboxStarts?: number;
  /** Node capacity for unset resource limits in the downward API (default: this host's). */
  nodeResources?: Partial<NodeResources>;
}

/** Uids of pods already terminated and deleted are remembered this long, so late watch events cannot revive them. */
const TERMINATED_MEMORY_MS = 10 * 60_000;

function hostResources(dataDir: string): NodeResources {
  let disk = 0;
  try {
    const fs = statfsSync(dataDir);
    disk = fs.blocks * fs.bsize;
  } catch {
    // the data dir may not exist yet; ephemeral-storage limits then read as 0
  }
  return { cpuCores: cpus().length, memoryBytes: totalmem(), ephemeralStorageBytes: disk };
}

export class PodManager {
  private readonly o: PodManagerOptions;
  private readonly log: Logger;
  private readonly workers = new Map<string, PodWorker>();
  private readonly removals = new Map<string, { promise: Promise<void>; resolve: () => void }>();
  private readonly terminated = new Map<string, number>();
  /** Pods found in the runtime by adopt(): uid → name/namespace, until a sync or reconcile claims them. */
  private readonly adopted = new Map<string, { name: string; namespace: string }>();
  private readonly crashBackoff: Backoff;
  private readonly pullBackoff: Backoff;
  private readonly node: NodeResources;
  private readonly startGate: StartGate;
  private relistTimer?: NodeJS.Timeout;
  private lastRelist = new Map<string, string>();
  private stopped = false;

  constructor(o: PodManagerOptions) {
    this.o = o;
    this.log = o.log ?? logger('pods');
    this.crashBackoff = new Backoff(o.crashBackoff ?? DEFAULT_BACKOFF);
    this.pullBackoff = new Backoff(o.imagePullBackoff ?? DEFAULT_BACKOFF);
    this.node = { ...hostResources(o.dataDir), ...o.nodeResources };
    // Creating a sandbox is CPU-bound (shim, runc, CNI plugins): a few more than the cores keep them busy.
    this.startGate = new StartGate(o.sandboxStarts ?? cpus().length + 1);
    this.scheduleRelist();
  }

  /** The pod as the API has it now (added or changed). Returns at once; the pod's worker does the work. */
  sync(pod: Obj): void {
    if (this.stopped) return;
    const uid: string = pod.metadata.uid;
    if (this.terminated.has(uid)) return;
    this.adopted.delete(uid);
    const w = this.workers.get(uid);
    if (w) w.update(pod);
    else this.startWorker(pod).kick();
  }

  /** The pod is gone from the API: kill and remove everything of it. Resolves when that is done. */
  remove(uid: string): Promise<void> {
    const w = this.workers.get(uid);
    const adopted = this.adopted.get(uid);
    if (!w && !adopted) return Promise.resolve();
    const worker = w ?? this.startWorker({
      metadata: { uid, name: adopted!.name, namespace: adopted!.namespace },
      spec: { containers: [] },
    });
    this.adopted.delete(uid);
    const done = this.removals.get(uid)?.promise ?? this.trackRemoval(uid);
    worker.remove();
    return done;
  }

  /**
   * After an agent restart: finds the sandboxes a previous agent of this node left (by their labels),
   * so that `reconcile()` can remove those whose pods are gone. The others are taken over by the
   * first `sync()` of their pod, containers untouched (same IDs, restart counts from their annotations).
   */
  async adopt(): Promise<void> {
    const boxes = await this.o.cri.listPodSandbox({ labelSelector: { [NODE_LABEL]: this.o.nodeName } });
    for (const b of boxes) {
      const uid = b.labels[POD_UID_LABEL];
      if (!uid || this.workers.has(uid)) continue;
      this.adopted.set(uid, { name: b.labels[POD_NAME_LABEL] ?? '', namespace: b.labels[POD_NAMESPACE_LABEL] ?? '' });
    }
    this.log.info({ pods: this.adopted.size }, 'found pods of a previous agent');
  }

  /** Every pod the API binds to this node: anything else this agent runs or holds is removed. */
  async reconcile(pods: Obj[]): Promise<void> {
    const want = new Set(pods.map((p) => String(p.metadata.uid)));
    for (const p of pods) this.sync(p);
    const gone = new Set<string>([...this.workers.keys(), ...this.adopted.keys()].filter((uid) => !want.has(uid)));
    // Pod directories with neither a pod nor a worker (their sandbox already went).
    for (const uid of this.podDirs()) {
      if (!want.has(uid) && !this.workers.has(uid) && !gone.has(uid)) new PodVolumes({ podDir: join(this.o.dataDir, 'agent', 'pods', uid), api: this.o.api, node: this.node }).tearDown();
    }
    for (const uid of this.terminated.keys()) if (!want.has(uid)) this.terminated.delete(uid);
    await Promise.all([...gone].map((uid) => this.remove(uid)));
  }

  /** Stops the workers, their probes and the relist; containers keep running for the next agent. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.relistTimer);
    await Promise.all([...this.workers.values()].map((w) => w.stop()));
  }

  /** Uids of the pods this manager has a worker for. */
  pods(): string[] {
    return [...this.workers.keys()];
  }

  private startWorker(pod: Obj): PodWorker {
    const uid: string = pod.metadata.uid;
    const nodeIPs = Array.isArray(this.o.nodeIp) ? this.o.nodeIp : [this.o.nodeIp];
    const w = new PodWorker(pod, {
      cri: this.o.cri, api: this.o.api, log: this.log, nodeName: this.o.nodeName, nodeIPs, dataDir: this.o.dataDir,
      dns: { clusterDns: this.o.clusterDns, clusterDomain: this.o.clusterDomain, resolvConf: this.o.resolvConf },
      cgroupRoot: this.o.cgroupRoot ?? '/kubepods', node: this.node,
      crashBackoff: this.crashBackoff, pullBackoff: this.pullBackoff, startGate: this.startGate, services: this.o.services,
      networkReady: this.o.networkReady,
      resyncMs: this.o.resyncMs ?? 10_000,
      onDone: (id) => this.workerDone(id),
    });
    this.workers.set(uid, w);
    return w;
  }

  private trackRemoval(uid: string): Promise<void> {
    let resolve!: () => void;
    const promise = new Promise<void>((r) => { resolve = r; });
    this.removals.set(uid, { promise, resolve });
    return promise;
  }

  private workerDone(uid: string): void {
    this.workers.delete(uid);
    this.terminated.set(uid, Date.now());
    for (const [id, at] of this.terminated) if (Date.now() - at > TERMINATED_MEMORY_MS) this.terminated.delete(id);
    this.removals.get(uid)?.resolve();
    this.removals.delete(uid);
  }

  private podDirs(): string[] {
    try {
      return readdirSync(join(this.o.dataDir, 'agent', 'pods'));
    } catch {
      return [];
    }
  }

  private scheduleRelist(): void {
    if (this.stopped) return;
    this.relistTimer = setTimeout(() => void this.relist().finally(() => this.scheduleRelist()), this.o.relistMs ?? 1_000);
    this.relistTimer.unref?.();
  }

  /** Wakes the worker of every pod whose containers or sandboxes changed state since the last relist. */
  private async relist(): Promise<void> {
    if (this.workers.size === 0) return;
    const sel = { labelSelector: { [NODE_LABEL]: this.o.nodeName } };
    let containers, boxes;
    try {
      [containers, boxes] = await Promise.all([this.o.cri.listContainers(sel), this.o.cri.listPodSandbox(sel)]);
    } catch (err) {
      this.log.debug({ err: (err as Error).message }, 'relist failed');
      return;
    }
    const sig = new Map<string, string[]>();
    const add = (uid: string | undefined, s: string) => { if (uid) sig.set(uid, [...(sig.get(uid) ?? []), s]); };
    for (const c of containers) add(c.labels[POD_UID_LABEL], `${c.id}:${c.state}`);
    for (const b of boxes) add(b.labels[POD_UID_LABEL], `${b.id}:${b.state}`);
    const next = new Map<string, string>();
    for (const [uid, parts] of sig) next.set(uid, parts.sort().join(','));
    for (const [uid, w] of this.workers) {
      if ((next.get(uid) ?? '') !== (this.lastRelist.get(uid) ?? '')) w.kick();
    }
    this.lastRelist = next;
  }
}
