// The generic log layer: one revisioned key-value log (the Backend contract) over any SQL driver.
// Here and only here live the rules every datastore shares:
//  - compare-and-swap: a create needs the key absent, an update/delete its expected modRevision;
//  - group commit: every write that arrives in one event-loop turn (and, with a network database,
//    every write that arrives while the previous commit is in flight) shares one transaction;
//  - one global revision, handed to listeners strictly in order: our own commits and other servers'
//    commits (found by the driver's notification or by polling) go through one ordered path, so the
//    watch cache sees revision N only after N-1, whoever wrote it;
//  - the compaction policy and its schedule.
// The driver (driver.ts) moves rows; see sqlite.ts and postgres.ts.
import type { Backend, BackendEvent, KeyValue } from './types.js';
import { KeyExistsError, KeyNotFoundError, RevisionConflictError } from './types.js';
import type { CommitPlan, Driver, HistoryRow, LogRow } from './driver.js';
import { prefixEnd } from './keys.js';

export interface LogBackendOptions {
  /** Revisions the automatic compactor keeps (default 1000, as kine). */
  compactKeep?: number;
  /** How often the automatic compactor runs once started (default 5 min, as kine). */
  compactIntervalMs?: number;
  /**
   * How often to look for other servers' commits (0: never, a single-process database). With a
   * push channel (driver.subscribe) this is only the fallback for a lost notification.
   */
  pollIntervalMs?: number;
  /** Ops per group commit: bounds how long one commit holds the event loop (default 500). */
  maxBatch?: number;
  log?: (msg: string, fields?: object) => void;
}

export interface LogStats {
  /** Write transactions committed (one per group commit that wrote something). */
  transactions: number;
  /** Changes committed. */
  writes: number;
  /** Rows removed by compaction. */
  compactedRows: number;
}

/** Log rows examined per compaction transaction, so compaction never stalls requests for long. */
const COMPACT_BATCH = 500;
/** Rows read per catch-up query. */
const CATCH_UP_BATCH = 1000;

interface Op {
  /** 'probe': a real commit that uses no revision, for health checks. */
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
}

const kvOf = (r: LogRow): KeyValue => ({ key: r.name, value: r.value, createRevision: r.createRevision, modRevision: r.id });

/** A stored row as the change it records. */
export function eventOf(r: HistoryRow): BackendEvent {
  const kv = kvOf(r);
  if (r.created) return { type: 'create', kv };
  // A tombstone carries the last value, so the state before it needs no join.
  if (r.deleted) return { type: 'delete', kv, prev: { ...kv, modRevision: r.prevRevision } };
  const prev = r.prevValue === undefined
    ? undefined
    : { key: r.name, value: r.prevValue, createRevision: r.prevCreateRevision ?? r.createRevision, modRevision: r.prevRevision };
  return { type: 'update', kv, prev };
}

/**
 * The compare-and-swap rules for one batch, given the revision and each key's latest row read under
 * the database's write lock. Each op sees the state the ops before it left; a failing op fails alone.
 */
export function planBatch(batch: readonly Op[], revision: number, latest: Map<string, LogRow>): CommitPlan<BatchOutcome> {
  const current = new Map<string, LogRow | undefined>(latest);
  const rows: LogRow[] = [];
  const results: (KeyValue | Error)[] = [];
  const events: BackendEvent[] = [];
  let rev = revision;
  let probe = false;
  for (const op of batch) {
    if (op.type === 'probe') {
      probe = true;
      results.push({ key: '', value: '', createRevision: 0, modRevision: rev });
      continue;
    }
    const cur = current.get(op.key);
    const live = cur && !cur.deleted ? cur : undefined;
    let row: LogRow;
    if (op.type === 'create') {
      if (live) { results.push(new KeyExistsError(op.key)); continue; }
      rev++;
      row = { id: rev, name: op.key, created: true, deleted: false, createRevision: rev, prevRevision: cur?.id ?? 0, value: op.value! };
    } else {
      if (!live) { results.push(new KeyNotFoundError(op.key)); continue; }
      if (op.expected !== undefined && live.id !== op.expected) {
        results.push(new RevisionConflictError(op.key, kvOf(live)));
        continue;
      }
      rev++;
      const deleting = op.type === 'delete';
      row = {
        id: rev, name: op.key, created: false, deleted: deleting,
        createRevision: live.createRevision, prevRevision: live.id, value: deleting ? live.value : op.value!,
      };
    }
    rows.push(row);
    current.set(op.key, row);
    const kv = kvOf(row);
    results.push(kv);
    events.push(op.type === 'create' ? { type: 'create', kv } : { type: op.type, kv, prev: kvOf(live!) });
  }
  return { rows, revision: rev, probe, result: { results, events } };
}

