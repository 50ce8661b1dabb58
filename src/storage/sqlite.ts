// The embedded datastore: a kine-style append-only log in one SQLite table. Every change is a row whose
// id is the global revision; the latest row of a key is its current state (a row with deleted=1 is a
// tombstone). Writes are group-committed: everything that arrives in one event-loop turn shares one
// transaction, so one fsync acknowledges hundreds of writes.
import { chmodSync, existsSync } from 'node:fs';
import Database from 'better-sqlite3';
import type { Backend, BackendEvent, KeyValue } from './types.js';
import { KeyExistsError, KeyNotFoundError, RevisionConflictError } from './types.js';
import { prefixEnd } from './keys.js';

export interface SqliteBackendOptions {
  /** Revisions the automatic compactor keeps (default 1000, as kine). */
  compactKeep?: number;
  log?: (msg: string, fields?: object) => void;
}

export interface SqliteStats {
  /** Write transactions committed (one per group commit that wrote something). */
  transactions: number;
  /** Changes committed. */
  writes: number;
  /** Rows removed by compaction. */
  compactedRows: number;
}

/** Ops per group commit: bounds how long one commit holds the event loop. */
const MAX_BATCH = 500;
/** Log rows examined per compaction transaction, so compaction never stalls requests for long. */
const COMPACT_BATCH = 500;

interface Row {
  id: number;
  name: string;
  created: number;
  deleted: number;
  create_revision: number;
  prev_revision: number;
  value: string;
}

interface HistoryRow extends Row {
  prev_value: string | null;
  prev_create_revision: number | null;
}

interface Op {
  /** 'probe': writes the time into a meta row (a real commit that uses no revision), for health checks. */
  type: 'create' | 'update' | 'delete' | 'probe';
  key: string;
  value?: string;
  expected?: number;
  resolve: (kv: KeyValue) => void;
  reject: (err: Error) => void;
}

interface BatchOutcome {
  results: (KeyValue | Error)[];
  events: BackendEvent[];
  revision: number;
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

const kvOf = (r: Row): KeyValue => ({ key: r.name, value: r.value, createRevision: r.create_revision, modRevision: r.id });

export class SqliteBackend implements Backend {
  readonly stats: SqliteStats = { transactions: 0, writes: 0, compactedRows: 0 };
  private db?: Database.Database;
  private stmts?: ReturnType<SqliteBackend['prepare']>;
  private commitBatch?: (batch: Op[]) => BatchOutcome;
  private rev = 0;
  private compacted = 0;
  private queue: Op[] = [];
  private flushScheduled = false;
  private closing = false;
  private readonly listeners: ((events: BackendEvent[]) => void)[] = [];
  private compactChain: Promise<void> = Promise.resolve();
  private autoCompact?: NodeJS.Timeout;
  private readonly log: (msg: string, fields?: object) => void;
  /** When the last transaction ended and how (health checks answer from it while it is fresh). */
  private lastCommit?: { at: number; error?: Error };
  private probing?: Promise<void>;

  constructor(readonly file: string, private readonly opts: SqliteBackendOptions = {}) {
    this.log = opts.log ?? (() => {});
  }

  async start(): Promise<void> {
    const db = new Database(this.file);
    db.pragma('journal_mode = WAL');
    // The datastore holds every Secret: owner-only, also the WAL and shared-memory files (issue 11).
    for (const f of [this.file, `${this.file}-wal`, `${this.file}-shm`]) if (existsSync(f)) chmodSync(f, 0o600);
    // FULL: a commit is fsynced before we acknowledge it, so an acknowledged write survives power loss.
    db.pragma('synchronous = FULL');
    db.pragma('busy_timeout = 5000');
    // Checkpoints would otherwise leave the WAL at its high-water mark forever.
    db.pragma('journal_size_limit = 67108864');
    db.exec(SCHEMA);
    this.db = db;
    this.stmts = this.prepare(db);
    this.commitBatch = this.makeCommit(db);
    const meta = this.stmts.meta;
    const maxId = (db.prepare('SELECT MAX(id) AS m FROM kv').get() as { m: number | null }).m ?? 0;
    // The meta row is written in every commit; max(id) covers a database written by an older layout.
    this.rev = Math.max((meta.get('revision') as { v: number }).v, maxId);
    this.compacted = (meta.get('compacted') as { v: number }).v;
    this.log('sqlite datastore opened', { file: this.file, revision: this.rev, compacted: this.compacted });
  }

