// The storage contract. Two layers:
//  - `Backend`: a durable, revisioned key-value log (kine-like). SQLite is the embedded default; etcd
//    and PostgreSQL implement the same interface later. One global monotonic revision for every
//    change, as etcd. Writes are compare-and-swap on the key's current modRevision.
//  - `Store`: the in-memory watch cache on top of one Backend. The apiserver talks only to a Store:
//    reads (get, list, watch) never touch the disk; writes go to the Backend and resolve only after
//    the change is durable AND visible in the cache (read-your-writes).
// Keys look like `/<group or "core">/<resource>/<namespace>/<name>` (cluster-scoped: no namespace).
// Values are JSON texts of API objects WITHOUT metadata.resourceVersion: the Store sets
// `metadata.resourceVersion` to the modRevision when it hands an object out.

export interface KeyValue {
  key: string;
  value: string;          // JSON text as stored
  createRevision: number;
  modRevision: number;
}

export interface BackendEvent {
  type: 'create' | 'update' | 'delete';
  kv: KeyValue;           // for delete: the last value, with modRevision = the delete's revision
  prev?: KeyValue;        // previous value for update/delete
}

export class KeyExistsError extends Error {
  constructor(readonly key: string) { super(`key exists: ${key}`); }
}
export class KeyNotFoundError extends Error {
  constructor(readonly key: string) { super(`key not found: ${key}`); }
}
/** CAS failure: the key's modRevision is not the expected one. Carries the current value. */
export class RevisionConflictError extends Error {
  constructor(readonly key: string, readonly current?: KeyValue) { super(`revision conflict: ${key}`); }
}
/** The requested revision has been compacted (maps to HTTP 410). */
export class CompactedError extends Error {
  constructor(readonly requested: number, readonly compacted: number) {
    super(`too old resource version: ${requested} (${compacted})`);
  }
}

export interface Backend {
  /** Opens the database (creating it if needed) and recovers state. */
  start(): Promise<void>;
  currentRevision(): number;
  /** Latest live value of each key under `prefix`, by key, with the revision they reflect. */
  listLatest(prefix: string): Promise<{ revision: number; kvs: KeyValue[] }>;
  /**
   * The same, handed to `each` one at a time as they are read (the cache's load at start): no list
   * of them all is held, so each value's text can be garbage as soon as `each` has parsed it.
   * Resolves with the revision they reflect. `each` must not call the backend.
   */
  eachLatest(prefix: string, each: (kv: KeyValue) => void): Promise<number>;
  /** Events with revision > `afterRevision` still in the log (used to prefill the cache's rings). */
  history(afterRevision: number, limit: number): Promise<BackendEvent[]>;
  get(key: string): Promise<KeyValue | undefined>;
  /** Fails with KeyExistsError if the key is live. Resolves once durable. */
  create(key: string, value: string): Promise<KeyValue>;
  /** CAS: fails with RevisionConflictError unless the key's modRevision === expected. */
  update(key: string, value: string, expectedModRevision: number): Promise<KeyValue>;
  /** CAS when expectedModRevision is given. Resolves with the deleted value (modRevision = delete rev). */
  delete(key: string, expectedModRevision?: number): Promise<KeyValue>;
  /** Called, in revision order, for every committed change, before the write's promise resolves. */
  onCommit(listener: (events: BackendEvent[]) => void): void;
  /** Removes superseded and deleted rows at or below `revision`. */
  compact(revision: number): Promise<void>;
  compactedRevision(): number;
  dbSize(): Promise<number>;
  /** Resolves when the datastore answers reads and takes writes (health checks; rate-limited by the backend). */
  checkHealth(maxAgeMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** An object as the Store holds it: frozen, shared, never mutated. */
export interface StoredObject {
  readonly key: string;
  readonly obj: Readonly<Record<string, any>>;   // metadata.resourceVersion is set
  readonly createRevision: number;
  readonly modRevision: number;
  /** The object's JSON text (with resourceVersion), encoded once and shared by every reader. */
  json(): string;
}

export interface WatchEvent {
  type: 'ADDED' | 'MODIFIED' | 'DELETED';
  object: StoredObject;       // for DELETED: the last state, resourceVersion = the delete's revision
  prevObject?: StoredObject;  // for MODIFIED/DELETED: the state before (lets filtered watches emit DELETED when an object leaves the filter)
  revision: number;
}

export interface ListOptions {
  /** Only keys strictly after this one (continue tokens are built from it). */
  afterKey?: string;
  limit?: number;
  filter?: (o: StoredObject) => boolean;
  /**
   * List the state as of this revision (a paged list's later pages use the first page's revision),
   * rebuilt from the per-resource event ring. Throws CompactedError when the ring no longer reaches
   * back that far (HTTP 410, as a continue token whose revision etcd has compacted).
   */
  atRevision?: number;
  /**
   * Only objects whose index value is `index.value` (the filter still applies): the store answers
   * from an index it keeps by that name instead of walking every object of the resource. A pod list
   * by `spec.nodeName` (every kubelet's, after a restart all 5,000 at once) walked 50,000 pods.
   */
  index?: WatchIndex;
}

export interface ListResult {
  items: StoredObject[];
  revision: number;       // the cache's revision the list reflects
  /** Set when `limit` cut the list: the last key returned. */
  lastKey?: string;
  remaining?: number;
}

export interface Watcher {
  stop(): void;
}

/**
 * An index a watcher can be found by, so an event reaches only the watchers whose value it carries
 * (e.g. 1,000 nodes each watching `spec.nodeName=<self>`: one pod event wakes one or two watchers, not
 * all of them). Watchers on the same resource must use the same `extract` for the same `name`.
 */
export interface WatchIndex {
  name: string;
  extract: (obj: Readonly<Record<string, any>>) => string | undefined;
  value: string;
}

export interface Store {
  start(): Promise<void>;
  revision(): number;
  get(key: string): StoredObject | undefined;
  list(prefix: string, opts?: ListOptions): ListResult;
  /**
   * Calls `onEvent` for every change under `prefix` with revision > fromRevision (from the cache's
   * per-resource ring), then live. Throws CompactedError when fromRevision is older than what the ring
   * still holds. `onEvent` is called synchronously from the commit path: it must not block.
   */
  watch(prefix: string, fromRevision: number, onEvent: (e: WatchEvent) => void, index?: WatchIndex): Watcher;
  /**
   * The oldest revision from which a watch under `prefix` can resume with room to spare, now and
   * from the rings a restart would fill: a watcher last told of an older revision should get a
   * bookmark, or it may have to list again.
   */
  resumeFloor(prefix: string): number;
  /** obj is a plain object; its metadata.resourceVersion is ignored. */
  create(key: string, obj: Record<string, any>): Promise<StoredObject>;
  update(key: string, obj: Record<string, any>, expectedModRevision: number): Promise<StoredObject>;
  delete(key: string, expectedModRevision?: number): Promise<StoredObject>;
  close(): Promise<void>;
}