export class LogBackend implements Backend {
  readonly stats: LogStats = { transactions: 0, writes: 0, compactedRows: 0 };
  /** The database file, for drivers that keep one (SQLite). */
  declare readonly file?: string;
  /** The revision of the last change handed to listeners. */
  private applied = 0;
  private compacted = 0;
  private open = false;
  private closing = false;
  private queue: Op[] = [];
  private flushScheduled = false;
  private inFlight?: Promise<void>;
  private readonly listeners: ((events: BackendEvent[]) => void)[] = [];
  /** Catch-ups and out-of-order own commits run one after another through here. */
  private ordered: Promise<void> = Promise.resolve();
  private orderedPending = 0;
  private compactChain: Promise<void> = Promise.resolve();
  private autoCompact?: NodeJS.Timeout;
  private pollTimer?: NodeJS.Timeout;
  private pollSoon = false;
  private pollFailing = false;
  private readonly log: (msg: string, fields?: object) => void;
  private readonly maxBatch: number;
  /** When the last transaction ended and how (health checks answer from it while it is fresh). */
  private lastCommit?: { at: number; error?: Error };
  private probing?: Promise<void>;

  constructor(readonly driver: Driver, private readonly opts: LogBackendOptions = {}) {
    this.log = opts.log ?? (() => {});
    this.maxBatch = opts.maxBatch ?? 500;
  }

  async start(): Promise<void> {
    let state;
    try {
      state = await this.driver.open();
    } catch (err) {
      // Leave no connection or timer behind: the caller exits with the error.
      await this.driver.close().catch(() => {});
      throw err;
    }
    this.applied = state.revision;
    this.compacted = state.compacted;
    this.open = true;
    await this.driver.subscribe?.(() => this.schedulePoll());
    const every = this.opts.pollIntervalMs ?? 0;
    if (every > 0) {
      this.pollTimer = setInterval(() => this.schedulePoll(), every);
      this.pollTimer.unref();
    }
    this.log(`${this.driver.name} datastore opened`, { revision: this.applied, compacted: this.compacted });
  }

  currentRevision(): number {
    return this.applied;
  }

  compactedRevision(): number {
    return this.compacted;
  }

  async listLatest(prefix: string): Promise<{ revision: number; kvs: KeyValue[] }> {
    const { revision, rows } = await this.driver.listLatest(prefix, prefixEnd(prefix));
    return { revision, kvs: rows.map(kvOf) };
  }

  async eachLatest(prefix: string, each: (kv: KeyValue) => void): Promise<number> {
    if (this.driver.eachLatest) return this.driver.eachLatest(prefix, prefixEnd(prefix), (row) => each(kvOf(row)));
    const { revision, kvs } = await this.listLatest(prefix);
    for (const kv of kvs) each(kv);
    return revision;
  }

