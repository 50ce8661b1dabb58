// The watch cache: every live object in memory, grouped by resource (`/<group>/<resource>/`), plus a
// ring of recent events per resource. All reads and watches are served from here; the backend is read
// only at start. Writes go to the backend and resolve once their committed event has been applied here.
import type {
  Backend, BackendEvent, KeyValue, ListOptions, ListResult, Store, StoredObject, WatchEvent, Watcher, WatchIndex,
} from './types.js';
import { CompactedError } from './types.js';
import { EventRing } from './ring.js';
import { prefixEnd, resourceOf } from './keys.js';
import { encodeForStorage, keepStorageText, storedAtRevision, storedFromKv } from './stored.js';

export interface CacheStoreOptions {
  /** Events kept per resource for watch resumption (default 1000). */
  ringSize?: number;
  /**
   * Revisions of history read into the rings at start (default: ringSize). More than ringSize lets a
   * resource that changes rarely (pods) resume watches across a restart while one that churns
   * (leases) fills its ring with only its newest events; each ring keeps at most ringSize either way.
   */
  prefillRevisions?: number;
  log?: (msg: string, fields?: object) => void;
}

interface WatchEntry {
  prefix: string;
  from: number;
  onEvent: (e: WatchEvent) => void;
}

/**
 * Items by an index value (WatchIndex): the watchers registered under a value, or the keys of the
 * objects that carry it. A value's set is dropped when it empties.
 */
class ValueIndex<T> {
  private readonly byValue = new Map<string, Set<T>>();
  constructor(readonly extract: WatchIndex['extract']) {}

  get(value: string): ReadonlySet<T> | undefined {
    return this.byValue.get(value);
  }

  add(value: string, item: T): void {
    let set = this.byValue.get(value);
    if (!set) this.byValue.set(value, set = new Set());
    set.add(item);
  }

  remove(value: string, item: T): void {
    const set = this.byValue.get(value);
    if (set?.delete(item) && set.size === 0) this.byValue.delete(value);
  }

  /** `item` moved from value `was` to `now` (undefined: under none). */
  move(item: T, was: string | undefined, now: string | undefined): void {
    if (was === now) return;
    if (was !== undefined) this.remove(was, item);
    if (now !== undefined) this.add(now, item);
  }
}

class Resource {
  readonly objects = new Map<string, StoredObject>();
  readonly watchers = new Set<WatchEntry>();
  /** Watchers found by an index value instead of being offered every event of their resource. */
  readonly indexed = new Map<string, ValueIndex<WatchEntry>>();
  /** Object keys by an index value, for lists: built by the first list that asks, then kept by apply(). */
  readonly keyIndexes = new Map<string, ValueIndex<string>>();
  /** Sorted keys of `objects`; dropped on create/delete and rebuilt by the next list. */
  private sorted?: string[];
  /** The object parsed last: what a new key's object shares its equal parts with (stored.ts). */
  private recent?: StoredObject;

  constructor(readonly prefix: string, readonly ring: EventRing) {}

  keys(): string[] {
    return (this.sorted ??= [...this.objects.keys()].sort());
  }

  membershipChanged(): void {
    this.sorted = undefined;
  }

  /** `kv` parsed, sharing its equal parts with `before` (its key's previous version) or else the object parsed last. */
  parse(kv: KeyValue, before?: StoredObject): StoredObject {
    return (this.recent = storedFromKv(kv, before ?? this.recent));
  }

  /** Sorted keys of the objects whose `index` value is `index.value`. */
  keysWith(index: WatchIndex): string[] {
    let ix = this.keyIndexes.get(index.name);
    if (!ix) {
      ix = new ValueIndex<string>(index.extract);
      for (const [key, o] of this.objects) ix.move(key, undefined, index.extract(o.obj));
      this.keyIndexes.set(index.name, ix);
    }
    return [...(ix.get(index.value) ?? [])].sort();
  }

  /** Keeps the key indexes after `key` changed from `was` to `now` (undefined: absent). */
  reindex(key: string, was: StoredObject | undefined, now: StoredObject | undefined): void {
    for (const ix of this.keyIndexes.values()) ix.move(key, was && ix.extract(was.obj), now && ix.extract(now.obj));
  }
}

