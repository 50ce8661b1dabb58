// The seam between the generic log layer (log.ts) and one SQL database. A driver only moves rows:
// it knows its dialect, its connection and its durability settings, nothing of compare-and-swap,
// revisions or watch semantics, which live once in log.ts (kine keeps one generic SQL layer under
// thin drivers the same way). Every backend stores the same table:
//   id               the global revision of the change (also the row's primary key)
//   name             the key, compared bytewise (SQLite's default; "C" collation elsewhere)
//   created/deleted  1 for the row that created the key / for a tombstone
//   create_revision  the key's createRevision
//   prev_revision    the id of the key's previous row (0 for a first create)
//   value            the JSON text (a tombstone repeats the last value)

export interface LogRow {
  id: number;
  name: string;
  created: boolean;
  deleted: boolean;
  createRevision: number;
  prevRevision: number;
  value: string;
}

/** A log row with its predecessor's value, as watch history needs it. */
export interface HistoryRow extends LogRow {
  /** The value of row `prevRevision` when the row is an update and that row still exists. */
  prevValue?: string;
  prevCreateRevision?: number;
}

/** What a write transaction decided, given the revision and the keys' latest rows read under its lock. */
export interface CommitPlan<T> {
  rows: LogRow[];
  /** The new global revision (the last row's id, or unchanged). */
  revision: number;
  /** Writes a health-probe row outside the log (a real commit that uses no revision). */
  probe: boolean;
  result: T;
}

export interface DriverState {
  /** The newest committed revision. */
  revision: number;
  /** Revisions at or below this are compacted. */
  compacted: number;
}

export interface Driver {
  /** Human name for logs and errors (`sqlite`, `postgres`). */
  readonly name: string;
  /** Connects, creates database and schema when missing. Fails with one clear message. */
  open(): Promise<DriverState>;
  /** The database's current revision and compaction mark (other servers may have moved them). */
  state(): Promise<DriverState>;
  /**
   * One durable write transaction, serialised with every other writer of the database (of every
   * server): takes the global write lock, reads the revision and the latest row of each of `keys`,
   * calls `plan` (synchronous, pure), writes its rows and new revision, commits. Resolves after the
   * commit is durable; rejects with nothing written.
   */
  commit<T>(keys: string[], plan: (revision: number, latest: Map<string, LogRow>) => CommitPlan<T>): Promise<T>;
  /** The latest row of `key`, tombstones included. */
  latest(key: string): Promise<LogRow | undefined>;
  /**
   * The latest live row of every key in [from, to) (`to` undefined: no upper bound), by key, with
   * the revision they reflect (read in one snapshot).
   */
  listLatest(from: string, to: string | undefined): Promise<{ revision: number; rows: LogRow[] }>;
  /**
   * The same rows handed to `each` as they are read, from one snapshot, with the revision it
   * reflects; drivers without it are read whole through `listLatest`.
   */
  eachLatest?(from: string, to: string | undefined, each: (row: LogRow) => void): Promise<number>;
  /** Rows with id in (after, upTo], by id, at most `limit`. */
  history(after: number, upTo: number, limit: number): Promise<HistoryRow[]>;
  /**
   * Removes rows made obsolete by rows with id in (from, to] (their predecessors, and tombstones),
   * looking at no more than `limit` rows; returns how far it got and how many rows it removed.
   * Records the new compaction mark in the same transaction.
   */
  compactStep(from: number, to: number, limit: number): Promise<{ upTo: number; removed: number }>;
  /** Bytes the database holds. */
  size(): Promise<number>;
  /**
   * Calls `onChange` soon after another process commits (Postgres LISTEN/NOTIFY). Drivers without
   * a push channel leave it undefined and the log layer polls. Resolves after the first attempt to
   * subscribe (failing or not: the driver keeps trying, and polling covers the gap).
   */
  subscribe?(onChange: () => void): Promise<void>;
  close(): Promise<void>;
}

/** The datastore cannot be reached or refused the operation (HTTP 503-class for clients). */
export class DatastoreUnavailableError extends Error {
  constructor(message: string, override readonly cause?: unknown) { super(message); }
}

/** An endpoint without its password, for messages. */
export function redact(endpoint: string): string {
  return endpoint.replace(/(\/\/[^:/@]*:)[^@/]*@/, '$1***@');
}
