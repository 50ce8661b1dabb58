// An informer keeps a local, indexed copy of one resource (optionally one namespace and selectors)
// and tells handlers what changed, as client-go's shared informer does: list, then watch from the
// list's resourceVersion; on a watch that ends, watch again from the last version seen; when that
// version is too old (410) or the server was away, list again and turn the difference into events.
// Handlers run synchronously as the change arrives and must only note the key (queue it).
//
// Cached objects are shared and deep-frozen: never mutate one, structuredClone it first.
import type { KObject } from '../api/object.js';
import { isGone, refName, type ApiClient, type ClientWatchEvent, type ResourceRef, type WatchHandle } from './types.js';
import { logger, type Logger } from '../util/log.js';

/** Values an object is filed under in one index (e.g. its `spec.nodeName`, its owners' uids). */
export type IndexFunc<T> = (obj: T) => string[];

export interface EventHandlers<T> {
  onAdd?(obj: T): void;
  onUpdate?(oldObj: T, newObj: T): void;
  /** The object's last known state. */
  onDelete?(obj: T): void;
}

export interface InformerOptions<T> {
  client: ApiClient;
  resource: ResourceRef;
  /** Only this namespace (default: all). */
  namespace?: string;
  labelSelector?: string;
  fieldSelector?: string;
  indexers?: Record<string, IndexFunc<T>>;
  /** Every this often, every cached object is offered to onUpdate(obj, obj) again. Off by default. */
  resyncMs?: number;
  /** Delay after a failed list or watch: `initialMs` doubling to `maxMs` (client-go: 800 ms to 30 s). */
  backoff?: { initialMs?: number; maxMs?: number };
  /** Server-side lifetime of each watch (HttpClient); default 5 to 10 minutes. */
  watchTimeoutSeconds?: number;
  /**
   * What is kept of each object, applied as it arrives (client-go's SetTransform): a cache of a few
   * fields per object instead of whole ones, for a watcher whose memory must not grow with their size.
   * The result must keep metadata.name, namespace and resourceVersion.
   */
  transform?: (obj: T) => T;
}

/** `namespace/name`, or `name` for cluster-scoped objects (client-go's MetaNamespaceKeyFunc). */
export function keyOf(obj: KObject): string {
  const { namespace, name } = obj.metadata;
  return namespace ? `${namespace}/${name}` : String(name);
}

export function splitKey(key: string): { namespace?: string; name: string } {
  const i = key.indexOf('/');
  return i < 0 ? { name: key } : { namespace: key.slice(0, i), name: key.slice(i + 1) };
}

/**
 * The read side of an informer's cache (client-go's Lister and Indexer): what a reconcile module
 * takes, so it can be tested against a few objects in memory instead of a running API.
 */
export type Lister<T extends KObject = KObject> = Pick<Informer<T>, 'get' | 'getByName' | 'list' | 'byIndex'>;

/** A watch that ends this soon without an event is treated as a failure, so it can't spin. */
const SHORT_WATCH_MS = 1000;

export class Informer<T extends KObject = KObject> {
  private readonly items = new Map<string, T>();
  private readonly indexers = new Map<string, IndexFunc<T>>();
  private readonly indices = new Map<string, Map<string, Set<string>>>();
  private readonly handlers: EventHandlers<T>[] = [];
  private readonly log: Logger;
  private rv = '';
  private synced = false;
  private started = false;
  private stopped = false;
  private syncWaiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private watch?: WatchHandle;
  private sleepTimer?: NodeJS.Timeout;
  private wake?: () => void;
  private resyncTimer?: NodeJS.Timeout;
  private delay: number;
  private readonly initialDelay: number;
  private readonly maxDelay: number;
  private loop?: Promise<void>;

  constructor(private readonly opts: InformerOptions<T>) {
    this.log = logger('informer').child({ resource: refName(opts.resource), namespace: opts.namespace });
    this.addIndexers(opts.indexers ?? {});
    this.initialDelay = opts.backoff?.initialMs ?? 800;
    this.maxDelay = opts.backoff?.maxMs ?? 30_000;
    this.delay = this.initialDelay;
  }

  /** More indexes (e.g. another controller sharing this informer); existing objects are filed at once. */
  addIndexers(indexers: Record<string, IndexFunc<T>>): void {
    for (const [name, fn] of Object.entries(indexers)) {
      if (this.indexers.has(name)) throw new Error(`index "${name}" already exists on the ${refName(this.opts.resource)} informer`);
      this.indexers.set(name, fn);
      const index = new Map<string, Set<string>>();
      this.indices.set(name, index);
      for (const [key, obj] of this.items) this.file(index, fn, key, obj);
    }
  }