/** First index in sorted `keys` whose key is > `key` (strict) or >= `key`. */
function bound(keys: string[], key: string, strict: boolean): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid] < key || (strict && keys[mid] === key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

export class CacheStore implements Store {
  private readonly resources = new Map<string, Resource>();
  private readonly ringSize: number;
  private readonly prefillRevisions: number;
  private readonly log: (msg: string, fields?: object) => void;
  private rev = 0;
  /** Rings are complete after this revision (where history prefill began). */
  private ringBase = 0;
  /** Commits that arrive while start() is loading, applied once the load is done. */
  private backlog?: BackendEvent[][];
  /** Objects of the last applied commit by revision, so a write hands back the exact object it made. */
  private lastApplied = new Map<number, StoredObject>();

  constructor(private readonly backend: Backend, opts: CacheStoreOptions = {}) {
    this.ringSize = opts.ringSize ?? 1000;
    this.prefillRevisions = Math.max(this.ringSize, opts.prefillRevisions ?? 0);
    this.log = opts.log ?? (() => {});
  }

  async start(): Promise<void> {
    await this.backend.start();
    this.backlog = [];
    this.backend.onCommit((events) => (this.backlog ? this.backlog.push(events) : this.apply(events)));
    let objects = 0;
    const revision = await this.backend.eachLatest('/', (kv) => {
      const r = this.resourceFor(kv.key);
      r.objects.set(kv.key, r.parse(kv));
      objects++;
    });
    this.rev = revision;
    this.ringBase = Math.max(0, revision - this.prefillRevisions, this.backend.compactedRevision());
    await this.prefillRings(revision);
    const backlog = this.backlog;
    this.backlog = undefined;
    for (const events of backlog) this.apply(events.filter((e) => e.kv.modRevision > this.rev));
    this.log('watch cache loaded', { revision: this.rev, objects, resources: this.resources.size });
  }

  /** Recent history into the rings, so a watch resuming across a server restart can replay. */
  private async prefillRings(upTo: number): Promise<void> {
    for (const r of this.resources.values()) r.ring.completeAfter = this.ringBase;
    const history = await this.backend.history(this.ringBase, this.prefillRevisions);
    // Each key's newest state as the replay walks forward; ends equal to the live objects.
    const seen = new Map<string, StoredObject>();
    for (const e of history) {
      const revision = e.kv.modRevision;
      if (revision > upTo) break;
      const r = this.resourceFor(e.kv.key);
      const live = r.objects.get(e.kv.key);
      const before = seen.get(e.kv.key) ?? (e.prev && r.parse(e.prev));
      let object: StoredObject;
      if (e.type === 'delete') object = before ? storedAtRevision(before, revision) : r.parse(e.kv);
      else object = live?.modRevision === revision ? live : r.parse(e.kv, before);
      seen.set(e.kv.key, object);
      r.ring.push(this.watchEvent(e.type, object, before, revision));
    }
  }

  revision(): number {
    return this.rev;
  }

  get(key: string): StoredObject | undefined {
    const res = resourceOf(key);
    return res === undefined ? undefined : this.resources.get(res)?.objects.get(key);
  }

  list(prefix: string, opts: ListOptions = {}): ListResult {
    const res = resourceOf(prefix);
    if (res !== undefined) return this.listIn([this.resources.get(res)], prefix, opts);
    // A prefix above resource level: the resources' key ranges do not interleave, so their sorted
    // key lists concatenated in prefix order are sorted too.
    const covered = [...this.resources.keys()].filter((p) => p.startsWith(prefix)).sort();
    return this.listIn(covered.map((p) => this.resources.get(p)), prefix, opts);
  }

  private listIn(resources: (Resource | undefined)[], prefix: string, opts: ListOptions): ListResult {
    const at = opts.atRevision;
    if (at !== undefined && at < this.rev) return this.listAt(resources, prefix, opts, at);
    const { afterKey, filter, index } = opts;
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    // One resource asked by an index value: its indexed keys, in the same order, instead of all of them.
    const keysOf = (r: Resource) => (index && resources.length === 1 ? r.keysWith(index) : r.keys());
    const items: StoredObject[] = [];
    for (let ri = 0; ri < resources.length; ri++) {
      const r = resources[ri];
      if (!r) continue;
      const keys = keysOf(r);
      let i = bound(keys, prefix, false);
      if (afterKey !== undefined && afterKey >= prefix) i = Math.max(i, bound(keys, afterKey, true));
      for (; i < keys.length && keys[i].startsWith(prefix); i++) {
        const o = r.objects.get(keys[i])!;
        if (filter && !filter(o)) continue;
        items.push(o);
        if (items.length === limit) {
          const remaining = this.countAfter(resources, ri, keys, i, prefix);
          // With a filter, `remaining` counts keys not yet examined (an upper bound), as Kubernetes
          // leaves remainingItemCount unset for filtered lists.
          if (remaining > 0) return { items, revision: this.rev, lastKey: keys[i], remaining };
          return { items, revision: this.rev };
        }
      }
    }
    return { items, revision: this.rev };
  }

  /**
   * The list as it was at revision `at`: the current objects with every change after `at` undone,
   * newest first, from the resources' rings (each event carries the state before it).
   */
  private listAt(resources: (Resource | undefined)[], prefix: string, opts: ListOptions, at: number): ListResult {
    const { afterKey, filter } = opts;
    const limit = opts.limit && opts.limit > 0 ? opts.limit : Infinity;
    const state: { key: string; o: StoredObject }[] = [];
    for (const r of resources) {
      if (!r) continue;
      if (at < r.ring.completeAfter) throw new CompactedError(at, r.ring.completeAfter);
      const undone = new Map<string, StoredObject | null>();
      for (let i = r.ring.size - 1; i >= 0; i--) {
        const e = r.ring.at(i);
        if (e.revision <= at) break;
        if (!e.object.key.startsWith(prefix)) continue;
        if (e.type === 'ADDED') undone.set(e.object.key, null);
        else if (e.prevObject) undone.set(e.object.key, e.prevObject);
        // A change without its previous state (compacted before the ring was filled) cannot be undone.
        else throw new CompactedError(at, e.revision);
      }
      const keys = new Set(r.keys().filter((k) => k.startsWith(prefix)));
      for (const k of undone.keys()) keys.add(k);
      for (const k of [...keys].sort()) {
        const o = undone.has(k) ? undone.get(k) : r.objects.get(k);
        if (o) state.push({ key: k, o });
      }
    }
    let i = 0;
    if (afterKey !== undefined && afterKey >= prefix) while (i < state.length && state[i].key <= afterKey) i++;
    const items: StoredObject[] = [];
    for (; i < state.length; i++) {
      if (filter && !filter(state[i].o)) continue;
      items.push(state[i].o);
      if (items.length === limit && i + 1 < state.length) {
        return { items, revision: at, lastKey: state[i].key, remaining: state.length - i - 1 };
      }
    }
    return { items, revision: at };
  }

  /** Keys under `prefix` after position `i` of resource `ri`'s `keys` (all of them, or an index's). */
  private countAfter(resources: (Resource | undefined)[], ri: number, keys: string[], i: number, prefix: string): number {
    const upper = prefixEnd(prefix);
    let n = (upper === undefined ? keys.length : bound(keys, upper, false)) - i - 1;
    for (let j = ri + 1; j < resources.length; j++) n += resources[j]?.objects.size ?? 0;
    return n;
  }

  watch(prefix: string, fromRevision: number, onEvent: (e: WatchEvent) => void, index?: WatchIndex): Watcher {
    const res = resourceOf(prefix);
    if (res === undefined) throw new Error(`watch prefix must name a resource: ${prefix}`);
    const r = this.resourceFor(res);
    const from = fromRevision > 0 ? fromRevision : this.rev;
    if (from < r.ring.completeAfter) throw new CompactedError(from, r.ring.completeAfter);
    if (index) {
      for (const e of r.ring.eventsWith(index.name, index.extract, index.value, from)) if (e.object.key.startsWith(prefix)) onEvent(e);
    } else {
      for (let i = r.ring.firstAfter(from); i < r.ring.size; i++) {
        const e = r.ring.at(i);
        if (e.object.key.startsWith(prefix)) onEvent(e);
      }
    }
    const entry: WatchEntry = { prefix, from, onEvent };
    if (!index) {
      r.watchers.add(entry);
      return { stop: () => r.watchers.delete(entry) };
    }
    let ix = r.indexed.get(index.name);
    if (!ix) r.indexed.set(index.name, ix = new ValueIndex<WatchEntry>(index.extract));
    const watchers = ix;
    watchers.add(index.value, entry);
    return { stop: () => watchers.remove(index.value, entry) };
  }

  resumeFloor(prefix: string): number {
    // A restart fills the rings from the last prefillRevisions revisions: stay within half of them.
    let floor = this.rev - Math.floor(this.prefillRevisions / 2);
    // A full ring drops its oldest events as new ones arrive: stay ahead of its oldest quarter.
    const res = resourceOf(prefix);
    const ring = res === undefined ? undefined : this.resources.get(res)?.ring;
    if (ring && ring.size === ring.capacity) floor = Math.max(floor, ring.at(Math.floor(ring.size / 4)).revision);
    return floor;
  }

  async create(key: string, obj: Record<string, any>): Promise<StoredObject> {
    return this.applied(await this.backend.create(key, encodeForStorage(obj)));
  }

  async update(key: string, obj: Record<string, any>, expectedModRevision: number): Promise<StoredObject> {
    return this.applied(await this.backend.update(key, encodeForStorage(obj), expectedModRevision));
  }

  async delete(key: string, expectedModRevision?: number): Promise<StoredObject> {
    return this.applied(await this.backend.delete(key, expectedModRevision));
  }

  async close(): Promise<void> {
    for (const r of this.resources.values()) { r.watchers.clear(); r.indexed.clear(); }
    await this.backend.close();
  }

  /** The backend calls onCommit before resolving the write, so the cache already holds its result. */
  private applied(kv: KeyValue): StoredObject {
    return this.lastApplied.get(kv.modRevision) ?? storedFromKv(kv);
  }

  private resourceFor(key: string): Resource {
    const prefix = resourceOf(key);
    if (prefix === undefined) throw new Error(`storage key has no resource: ${key}`);
    let r = this.resources.get(prefix);
    if (!r) {
      // A resource first seen now had no events since ringBase, so its empty ring is complete.
      r = new Resource(prefix, new EventRing(this.ringSize, this.ringBase));
      this.resources.set(prefix, r);
    }
    return r;
  }

  private apply(events: BackendEvent[]): void {
    this.lastApplied = new Map();
    for (const e of events) {
      const { key, modRevision: revision } = e.kv;
      const r = this.resourceFor(key);
      const live = r.objects.get(key);
      const before = live ?? (e.prev && r.parse(e.prev));
      let object: StoredObject;
      if (e.type === 'delete') {
        object = before ? storedAtRevision(before, revision) : r.parse(e.kv);
        r.objects.delete(key);
        r.membershipChanged();
        if (r.keyIndexes.size) r.reindex(key, live, undefined);
      } else {
        object = r.parse(e.kv, before);
        keepStorageText(object, e.kv.value);
        if (!live) r.membershipChanged();
        r.objects.set(key, object);
        if (r.keyIndexes.size) r.reindex(key, live, object);
      }
      this.rev = revision;
      this.lastApplied.set(revision, object);
      const we = this.watchEvent(e.type, object, before, revision);
      r.ring.push(we);
      for (const w of r.watchers) this.deliver(w, we, key, revision);
      for (const ix of r.indexed.values()) {
        const now = ix.extract(object.obj);
        const was = before ? ix.extract(before.obj) : undefined;
        if (now !== undefined) for (const w of ix.get(now) ?? []) this.deliver(w, we, key, revision);
        if (was !== undefined && was !== now) for (const w of ix.get(was) ?? []) this.deliver(w, we, key, revision);
      }
    }
  }

  private deliver(w: WatchEntry, we: WatchEvent, key: string, revision: number): void {
    if (revision <= w.from || !key.startsWith(w.prefix)) return;
    try {
      w.onEvent(we);
    } catch (err) {
      this.log('watch handler failed', { key, err: String(err) });
    }
  }

  private watchEvent(type: BackendEvent['type'], object: StoredObject, before: StoredObject | undefined, revision: number): WatchEvent {
    if (type === 'create') return { type: 'ADDED', object, revision };
    return { type: type === 'update' ? 'MODIFIED' : 'DELETED', object, prevObject: before, revision };
  }
}