  async history(afterRevision: number, limit: number): Promise<BackendEvent[]> {
    const rows = await this.driver.history(afterRevision, Number.MAX_SAFE_INTEGER, limit);
    return rows.map(eventOf);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    this.assertOpen();
    const row = await this.driver.latest(key);
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
   * probes add no commit while the server is writing anyway and don't hammer a failing database;
   * else one probe commit goes through the commit queue, shared by concurrent callers.
   */
  async checkHealth(maxAgeMs = 1000): Promise<void> {
    this.assertOpen();
    await this.driver.state();
    const last = this.lastCommit;
    if (last && Date.now() - last.at < maxAgeMs) {
      if (last.error) throw last.error;
      return;
    }
    this.probing ??= this.enqueue({ type: 'probe', key: '' }).then(() => undefined).finally(() => { this.probing = undefined; });
    return this.probing;
  }

  private assertOpen(): void {
    if (this.closing || !this.open) throw new Error(`${this.driver.name} datastore is not open`);
  }

  private enqueue(op: Omit<Op, 'resolve' | 'reject'>): Promise<KeyValue> {
    if (this.closing || !this.open) return Promise.reject(new Error(`${this.driver.name} datastore is not open`));
    return new Promise((resolve, reject) => {
      this.queue.push({ ...op, resolve, reject });
      this.scheduleFlush();
    });
  }

  private scheduleFlush(): void {
    if (this.flushScheduled || this.inFlight) return;
    this.flushScheduled = true;
    setImmediate(() => this.flush());
  }

  /** Commits the queue's head as one transaction; the next batch starts when this one has ended. */
  private flush(): void {
    this.flushScheduled = false;
    if (!this.queue.length) return;
    const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = this.queue.length <= this.maxBatch ? [] : this.queue.slice(this.maxBatch);
    const keys = [...new Set(batch.filter((op) => op.type !== 'probe').map((op) => op.key))];
    const done = this.driver.commit(keys, (revision, latest) => planBatch(batch, revision, latest)).then(
      (outcome) => this.committed(batch, outcome),
      (err: Error) => {
        // Nothing of the batch is durable (or, for a connection lost during COMMIT, it may be: the
        // catch-up finds such rows by their revision, as it finds other servers' rows).
        this.log(`${this.driver.name} commit failed`, { err: String(err), ops: batch.length });
        this.lastCommit = { at: Date.now(), error: err };
        for (const op of batch) op.reject(err);
      },
    ).finally(() => {
      this.inFlight = undefined;
      if (this.queue.length) this.scheduleFlush();
    });
    this.inFlight = done;
  }

  private committed(batch: Op[], outcome: BatchOutcome): Promise<void> | void {
    this.lastCommit = { at: Date.now() };
    const settle = () => outcome.results.forEach((r, i) => (r instanceof Error ? batch[i].reject(r) : batch[i].resolve(r)));
    const { events } = outcome;
    if (!events.length) return settle();
    this.stats.transactions++;
    this.stats.writes += events.length;
    const first = events[0].kv.modRevision;
    if (this.orderedPending === 0 && first === this.applied + 1) {
      // The common case: nobody else wrote in between, hand the batch over right away.
      this.emit(events);
      return settle();
    }
    // Another server committed the revisions before ours: apply those first.
    return this.inOrder(async () => {
      await this.catchUpTo(first - 1);
      this.emit(events.filter((e) => e.kv.modRevision > this.applied));
    }).then(settle, (err: Error) => {
      // Our rows are durable; listeners get them with the next successful catch-up.
      this.log(`${this.driver.name} catch-up failed`, { err: String(err) });
      settle();
    });
  }

  private inOrder(fn: () => Promise<void>): Promise<void> {
    this.orderedPending++;
    const run = this.ordered.catch(() => {}).then(fn).finally(() => { this.orderedPending--; });
    this.ordered = run;
    return run;
  }

  private emit(events: BackendEvent[]): void {
    if (!events.length) return;
    this.applied = events[events.length - 1].kv.modRevision;
    for (const listener of this.listeners) {
      try {
        listener(events);
      } catch (err) {
        this.log('commit listener failed', { err: String(err) });
      }
    }
  }

  /** Hands listeners every change in (applied, target] that is still in the log. */
  private async catchUpTo(target: number): Promise<void> {
    while (this.applied < target && !this.closing) {
      const rows = await this.driver.history(this.applied, target, CATCH_UP_BATCH);
      if (!rows.length) {
        // The rest was compacted away before we read it: nothing left to replay.
        this.log(`${this.driver.name} catch-up found a compacted range`, { from: this.applied, to: target });
        this.applied = target;
        return;
      }
      this.emit(rows.map(eventOf));
    }
  }

  private schedulePoll(): void {
    if (this.pollSoon || this.closing || !this.open) return;
    this.pollSoon = true;
    setImmediate(() => {
      this.pollSoon = false;
      this.poll().then(() => {
        if (this.pollFailing) this.log(`${this.driver.name} reachable again`);
        this.pollFailing = false;
      }, (err) => {
        // Once per outage, not once per poll.
        if (!this.pollFailing) this.log(`${this.driver.name} poll failed; retrying`, { err: String(err) });
        this.pollFailing = true;
      });
    });
  }

  /** Looks for commits of other servers (and compaction they ran). */
  async poll(): Promise<void> {
    if (this.closing || !this.open) return;
    const state = await this.driver.state();
    if (state.compacted > this.compacted) this.compacted = state.compacted;
    if (state.revision > this.applied) await this.inOrder(() => this.catchUpTo(state.revision));
  }

  /**
   * Removes rows superseded at `revision` and tombstones at or below it. Walking the log from the last
   * compacted revision, each row makes its predecessor (prevRevision) obsolete; a row is never removed
   * while a newer-than-`revision` row still points at it, so history() keeps every prev value it needs.
   */
  compact(revision: number): Promise<void> {
    // One compaction at a time; a failed one must not block the next.
    const run = this.compactChain.catch(() => {}).then(() => this.compactTo(revision));
    this.compactChain = run;
    return run;
  }

  private async compactTo(revision: number): Promise<void> {
    const target = Math.min(revision, this.applied);
    if (target <= this.compacted || !this.open) return;
    const started = this.compacted;
    let removed = 0;
    while (this.compacted < target && !this.closing) {
      const step = await this.driver.compactStep(this.compacted, target, COMPACT_BATCH);
      removed += step.removed;
      this.stats.compactedRows += step.removed;
      this.compacted = Math.max(this.compacted, step.upTo);
      // Let queued requests and commits run between slices.
      await new Promise((r) => setImmediate(r));
    }
    this.log(`${this.driver.name} compacted`, { from: started, to: this.compacted, removedRows: removed });
  }

  /** Compacts every `intervalMs`, keeping the last `keepRevisions` revisions (kine's defaults). */
  startAutoCompact(intervalMs = this.opts.compactIntervalMs ?? 5 * 60_000, keepRevisions = this.opts.compactKeep ?? 1000): void {
    this.stopAutoCompact();
    this.autoCompact = setInterval(() => {
      const target = this.applied - keepRevisions;
      if (target > this.compacted) {
        this.compact(target).catch((err) => this.log(`${this.driver.name} compaction failed`, { err: String(err) }));
      }
    }, intervalMs);
    this.autoCompact.unref();
  }

  stopAutoCompact(): void {
    if (this.autoCompact) clearInterval(this.autoCompact);
    this.autoCompact = undefined;
  }

  dbSize(): Promise<number> {
    return this.driver.size();
  }

  /** Commits what is queued, stops compaction and polling, closes the connection. */
  async close(): Promise<void> {
    if (!this.open || this.closing) return;
    this.closing = true;
    this.stopAutoCompact();
    if (this.pollTimer) clearInterval(this.pollTimer);
    while (this.flushScheduled || this.inFlight || this.queue.length) {
      if (this.inFlight) await this.inFlight.catch(() => {});
      else await new Promise((r) => setImmediate(r));
      if (this.queue.length && !this.flushScheduled && !this.inFlight) this.flush();
    }
    await this.compactChain.catch(() => {});
    await this.ordered.catch(() => {});
    this.open = false;
    await this.driver.close();
  }
}