  /** Handlers added after the first sync first get an onAdd for every cached object. */
  addHandlers(h: EventHandlers<T>): void {
    this.handlers.push(h);
    if (this.synced && h.onAdd) for (const o of this.items.values()) this.call(() => h.onAdd!(o));
  }

  start(): void {
    if (this.started) return;
    this.started = true;
    this.loop = this.run();
    if (this.opts.resyncMs) {
      this.resyncTimer = setInterval(() => {
        if (!this.synced) return;
        for (const o of this.items.values()) this.emit('update', o, o);
      }, this.opts.resyncMs);
    }
  }

  /** Ends the watch and every timer; resolves once the list/watch loop has returned. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.watch?.stop();
    if (this.sleepTimer) clearTimeout(this.sleepTimer);
    this.wake?.();
    if (this.resyncTimer) clearInterval(this.resyncTimer);
    for (const w of this.syncWaiters.splice(0)) w.reject(new Error(`informer for ${refName(this.opts.resource)} stopped before it synced`));
    await this.loop;
  }

  /** True once the first list is in the cache (and its onAdd handlers have run). */
  hasSynced(): boolean {
    return this.synced;
  }

  waitForSync(timeoutMs?: number): Promise<void> {
    if (this.synced) return Promise.resolve();
    if (this.stopped) return Promise.reject(new Error(`informer for ${refName(this.opts.resource)} is stopped`));
    return new Promise((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const waiter = {
        resolve: () => { if (timer) clearTimeout(timer); resolve(); },
        reject: (e: Error) => { if (timer) clearTimeout(timer); reject(e); },
      };
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this.syncWaiters = this.syncWaiters.filter((w) => w !== waiter);
          reject(new Error(`informer for ${refName(this.opts.resource)} not synced after ${timeoutMs} ms`));
        }, timeoutMs);
      }
      this.syncWaiters.push(waiter);
    });
  }

  get(key: string): T | undefined {
    return this.items.get(key);
  }

  getByName(namespace: string | undefined, name: string): T | undefined {
    return this.items.get(namespace ? `${namespace}/${name}` : name);
  }

  list(): T[] {
    return [...this.items.values()];
  }

  keys(): string[] {
    return [...this.items.keys()];
  }

  /** Objects filed under `value` in the index `name`. */
  byIndex(name: string, value: string): T[] {
    const index = this.indices.get(name);
    if (!index) throw new Error(`no index "${name}" on the ${refName(this.opts.resource)} informer`);
    const keys = index.get(value);
    if (!keys) return [];
    const out: T[] = [];
    for (const k of keys) out.push(this.items.get(k)!);
    return out;
  }

  /** The resourceVersion the cache reflects (the last event or list seen). */
  lastSyncResourceVersion(): string {
    return this.rv;
  }

  // ---- list and watch ----------------------------------------------------------------------------

  private async run(): Promise<void> {
    let needList = true;
    let justListed = false;
    while (!this.stopped) {
      if (needList) {
        try {
          const { client, resource, namespace, labelSelector, fieldSelector } = this.opts;
          const r = await client.list<T>(resource, namespace, { labelSelector, fieldSelector });
          if (this.stopped) return;
          this.replace(r.items, r.resourceVersion);
          needList = false;
          justListed = true;
          this.delay = this.initialDelay;
        } catch (err) {
          this.log.warn({ err: describe(err) }, 'list failed; retrying');
          await this.backoff();
          continue;
        }
      }
      const started = Date.now();
      let events = 0;
      const err = await new Promise<Error | undefined>((resolve) => {
        const { client, resource, namespace, labelSelector, fieldSelector, watchTimeoutSeconds } = this.opts;
        const h = client.watch<T>(resource, namespace, this.rv, (e) => { events++; this.onEvent(e); },
          { labelSelector, fieldSelector, timeoutSeconds: watchTimeoutSeconds });
        this.watch = h;
        void h.done.then(resolve);
      }).catch((e: unknown) => (e instanceof Error ? e : new Error(String(e))));
      this.watch = undefined;
      if (this.stopped) return;
      const listedThenExpired = justListed && events === 0;
      justListed = false;
      if (events > 0) this.delay = this.initialDelay;
      if (err === undefined) {
        if (events === 0 && Date.now() - started < SHORT_WATCH_MS) await this.backoff();
        continue;
      }
      if (isGone(err)) {
        // Too old to resume: what changed meanwhile can only be learned by listing again.
        this.log.info({ resourceVersion: this.rv }, 'watch expired; relisting');
        needList = true;
        // A list's own version already expired means a tiny watch cache: don't spin on it.
        if (listedThenExpired) await this.backoff();
        continue;
      }
      // The server went away or refused: resume from the last version once it answers again (a
      // restarted server replays from its history, or says 410 and we relist).
      this.log.warn({ err: describe(err), resourceVersion: this.rv }, 'watch failed; resuming after backoff');
      await this.backoff();
    }
  }

  private onEvent(e: ClientWatchEvent<T>): void {
    if (this.stopped) return;
    const rv = e.object?.metadata?.resourceVersion;
    if (e.type === 'BOOKMARK') { if (rv) this.rv = rv; return; }
    const obj = deepFreeze(this.opts.transform ? this.opts.transform(e.object) : e.object);
    const key = keyOf(obj);
    const old = this.items.get(key);
    if (e.type === 'DELETED') {
      if (old) {
        this.remove(key, old);
        this.emit('delete', obj);
      }
    } else {
      this.put(key, obj, old);
      if (old) this.emit('update', old, obj); else this.emit('add', obj);
    }
    if (rv) this.rv = rv;
  }

  /** Makes the cache equal to a fresh list, telling handlers what the difference means. */
  private replace(list: T[], rv: string): void {
    const seen = new Set<string>();
    for (const item of list) {
      const obj = deepFreeze(this.opts.transform ? this.opts.transform(item) : item);
      const key = keyOf(obj);
      seen.add(key);
      const old = this.items.get(key);
      if (old && old.metadata.resourceVersion === obj.metadata.resourceVersion) continue;
      this.put(key, obj, old);
      if (old) this.emit('update', old, obj); else this.emit('add', obj);
    }
    for (const [key, old] of [...this.items]) {
      if (seen.has(key)) continue;
      this.remove(key, old);
      this.emit('delete', old);
    }
    this.rv = rv;
    if (!this.synced) {
      this.synced = true;
      for (const w of this.syncWaiters.splice(0)) w.resolve();
    }
  }

  private put(key: string, obj: T, old: T | undefined): void {
    if (old) this.unindex(key, old);
    this.items.set(key, obj);
    for (const [name, fn] of this.indexers) this.file(this.indices.get(name)!, fn, key, obj);
  }

  private file(index: Map<string, Set<string>>, fn: IndexFunc<T>, key: string, obj: T): void {
    for (const v of this.indexValues(fn, obj)) {
      let keys = index.get(v);
      if (!keys) index.set(v, keys = new Set());
      keys.add(key);
    }
  }

  private remove(key: string, old: T): void {
    this.unindex(key, old);
    this.items.delete(key);
  }

  private unindex(key: string, old: T): void {
    for (const [name, fn] of this.indexers) {
      const index = this.indices.get(name)!;
      for (const v of this.indexValues(fn, old)) {
        const keys = index.get(v);
        if (!keys) continue;
        keys.delete(key);
        if (keys.size === 0) index.delete(v);
      }
    }
  }

  private indexValues(fn: IndexFunc<T>, obj: T): string[] {
    try {
      return fn(obj);
    } catch (err) {
      this.log.error({ err: describe(err), key: keyOf(obj) }, 'index function failed');
      return [];
    }
  }

  private emit(kind: 'add' | 'update' | 'delete', a: T, b?: T): void {
    for (const h of this.handlers) {
      if (kind === 'add' && h.onAdd) this.call(() => h.onAdd!(a));
      else if (kind === 'update' && h.onUpdate) this.call(() => h.onUpdate!(a, b!));
      else if (kind === 'delete' && h.onDelete) this.call(() => h.onDelete!(a));
    }
  }

  /** One failing handler must not starve the others or break the cache. */
  private call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.error({ err: describe(err) }, 'event handler failed');
    }
  }

  private backoff(): Promise<void> {
    const ms = Math.round(this.delay * (1 + Math.random() * 0.2));
    this.delay = Math.min(this.delay * 2, this.maxDelay);
    return new Promise((resolve) => {
      this.wake = () => { this.wake = undefined; resolve(); };
      this.sleepTimer = setTimeout(() => this.wake?.(), ms);
    });
  }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Watch-cache objects arrive frozen already; HTTP ones are frozen here so both behave the same. */
function deepFreeze<V>(v: V): V {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const child of Object.values(v)) deepFreeze(child);
    Object.freeze(v);
  }
  return v;
}
