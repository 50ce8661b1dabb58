// The worker loop every control loop runs: wait until the caches it reads have synced, then take a
// key from the queue, reconcile it, and either forget its failures (success) or put it back with
// backoff (failure). Reconcilers are level-triggered: they get only a key, read the current state
// themselves, and must be safe to run again at any time, since a key is retried after errors and
// re-queued whenever it changes.
import { logger } from '../util/log.js';
import { keyOf, type EventHandlers } from './informer.js';
import type { KObject } from '../api/object.js';
import type { WorkQueue } from './workqueue.js';
import { currentMetricsRegistry, queueMetrics } from './metrics-scope.js';

export interface ReconcileResult {
  /** Reconcile this key again after this long even though it succeeded (e.g. a timeout to watch). */
  requeueAfterMs?: number;
}

/** What runController waits for before its workers start: an Informer (or anything that syncs). */
export interface Syncable {
  waitForSync(): Promise<void>;
}

export interface ControllerOptions {
  /** Names the loop in logs and in the controller manager's list. */
  name: string;
  /** Keys processed concurrently (never the same key twice at once). Default 1. */
  workers?: number;
  queue: WorkQueue<string>;
  /**
   * Every cache `reconcile` reads. No worker starts before all have synced (client-go's
   * WaitForCacheSync): a reconcile against a cache not yet filled would see no pods and create them
   * all again. Keys queued meanwhile (the informers' initial onAdd calls) wait in the queue.
   */
  informers?: readonly Syncable[];
  reconcile(key: string): Promise<ReconcileResult | void>;
}

/** A running loop. `stop()` resolves when its workers have finished and no timer of its own is left. */
export interface RunningController {
  readonly name: string;
  stop(): Promise<void>;
}

export function runController(opts: ControllerOptions): RunningController {
  const log = logger(opts.name);
  const { queue } = opts;
  // Into the registry of whoever started this loop (the server's or an agent's), when there is one.
  const registry = currentMetricsRegistry();
  // Queues are named as kube-controller-manager names them: `replicaset`, not `replicaset-controller`.
  if (registry) queue.instrument(queueMetrics(registry, opts.name.replace(/-controller$/, '')));
  let stopped = false;

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
  let running: Promise<void>[] | undefined;
  const startWorkers = () => {
    if (stopped) return;
    running = Array.from({ length: n }, () => worker());
    log.debug({ workers: n }, 'controller started');
  };
  const informers = opts.informers ?? [];
  if (informers.length === 0) {
    startWorkers();
  } else {
    void waitForCacheSync(informers).then((synced) => {
      if (synced) startWorkers();
      // An informer stopped before it synced: the loop is being torn down (or never could run).
      else if (!stopped) log.error('informers stopped before they synced; workers not started');
    });
  }

  return {
    name: opts.name,
    // Never waits for a sync that may not come: the manager stops informers only after their loops.
    async stop() {
      stopped = true;
      queue.shutDown();
      await Promise.all(running ?? []);
      log.debug('controller stopped');
    },
  };
}

/**
 * True once every informer has synced; false when one is stopped first, or when `until` settles
 * first (client-go's WaitForCacheSync and its stop channel). For loops that are not runController's
 * (the scheduler's own queue); runController does this itself.
 */
export function waitForCacheSync(informers: readonly Syncable[], until?: Promise<unknown>): Promise<boolean> {
  const synced = Promise.all(informers.map((i) => i.waitForSync())).then(() => true, () => false);
  return until ? Promise.race([synced, until.then(() => false, () => false)]) : synced;
}

/** Informer handlers that queue the key of whatever was added, updated or deleted. */
export function enqueueOnChange<T extends KObject>(queue: Pick<WorkQueue<string>, 'add'>): EventHandlers<T> {
  return {
    onAdd: (o) => queue.add(keyOf(o)),
    onUpdate: (_old, o) => queue.add(keyOf(o)),
    onDelete: (o) => queue.add(keyOf(o)),
  };
}

/** Queues the key of every object in `informer` (optionally only those `filter` accepts). */
export function enqueueAll<T extends KObject>(queue: Pick<WorkQueue<string>, 'add'>, informer: { list(): T[] },
  filter?: (obj: T) => boolean): void {
  for (const o of informer.list()) if (!filter || filter(o)) queue.add(keyOf(o));
}
