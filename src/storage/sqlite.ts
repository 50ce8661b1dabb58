// The embedded datastore's driver: the log table in one SQLite file in WAL mode. better-sqlite3 is
// synchronous: a whole group commit runs in one event-loop turn under BEGIN IMMEDIATE, which is the
// database's write lock. An acknowledged write survives power loss: the commit is fsynced before it
// resolves, but off the event loop (see `commit`).
import { chmodSync, existsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import Database from 'better-sqlite3';
import type { CommitPlan, Driver, DriverState, HistoryRow, LogRow } from './driver.js';
import { LogBackend, type LogBackendOptions, type LogStats } from './log.js';
import { SqliteCheckpointer, type CheckpointStats } from './sqlite-checkpointer.js';

export interface SqliteDriverOptions {
  /**
   * WAL checkpoints in a worker thread (sqlite-checkpointer.ts) instead of inside the commits of the
   * server's thread. Off for a small board: the worker's own heap costs memory there.
   */
  checkpointInWorker?: boolean;
  log?: (msg: string, fields?: object) => void;
}
export type SqliteBackendOptions = LogBackendOptions & Pick<SqliteDriverOptions, 'checkpointInWorker'>;
export type SqliteStats = LogStats;

interface Row {
  id: number;
  name: string;
  created: number;
  deleted: number;
  create_revision: number;
  prev_revision: number;
  value: string;
}

interface JoinedRow extends Row {
  prev_value: string | null;
  prev_create_revision: number | null;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS kv (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL,
  created INTEGER NOT NULL,
  deleted INTEGER NOT NULL,
  create_revision INTEGER NOT NULL,
  prev_revision INTEGER NOT NULL,
  value TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id);
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v INTEGER NOT NULL);
INSERT OR IGNORE INTO meta (k, v) VALUES ('revision', 0), ('compacted', 0);
`;

const rowOf = (r: Row): LogRow => ({
  id: r.id, name: r.name, created: r.created === 1, deleted: r.deleted === 1,
  createRevision: r.create_revision, prevRevision: r.prev_revision, value: r.value,
});

export class SqliteDriver implements Driver {
  readonly name = 'sqlite';
  private db?: Database.Database;
  private stmts?: ReturnType<SqliteDriver['prepare']>;
  /** The WAL file, opened once, for the fsync that makes each commit durable. */
  private wal?: FileHandle;
  private checkpointer?: SqliteCheckpointer;

  constructor(readonly file: string, private readonly opts: SqliteDriverOptions = {}) {}

  /** The checkpoint worker's counters, when checkpoints run there. */
  get checkpoints(): CheckpointStats | undefined {
    return this.checkpointer?.stats;
  }

  /** Resolves once a checkpoint has run in the worker (at once when checkpoints run in the commits). */
  async checkpointNow(): Promise<void> {
    await this.checkpointer?.checkpointNow();
  }

  async open(): Promise<DriverState> {
    const db = new Database(this.file);
    db.pragma('journal_mode = WAL');
    // The datastore holds every Secret: owner-only, also the WAL and shared-memory files (issue 11).
    for (const f of [this.file, `${this.file}-wal`, `${this.file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
    // NORMAL: SQLite itself fsyncs only around checkpoints (so a checkpoint never loses what the WAL
    // held); each commit's own fsync of the WAL is ours, in `commit`, on libuv's thread pool. With
    // FULL, SQLite fsyncs inside COMMIT on the event loop: at 500 Lease renewals a second that
    // blocked the whole server for a quarter of its time (a CPU profile at 300 hollow nodes).
    db.pragma('synchronous = NORMAL');
    // SQLite waits for a busy lock by sleeping in the calling thread: the event loop. Its own wait is
    // kept short; longer waits (another process holding the write lock) are retried on a timer by
    // `whenUnlocked`, so the server keeps answering meanwhile.
    db.pragma(`busy_timeout = ${BUSY_SPIN_MS}`);
    // Compacted and deleted rows (old plaintext Secrets among them) are zeroed, not left in free pages.
    db.pragma('secure_delete = ON');
    // Checkpoints would otherwise leave the WAL at its high-water mark forever.
    db.pragma('journal_size_limit = 67108864');
    db.exec(SCHEMA);
    if (this.opts.checkpointInWorker) this.checkpointer = new SqliteCheckpointer(this.file, db, this.opts.log);
    this.db = db;
    this.stmts = this.prepare(db);
    const maxId = (db.prepare('SELECT MAX(id) AS m FROM kv').get() as { m: number | null }).m ?? 0;
    const state = this.readState();
    // The meta row is written in every commit; max(id) covers a database written by an older layout.
    return { ...state, revision: Math.max(state.revision, maxId) };
  }

  private prepare(db: Database.Database) {
    return {
      meta: db.prepare('SELECT v FROM meta WHERE k = ?').pluck(),
      setMeta: db.prepare('UPDATE meta SET v = ? WHERE k = ?'),
      // A changing value: SQLite writes nothing for an update that leaves the row as it was.
      probe: db.prepare(`INSERT INTO meta (k, v) VALUES ('health-probe', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`),
      latest: db.prepare('SELECT * FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1'),
      insert: db.prepare(
        'INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      // Newest row per key from the (name, id) index alone, then only those rows: a scan of the
      // table would read every revision kept since the last compaction (1.5 → 1.0 s for 42,000 keys
      // among 200,000 rows, on a restart at 5,000 nodes).
      listLatest: db.prepare(
        `SELECT k.* FROM (SELECT MAX(id) AS id FROM kv WHERE name >= ? AND name < ? GROUP BY name) m
           JOIN kv k ON k.id = m.id WHERE k.deleted = 0 ORDER BY k.name`,
      ),
      history: db.prepare(
        `SELECT k.*, p.value AS prev_value, p.create_revision AS prev_create_revision
           FROM kv k LEFT JOIN kv p ON p.id = k.prev_revision AND k.created = 0
          WHERE k.id > ? AND k.id <= ? ORDER BY k.id LIMIT ?`,
      ),
      compactScan: db.prepare('SELECT id, deleted, prev_revision FROM kv WHERE id > ? AND id <= ? ORDER BY id LIMIT ?'),
      deleteRow: db.prepare('DELETE FROM kv WHERE id = ?'),
      pageCount: db.prepare('PRAGMA page_count').pluck(),
      pageSize: db.prepare('PRAGMA page_size').pluck(),
    };
  }

  private get s() {
    if (!this.stmts) throw new Error('sqlite datastore is not open');
    return this.stmts;
  }

  private readState(): DriverState {
    return { revision: this.s.meta.get('revision') as number, compacted: this.s.meta.get('compacted') as number };
  }

  async state(): Promise<DriverState> {
    return this.readState();
  }

  async commit<T>(keys: string[], plan: (revision: number, latest: Map<string, LogRow>) => CommitPlan<T>): Promise<T> {
    const s = this.s;
    let written = 0;
    const tx = this.db!.transaction((): T => {
      written = 0;   // a busy database runs this again
      const latest = new Map<string, LogRow>();
      for (const key of keys) {
        const row = s.latest.get(key) as Row | undefined;
        if (row) latest.set(key, rowOf(row));
      }
      const revision = s.meta.get('revision') as number;
      const p = plan(revision, latest);
      if (p.probe) s.probe.run(Date.now());
      for (const r of p.rows) {
        s.insert.run(r.id, r.name, r.created ? 1 : 0, r.deleted ? 1 : 0, r.createRevision, r.prevRevision, r.value);
        written += r.value.length + ROW_OVERHEAD_BYTES;
      }
      // Kept apart from max(id) so the counter never goes back when compaction removes the newest row.
      if (p.revision !== revision) s.setMeta.run(p.revision, 'revision');
      return p.result;
    });
    const result = await whenUnlocked(() => tx.immediate());
    this.checkpointer?.wrote(written + COMMIT_OVERHEAD_BYTES);
    // The commit's frames are in the WAL (in the page cache: they already survive a kill -9); the
    // fsync puts them on disk before the caller acknowledges anything. fsync covers the whole file
    // whichever descriptor asks, so our read-only one does. The next batch waits for this one (the
    // log layer commits one batch at a time), so requests keep being served meanwhile and simply
    // join a bigger next batch. A failed fsync rejects: the rows may or may not survive, as with a
    // connection lost during COMMIT (the log layer's catch-up finds them if they do).
    this.wal ??= await open(`${this.file}-wal`, 'r');
    await this.wal.datasync();
    return result;
  }

  async latest(key: string): Promise<LogRow | undefined> {
    const row = this.s.latest.get(key) as Row | undefined;
    return row && rowOf(row);
  }

  async listLatest(from: string, to: string | undefined): Promise<{ revision: number; rows: LogRow[] }> {
    const rows = this.s.listLatest.all(from, to ?? '\u{10FFFF}') as Row[];
    return { revision: this.readState().revision, rows: rows.map(rowOf) };
  }

  /**
   * One statement stepped row by row: a row's text dies young once `each` has parsed it. Read whole,
   * 5,000 nodes' and 50,000 pods' texts all lived until the last was parsed, and V8 copied them
   * through its young generation into the old one first (docs/scale.md item 27). Synchronous, so no
   * commit of this process comes between the rows and the revision read after them.
   */
  async eachLatest(from: string, to: string | undefined, each: (row: LogRow) => void): Promise<number> {
    for (const row of this.s.listLatest.iterate(from, to ?? '\u{10FFFF}') as IterableIterator<Row>) each(rowOf(row));
    return this.readState().revision;
  }

  async history(after: number, upTo: number, limit: number): Promise<HistoryRow[]> {
    const rows = this.s.history.all(after, upTo, limit) as JoinedRow[];
    return rows.map((r) => ({
      ...rowOf(r),
      prevValue: r.prev_value ?? undefined,
      prevCreateRevision: r.prev_create_revision ?? undefined,
    }));
  }

  async compactStep(from: number, to: number, limit: number): Promise<{ upTo: number; removed: number }> {
    const s = this.s;
    const rows = s.compactScan.all(from, to, limit) as { id: number; deleted: number; prev_revision: number }[];
    const upTo = rows.length < limit ? to : rows[rows.length - 1].id;
    const removed = await whenUnlocked(this.db!.transaction(() => {
      let n = 0;
      for (const r of rows) {
        if (r.prev_revision) n += s.deleteRow.run(r.prev_revision).changes;
        if (r.deleted) n += s.deleteRow.run(r.id).changes;
      }
      s.setMeta.run(upTo, 'compacted');
      return n;
    }));
    // secure_delete zeroes what a removed row held: about a page each.
    this.checkpointer?.wrote(removed * 4096);
    return { upTo, removed };
  }

  async size(): Promise<number> {
    return (this.s.pageCount.get() as number) * (this.s.pageSize.get() as number);
  }

  async close(): Promise<void> {
    await this.checkpointer?.close();
    this.checkpointer = undefined;
    await this.wal?.close().catch(() => {});
    this.wal = undefined;
    this.db?.close();
    this.db = undefined;
    this.stmts = undefined;
  }
}

/**
 * What the WAL gets besides the rows' values, roughly: a row's header and index entry, and per commit
 * the pages every commit rewrites (the meta row's, the table's and index's inner pages).
 */
const ROW_OVERHEAD_BYTES = 128;
const COMMIT_OVERHEAD_BYTES = 3 * 4096;

/** How long SQLite itself waits for a lock, blocking the thread (and so the event loop). */
const BUSY_SPIN_MS = 20;
/** How long a write waits in all for another connection's write lock before it fails ("database is locked"). */
const BUSY_BUDGET_MS = 5000;

/**
 * Runs a write transaction, retrying on a timer while another connection holds the write lock, for
 * up to BUSY_BUDGET_MS. A blocking wait of 5 s per attempt (SQLite's busy timeout) once froze the
 * whole server: TLS handshakes that needed two turns of the event loop ran past their timeout.
 */
async function whenUnlocked<T>(tx: () => T): Promise<T> {
  const t0 = Date.now();
  for (let delay = 10; ; delay = Math.min(delay * 2, 200)) {
    try {
      return tx();
    } catch (err) {
      if ((err as { code?: string }).code !== 'SQLITE_BUSY' || Date.now() - t0 >= BUSY_BUDGET_MS) throw err;
    }
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
}

/** The embedded datastore: the generic log over one SQLite file. */
export class SqliteBackend extends LogBackend {
  constructor(override readonly file: string, opts: SqliteBackendOptions = {}) {
    super(new SqliteDriver(file, { checkpointInWorker: opts.checkpointInWorker, log: opts.log }), opts);
  }
}
