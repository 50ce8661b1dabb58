// The work queue between informers and reconcilers, with client-go's guarantees:
//  - a key is in the queue at most once, however often it is added (events coalesce);
//  - a key is never handed to two workers at once: added while being processed, it is queued
//    again when that processing is done(), so the latest state is always reconciled after;
//  - failures back off per key (addRateLimited), success resets it (forget);
//  - addAfter delays a key (an earlier request for the same key wins);
//  - after shutDown no key is handed out and no timer is left running.
import { defaultControllerRateLimiter, type RateLimiter } from './rate-limit.js';
import type { QueueMetrics } from './metrics-scope.js';

export class WorkQueue<K = string> {
  private queue: K[] = [];
  private head = 0;
  private dirty = new Set<K>();
  private processing = new Set<K>();
  private waiters: ((key: K | undefined) => void)[] = [];
  private delayed = new Map<K, { at: number; timer: NodeJS.Timeout }>();
  private shutdown = false;
  /** Metrics hooks (set by instrument); without them the queue does no timing work. */
  private metrics?: QueueMetrics;
  private addedAt?: Map<K, number>;
  private startedAt?: Map<K, number>;

  constructor(private readonly limiter: RateLimiter<K> = defaultControllerRateLimiter<K>()) {}

  /** Reports adds, depth, queue and work durations and retries (client-go's workqueue metrics). */
  instrument(metrics: QueueMetrics): void {
    this.metrics = metrics;
    this.addedAt = new Map();
    this.startedAt = new Map();
  }

  add(key: K): void {
    if (this.shutdown || this.dirty.has(key)) return;
    this.dirty.add(key);
    if (this.metrics) { this.metrics.added(); if (!this.addedAt!.has(key)) this.addedAt!.set(key, performance.now()); }
    if (this.processing.has(key)) return;   // done() queues it again
    const waiter = this.waiters.shift();
    if (waiter) this.hand(key, waiter);
    else this.queue.push(key);
    this.metrics?.depth(this.len());
  }

  /** Adds `key` once `ms` have passed. */
  addAfter(key: K, ms: number): void {
    if (this.shutdown) return;
    if (ms <= 0) { this.add(key); return; }
    const at = Date.now() + ms;
    const pending = this.delayed.get(key);
    if (pending) {
      if (pending.at <= at) return;
      clearTimeout(pending.timer);
    }
    const timer = setTimeout(() => { this.delayed.delete(key); this.add(key); }, ms);
    this.delayed.set(key, { at, timer });
  }

  /** Adds `key` after its backoff: call it when processing `key` failed. */
  addRateLimited(key: K): void {
    this.metrics?.retried();
    this.addAfter(key, this.limiter.when(key));
  }

  /** Processing `key` succeeded: its backoff starts over. */
  forget(key: K): void {
    this.limiter.forget(key);
  }

  numRequeues(key: K): number {
    return this.limiter.numRequeues(key);
  }

  /** The next key to process, or undefined once the queue is shut down. Call done(key) after. */
  get(): Promise<K | undefined> {
    if (this.shutdown) return Promise.resolve(undefined);
    if (this.head < this.queue.length) {
      const key = this.queue[this.head++];
      if (this.head > 1024 && this.head * 2 > this.queue.length) { this.queue = this.queue.slice(this.head); this.head = 0; }
      return Promise.resolve(this.take(key));
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  done(key: K): void {
    this.processing.delete(key);
    const started = this.startedAt?.get(key);
    if (started !== undefined) { this.startedAt!.delete(key); this.metrics!.worked((performance.now() - started) / 1000); }
    if (this.shutdown || !this.dirty.has(key)) return;
    const waiter = this.waiters.shift();
    if (waiter) this.hand(key, waiter);
    else this.queue.push(key);
    this.metrics?.depth(this.len());
  }

  /** Keys waiting to be handed out (not those being processed or delayed). */
  len(): number {
    return this.queue.length - this.head;
  }

  isShutDown(): boolean {
    return this.shutdown;
  }

  /** Stops handing out keys (waiting get() calls resolve undefined) and cancels delayed adds. */
  shutDown(): void {
    if (this.shutdown) return;
    this.shutdown = true;
    for (const d of this.delayed.values()) clearTimeout(d.timer);
    this.delayed.clear();
    this.queue = [];
    this.head = 0;
    this.dirty.clear();
    this.addedAt?.clear();
    this.startedAt?.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  private take(key: K): K {
    this.dirty.delete(key);
    this.processing.add(key);
    if (this.metrics) {
      const now = performance.now();
      const added = this.addedAt!.get(key);
      this.addedAt!.delete(key);
      if (added !== undefined) this.metrics.queued((now - added) / 1000);
      this.startedAt!.set(key, now);
      this.metrics.depth(this.len());
    }
    return key;
  }

  private hand(key: K, waiter: (key: K | undefined) => void): void {
    waiter(this.take(key));
  }
}
