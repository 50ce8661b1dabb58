// Many hollow nodes in one process. They share one work queue and a bounded pool of pod workers, so
// 10,000 pods starting at once become a steady stream of status writes instead of 10,000 concurrent
// requests; each node still writes with its own client (its own identity).
import type { ApiClient } from '../client/types.js';
import { WorkQueue } from '../client/workqueue.js';
import { ExponentialFailureRateLimiter } from '../client/rate-limit.js';
import { runController, type RunningController } from '../client/controller.js';
import type { Reachability } from '../client/reachability.js';
import { HollowKubelet, type HollowKubeletOptions } from './kubelet.js';

export type FleetTimings = Pick<HollowKubeletOptions, 'podStartDelayMs' | 'heartbeatIntervalMs' | 'nodeStatusIntervalMs' | 'terminationDelayMs'>;

export interface FleetNode {
  name: string;
  ordinal: number;
  client: ApiClient;
  labels: Record<string, string>;
  taints: HollowKubeletOptions['taints'];
}

/** Status writes in flight across the whole fleet. */
const POD_WORKERS = 32;
const SEP = '\u0000';

export class HollowFleet {
  // Per-key backoff only: the controllers' shared 10/s retry bucket would let a burst of conflicts
  // (10,000 pods starting at once) stall every node's pods behind it.
  private readonly queue = new WorkQueue<string>(new ExponentialFailureRateLimiter<string>(5, 30_000));
  private readonly nodes = new Map<string, HollowKubelet>();
  private readonly clients: ApiClient[] = [];
  private readonly workers: RunningController;

  /** `reachability`: the one its nodes' clients share, closed with the fleet. */
  constructor(private readonly timings: FleetTimings, private readonly reachability?: Reachability) {
    this.workers = runController({
      name: 'hollow-pods',
      workers: POD_WORKERS,
      queue: this.queue,
      reconcile: async (key) => {
        const sep = key.indexOf(SEP);
        return this.nodes.get(key.slice(0, sep))?.reconcilePod(key.slice(sep + 1));
      },
    });
  }

  /** Adds a node and starts it; resolves once its Node and Lease are written. */
  async startNode(n: FleetNode): Promise<HollowKubelet> {
    if (this.nodes.has(n.name)) throw new Error(`hollow node ${n.name} already runs`);
    const kubelet = new HollowKubelet({
      ...this.timings, ...n,
      enqueue: (podKey, afterMs) => {
        const key = n.name + SEP + podKey;
        if (afterMs) this.queue.addAfter(key, afterMs); else this.queue.add(key);
      },
    });
    this.nodes.set(n.name, kubelet);
    this.clients.push(n.client);
    await kubelet.start();
    return kubelet;
  }

  get size(): number {
    return this.nodes.size;
  }

  node(name: string): HollowKubelet | undefined {
    return this.nodes.get(name);
  }

  setFrozen(frozen: boolean): void {
    for (const n of this.nodes.values()) n.setFrozen(frozen);
  }

  /** Whether any node is frozen (after a toggle, all or none are). */
  isFrozen(): boolean {
    for (const n of this.nodes.values()) if (n.isFrozen()) return true;
    return false;
  }

  /** Stops heartbeats and pod work and closes every client; the Nodes stay, as with a stopped kubelet. */
  async stop(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.stop()));
    await this.workers.stop();
    for (const c of this.clients) c.close();
    this.reachability?.close();
  }
}
