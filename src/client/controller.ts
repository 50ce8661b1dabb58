// The worker loop every control loop runs: take a key from the queue, reconcile it, and either
// forget its failures (success) or put it back with backoff (failure). Reconcilers are
// level-triggered: they get only a key, read the current state themselves, and must be safe to run
// again at any time, since a key is retried after errors and re-queued whenever it changes.
import { logger } from '../util/log.js';
import type { WorkQueue } from './workqueue.js';

export interface ReconcileResult {
  /** Reconcile this key again after this long even though it succeeded (e.g. a timeout to watch). */
  requeueAfterMs?: number;
}

export interface ControllerOptions {
  /** Names the loop in logs. */
  name: string;
  /** Keys processed concurrently (never the same key twice at once). Default 1. */
  workers?: number;
  queue: WorkQueue<string>;
  reconcile(key: string): Promise<ReconcileResult | void>;
}

export interface RunningController {
  /** Shuts the queue down and resolves once the reconciles in flight have finished. */
  stop(): Promise<void>;
}

export function runController(opts: ControllerOptions): RunningController {
  const log = logger(opts.name);
  const { queue } = opts;

  const worker = async (): Promise<void> => {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      const started = performance.now();
      try {
        const result = await opts.reconcile(key);
        queue.forget(key);
        if (result?.requeueAfterMs !== undefined) queue.addAfter(key, result.requeueAfterMs);
        log.debug({ key, ms: Math.round(performance.now() - started) }, 'reconciled');
      } catch (err) {
        const retries = queue.numRequeues(key);
        // Conflicts and not-yet-there objects are routine in a level-triggered world: quiet at first.
        const level = retries < 3 ? 'debug' : 'warn';
        log[level]({ key, retries, err: err instanceof Error ? err.message : String(err) }, 'reconcile failed; retrying with backoff');
        queue.addRateLimited(key);
      } finally {
        queue.done(key);
      }
    }
  };

  const n = Math.max(1, opts.workers ?? 1);
  const workers = Array.from({ length: n }, () => worker());
  log.debug({ workers: n }, 'controller started');

  return {
    async stop() {
      queue.shutDown();
      await Promise.all(workers);
      log.debug('controller stopped');
    },
  };
}
