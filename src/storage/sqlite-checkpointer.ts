// WAL checkpoints of the embedded SQLite datastore, off the server's thread. By default SQLite
// checkpoints inside a COMMIT once the WAL passes 1,000 pages: the committing thread copies those
// pages into the database file and fsyncs it. For skiff that thread is the event loop: at 5,000
// nodes that was a 20–120 ms stall every half second, in which no request was answered
// (docs/scale.md item 28). Here the server's connection never checkpoints (wal_autocheckpoint = 0)
// and a worker thread with its own connection does, when about as much has been written since the
// last one as SQLite's default would wait for.
import type { Worker } from 'node:worker_threads';
import type Database from 'better-sqlite3';
import { startModuleWorker } from '../util/module-worker.js';
import type { CheckpointWorkerData, FromCheckpointer, ToCheckpointer } from './sqlite-checkpoint-worker.js';

/** Bytes written since the last checkpoint that ask for the next: SQLite's default, 1,000 pages of 4 KB. */
export const CHECKPOINT_BYTES = 1000 * 4096;
/** A smaller amount waits at most this long, so a quiet server's WAL is copied too. */
export const CHECKPOINT_IDLE_MS = 1000;
/** SQLite's own default, put back if the worker fails. */
const SQLITE_AUTOCHECKPOINT_PAGES = 1000;

export interface CheckpointStats {
  /** Checkpoints the worker ran. */
  checkpoints: number;
  /** WAL frames they copied into the database file. */
  framesCopied: number;
  /** Frames in the WAL at the last checkpoint: small when the WAL starts over as it should. */
  walFrames: number;
}

export class SqliteCheckpointer {
  readonly stats: CheckpointStats = { checkpoints: 0, framesCopied: 0, walFrames: 0 };
  private worker?: Worker;
  private pending = 0;
  private inFlight = false;
  private idleTimer?: NodeJS.Timeout;
  private failed = false;
  private closing?: Promise<void>;
  private readonly waiters: (() => void)[] = [];

  constructor(
    private readonly file: string,
    private readonly db: Database.Database,
    private readonly log: (msg: string, fields?: object) => void = () => {},
  ) {
    db.pragma('wal_autocheckpoint = 0');
  }

  /** A commit put about `bytes` into the WAL. */
  wrote(bytes: number): void {
    if (this.failed || this.closing) return;
    this.pending += bytes;
    this.schedule();
  }

  /** The next checkpoint: now once enough was written, else after CHECKPOINT_IDLE_MS. */
  private schedule(): void {
    if (this.pending >= CHECKPOINT_BYTES) this.request();
    else if (this.pending > 0) this.idleTimer ??= setTimeout(() => { this.idleTimer = undefined; this.request(); }, CHECKPOINT_IDLE_MS).unref();
  }

  /** Resolves after the next checkpoint the worker finishes (for tests and tools). */
  checkpointNow(): Promise<void> {
    const done = new Promise<void>((resolve) => this.waiters.push(resolve));
    this.pending = Math.max(this.pending, 1);
    this.request();
    return done;
  }

  private request(): void {
    if (this.inFlight || this.failed || this.closing || this.pending === 0) return;
    clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
    this.pending = 0;
    this.inFlight = true;
    this.start().postMessage('checkpoint' satisfies ToCheckpointer);
  }

  /**
   * Started at the first checkpoint, so a server that never writes runs no extra thread. Started
   * while the server starts, it inherits the startup priority (server/startup-priority.ts), as
   * libuv's pool does: it is the server's own work.
   */
  private start(): Worker {
    if (this.worker) return this.worker;
    const w = startModuleWorker(import.meta.url, 'sqlite-checkpoint-worker', { workerData: { file: this.file } satisfies CheckpointWorkerData });
    w.unref();
    w.on('message', (m: FromCheckpointer) => {
      if (m.op === 'checkpointed') {
        this.inFlight = false;
        this.stats.checkpoints++;
        this.stats.framesCopied += m.copied;
        this.stats.walFrames = m.frames;
        for (const resolve of this.waiters.splice(0)) resolve();
        this.schedule();
      } else if (m.op === 'failed') {
        this.fail(m.message);
      }
    });
    w.on('error', (err) => this.fail(err.message));
    w.on('exit', (code) => { if (!this.closing) this.fail(`exited with code ${code}`); });
    this.worker = w;
    return w;
  }

  /** The worker is gone: SQLite checkpoints in the committing thread again, as by default. */
  private fail(reason: string): void {
    if (this.failed) return;
    this.failed = true;
    this.inFlight = false;
    clearTimeout(this.idleTimer);
    for (const resolve of this.waiters.splice(0)) resolve();
    try {
      this.db.pragma(`wal_autocheckpoint = ${SQLITE_AUTOCHECKPOINT_PAGES}`);
    } catch { /* the connection is closing */ }
    this.log('sqlite checkpoint worker failed; checkpointing in the server thread', { reason });
    void this.worker?.terminate();
  }

  /** Stops the worker and closes its connection, before the server's connection closes (which then checkpoints the rest). */
  close(): Promise<void> {
    clearTimeout(this.idleTimer);
    this.closing ??= (async () => {
      const w = this.worker;
      if (!w || this.failed) return;
      await new Promise<void>((resolve) => {
        const done = () => resolve();
        w.once('exit', done);
        // A checkpoint that never ends must not hold up the server's shutdown.
        setTimeout(() => void w.terminate(), 5000).unref();
        w.on('message', (m: FromCheckpointer) => { if (m.op === 'closed') void w.terminate(); });
        w.postMessage('close' satisfies ToCheckpointer);
      });
      for (const resolve of this.waiters.splice(0)) resolve();
    })();
    return this.closing;
  }
}