  private prepare(db: Database.Database) {
    return {
      meta: db.prepare('SELECT v FROM meta WHERE k = ?'),
      setMeta: db.prepare('UPDATE meta SET v = ? WHERE k = ?'),
      // A changing value: SQLite writes nothing for an update that leaves the row as it was.
      probe: db.prepare(`INSERT INTO meta (k, v) VALUES ('health-probe', ?) ON CONFLICT (k) DO UPDATE SET v = excluded.v`),
      latest: db.prepare('SELECT * FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1'),
      insert: db.prepare(
        'INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      listLatest: db.prepare(
        `SELECT * FROM kv k WHERE k.name >= ? AND k.name < ? AND k.deleted = 0
           AND k.id = (SELECT MAX(id) FROM kv WHERE name = k.name) ORDER BY k.name`,
      ),
      history: db.prepare(
        `SELECT k.*, p.value AS prev_value, p.create_revision AS prev_create_revision
           FROM kv k LEFT JOIN kv p ON p.id = k.prev_revision AND k.created = 0
          WHERE k.id > ? ORDER BY k.id LIMIT ?`,
      ),
      compactScan: db.prepare('SELECT id, deleted, prev_revision FROM kv WHERE id > ? AND id <= ? ORDER BY id LIMIT ?'),
      deleteRow: db.prepare('DELETE FROM kv WHERE id = ?'),
      pageCount: db.prepare('PRAGMA page_count'),
      pageSize: db.prepare('PRAGMA page_size'),
    };
  }

  private get s() {
    if (!this.stmts) throw new Error('sqlite datastore is not started');
    return this.stmts;
  }

  currentRevision(): number {
    return this.rev;
  }

  compactedRevision(): number {
    return this.compacted;
  }

  async listLatest(prefix: string): Promise<{ revision: number; kvs: KeyValue[] }> {
    const upper = prefixEnd(prefix) ?? '\u{10FFFF}';
    const rows = this.s.listLatest.all(prefix, upper) as Row[];
    return { revision: this.rev, kvs: rows.map(kvOf) };
  }

  async history(afterRevision: number, limit: number): Promise<BackendEvent[]> {
    const rows = this.s.history.all(afterRevision, limit) as HistoryRow[];
    return rows.map((r): BackendEvent => {
      const kv = kvOf(r);
      if (r.created) return { type: 'create', kv };
      if (r.deleted) {
        // A tombstone carries the last value, so the state before it needs no join.
        return { type: 'delete', kv, prev: { ...kv, modRevision: r.prev_revision } };
      }
      const prev = r.prev_value === null
        ? undefined
        : { key: r.name, value: r.prev_value, createRevision: r.prev_create_revision!, modRevision: r.prev_revision };
      return { type: 'update', kv, prev };
    });
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const row = this.s.latest.get(key) as Row | undefined;
    return row && !row.deleted ? kvOf(row) : undefined;
  }

  create(key: string, value: string): Promise<KeyValue> {
    return this.enqueue({ type: 'create', key, value });
  }

  update(key: string, value: string, expectedModRevision: number): Promise<KeyValue> {
    return this.enqueue({ type: 'update', key, value, expected: expectedModRevision });
  }

  delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    return this.enqueue({ type: 'delete', key, expected: expectedModRevision });
  }

  onCommit(listener: (events: BackendEvent[]) => void): void {
    this.listeners.push(listener);
  }

  /**
   * Resolves when the database answers a read and takes a write; rejects with the reason otherwise.
   * A transaction that ended within `maxAgeMs` answers for the write side (either way), so health
   * probes add no fsync while the server is writing anyway and don't hammer a failing disk; else one
   * probe commit goes through the commit queue, shared by concurrent callers.
   */
  async checkHealth(maxAgeMs = 1000): Promise<void> {
    if (this.closing || !this.db) throw new Error('sqlite datastore is not open');
    this.s.meta.get('revision');   // reachable: throws when the file cannot be read
    const last = this.lastCommit;
    if (last && Date.now() - last.at < maxAgeMs) {
      if (last.error) throw last.error;
      return;
    }
    this.probing ??= this.enqueue({ type: 'probe', key: '' }).then(() => undefined).finally(() => { this.probing = undefined; });
    return this.probing;
  }

