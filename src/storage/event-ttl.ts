// Events expire (`--event-ttl`, default 1 h, as kube-apiserver, which gives each Event an etcd lease
// of that length, renewed by every write). skiff keeps no leases: an Event's expiry is its newest
// timestamp plus the TTL, computed from the object itself so it survives restarts and needs no
// extra column in any backend. A sweeper deletes expired Events through the Store's normal delete
// (watchers see DELETED), compare-and-swap on the revision it saw so a concurrent update wins.
import type { Store, StoredObject } from './types.js';
import { KeyNotFoundError, RevisionConflictError } from './types.js';

/** Where Events live: core/v1 and events.k8s.io/v1 each have their own storage resource. */
const EVENT_PREFIXES = ['/core/events/', '/events.k8s.io/events/'];

export interface EventTtlOptions {
  ttlMs: number;
  /** How often to sweep (default: a tenth of the TTL, between 1 s and 1 min). */
  intervalMs?: number;
  now?: () => number;
  log?: (msg: string, fields?: object) => void;
}

export interface EventTtl {
  /** One sweep now; resolves with how many Events it deleted. */
  sweep(): Promise<number>;
  stop(): void;
}

/** The last time an Event was written, from the timestamps its writers set (ms since the epoch). */
export function eventLastWrite(obj: Readonly<Record<string, any>>): number | undefined {
  const times = [
    obj.lastTimestamp, obj.eventTime, obj.series?.lastObservedTime, obj.deprecatedLastTimestamp,
    obj.metadata?.creationTimestamp,
  ];
  let newest: number | undefined;
  for (const t of times) {
    if (typeof t !== 'string' || !t) continue;
    const ms = Date.parse(t);
    if (Number.isFinite(ms) && (newest === undefined || ms > newest)) newest = ms;
  }
  return newest;
}

export function startEventTtl(store: Store, opts: EventTtlOptions): EventTtl {
  const now = opts.now ?? Date.now;
  const log = opts.log ?? (() => {});
  const expired = (o: StoredObject) => {
    const last = eventLastWrite(o.obj);
    return last !== undefined && last + opts.ttlMs <= now();
  };
  let running: Promise<number> | undefined;
  const sweep = (): Promise<number> => (running ??= (async () => {
    let deleted = 0;
    for (const prefix of EVENT_PREFIXES) {
      const items = store.list(prefix, { filter: expired }).items;
      // Concurrent deletes share group commits; slices bound what one sweep queues at once.
      for (let i = 0; i < items.length; i += 500) {
        const results = await Promise.allSettled(items.slice(i, i + 500).map((o) => store.delete(o.key, o.modRevision)));
        for (const r of results) {
          if (r.status === 'fulfilled') deleted++;
          // Updated or deleted meanwhile: the next sweep looks again.
          else if (!(r.reason instanceof RevisionConflictError || r.reason instanceof KeyNotFoundError)) throw r.reason;
        }
      }
    }
    if (deleted) log('expired events deleted', { deleted });
    return deleted;
  })().finally(() => { running = undefined; }));
  const every = opts.intervalMs ?? Math.min(60_000, Math.max(1000, Math.floor(opts.ttlMs / 10)));
  const timer = setInterval(() => {
    sweep().catch((err) => log('event sweep failed', { err: String(err) }));
  }, every);
  timer.unref();
  return { sweep, stop: () => clearInterval(timer) };
}
