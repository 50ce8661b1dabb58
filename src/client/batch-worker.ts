// The worker of loops that write the kernel in transactions (the service proxy, network policy):
// instead of one reconcile per key, each round takes every key waiting in the queue and applies them
// as one batch, so a burst of a thousand changes costs one transaction, not a thousand. Keys still
// come from informers through the same work queue, with the same retry rules as runController.
import type { WorkQueue } from './workqueue.js';

/**
 * Runs until the queue shuts down. `apply` gets every key queued at that moment (each at most once)
 * and returns the keys that failed: those come back with backoff, the others are forgotten. A throw
 * from `apply` counts as every key failed.
 */
export async function runBatchWorker<K>(queue: WorkQueue<K>, apply: (keys: K[]) => Promise<Iterable<K>>,
  onError: (err: unknown, keys: K[]) => void): Promise<void> {
  for (;;) {
    const first = await queue.get();
    if (first === undefined) return;
    const keys = [first];
    while (queue.len() > 0) {
      const k = await queue.get();
      if (k === undefined) break;
      keys.push(k);
    }
    let failed: ReadonlySet<K>;
    try {
      failed = new Set(await apply(keys));
    } catch (err) {
      onError(err, keys);
      failed = new Set(keys);
    }
    for (const k of keys) {
      if (failed.has(k)) queue.addRateLimited(k); else queue.forget(k);
      queue.done(k);
    }
  }
}

/**
 * Calls `fn` until it succeeds, waiting 0.5 s, 1 s, 2 s … (at most 30 s) between attempts; false if
 * `stopped()` turned true first. For a loop's first full write, without which nothing else may be
 * written.
 */
export async function retryUntilDone(fn: () => Promise<void>, stopped: () => boolean,
  onError: (err: unknown, attempt: number) => void): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    try {
      await fn();
      return true;
    } catch (err) {
      if (stopped()) return false;
      onError(err, attempt);
      await new Promise((r) => setTimeout(r, Math.min(30_000, 500 * 2 ** attempt)));
      if (stopped()) return false;
    }
  }
}