  private enqueue(op: Omit<Op, 'resolve' | 'reject'>): Promise<KeyValue> {
    if (this.closing || !this.db) return Promise.reject(new Error('sqlite datastore is not open'));
    return new Promise((resolve, reject) => {
      this.queue.push({ ...op, resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  private flush(): void {
    this.flushScheduled = false;
    const batch = this.queue.length <= MAX_BATCH ? this.queue : this.queue.slice(0, MAX_BATCH);
    this.queue = this.queue.length <= MAX_BATCH ? [] : this.queue.slice(MAX_BATCH);
    if (this.queue.length) this.scheduleFlush();
    let outcome: BatchOutcome;
    try {
      outcome = this.commitBatch!(batch);
    } catch (err) {
      // Nothing of the batch is durable; the revision counter was never advanced.
      this.log('sqlite commit failed', { err: String(err), ops: batch.length });
      this.lastCommit = { at: Date.now(), error: err as Error };
      for (const op of batch) op.reject(err as Error);
      return;
    }
    this.lastCommit = { at: Date.now() };
    this.rev = outcome.revision;
    if (outcome.events.length) {
      this.stats.transactions++;
      this.stats.writes += outcome.events.length;
      for (const listener of this.listeners) {
        try {
          listener(outcome.events);
        } catch (err) {
          this.log('commit listener failed', { err: String(err) });
        }
      }
    }
    outcome.results.forEach((r, i) => (r instanceof Error ? batch[i].reject(r) : batch[i].resolve(r)));
  }

  /** One transaction for a whole batch: each op is checked against the state the ops before it left. */
  private makeCommit(db: Database.Database): (batch: Op[]) => BatchOutcome {
    const tx = db.transaction((batch: Op[]): BatchOutcome => {
      const s = this.s;
      const latest = new Map<string, Row | undefined>();
      const results: (KeyValue | Error)[] = [];
      const events: BackendEvent[] = [];
      let rev = this.rev;
      for (const op of batch) {
        if (op.type === 'probe') {
          s.probe.run(Date.now());
          results.push({ key: '', value: '', createRevision: 0, modRevision: rev });
          continue;
        }
        let cur: Row | undefined;
        if (latest.has(op.key)) cur = latest.get(op.key);
        else cur = s.latest.get(op.key) as Row | undefined;
        const live = cur && !cur.deleted ? cur : undefined;
        let row: Row;
        if (op.type === 'create') {
          if (live) { results.push(new KeyExistsError(op.key)); continue; }
          rev++;
          row = { id: rev, name: op.key, created: 1, deleted: 0, create_revision: rev, prev_revision: cur?.id ?? 0, value: op.value! };
        } else {
          if (!live) { results.push(new KeyNotFoundError(op.key)); continue; }
          if (op.expected !== undefined && live.id !== op.expected) {
            results.push(new RevisionConflictError(op.key, kvOf(live)));
            continue;
          }
          rev++;
          const deleting = op.type === 'delete';
          row = {
            id: rev, name: op.key, created: 0, deleted: deleting ? 1 : 0,
            create_revision: live.create_revision, prev_revision: live.id,
            value: deleting ? live.value : op.value!,
          };
        }
        s.insert.run(row.id, row.name, row.created, row.deleted, row.create_revision, row.prev_revision, row.value);
        latest.set(op.key, row);
        const kv = kvOf(row);
        results.push(kv);
        events.push(op.type === 'create' ? { type: 'create', kv } : { type: op.type, kv, prev: kvOf(live!) });
      }
      // Kept apart from max(id) so the counter never goes back when compaction removes the newest row.
      if (rev !== this.rev) s.setMeta.run(rev, 'revision');
      return { results, events, revision: rev };
    });
    return (batch) => tx.immediate(batch);
  }

  /**
   * Removes rows superseded at `revision` and tombstones at or below it. Walking the log from the last
   * compacted revision, each row makes its predecessor (prev_revision) obsolete; a row is never removed
   * while a newer-than-`revision` row still points at it, so history() keeps every prev value it needs.
   */
  compact(revision: number): Promise<void> {
    // One compaction at a time; a failed one must not block the next.
    const run = this.compactChain.catch(() => {}).then(() => this.compactTo(revision));
    this.compactChain = run;
    return run;
  }

  private async compactTo(revision: number): Promise<void> {
    const target = Math.min(revision, this.rev);
    if (target <= this.compacted || !this.db) return;
    const s = this.s;
    const step = this.db.transaction((rows: { id: number; deleted: number; prev_revision: number }[], upTo: number) => {
      let removed = 0;
      for (const r of rows) {
        if (r.prev_revision) removed += s.deleteRow.run(r.prev_revision).changes;
        if (r.deleted) removed += s.deleteRow.run(r.id).changes;
      }
      s.setMeta.run(upTo, 'compacted');
      return removed;
    });
    const started = this.compacted;
    let removed = 0;
    while (this.compacted < target && !this.closing) {
      const rows = s.compactScan.all(this.compacted, target, COMPACT_BATCH) as { id: number; deleted: number; prev_revision: number }[];
      const upTo = rows.length < COMPACT_BATCH ? target : rows[rows.length - 1].id;
      removed += step(rows, upTo);
      this.compacted = upTo;
      // Let queued requests and commits run between slices.
      await new Promise((r) => setImmediate(r));
    }
    this.stats.compactedRows += removed;
    this.log('sqlite compacted', { from: started, to: this.compacted, removedRows: removed });
  }

  /** Compacts every `intervalMs`, keeping the last `keepRevisions` revisions (kine's defaults). */
  startAutoCompact(intervalMs = 5 * 60_000, keepRevisions = this.opts.compactKeep ?? 1000): void {
    this.stopAutoCompact();
    this.autoCompact = setInterval(() => {
      const target = this.rev - keepRevisions;
      if (target > this.compacted) {
        this.compact(target).catch((err) => this.log('sqlite compaction failed', { err: String(err) }));
      }
    }, intervalMs);
    this.autoCompact.unref();
  }

  stopAutoCompact(): void {
    if (this.autoCompact) clearInterval(this.autoCompact);
    this.autoCompact = undefined;
  }

  async dbSize(): Promise<number> {
    const pages = this.s.pageCount.pluck().get() as number;
    return pages * (this.s.pageSize.pluck().get() as number);
  }

  /** Commits what is queued, stops compaction, closes the file. */
  async close(): Promise<void> {
    if (!this.db || this.closing) return;
    this.closing = true;
    this.stopAutoCompact();
    while (this.flushScheduled) await new Promise((r) => setImmediate(r));
    await this.compactChain.catch(() => {});
    this.db.close();
    this.db = undefined;
    this.stmts = undefined;
  }
}
