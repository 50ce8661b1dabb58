// Continuous backup (`--backup-stream DIR`): every change the datastore commits is appended to
// segment files in DIR, a directory on another disk or a network mount, and fsynced there at least
// every `intervalMs` (default 1 s). A restore from DIR (backup-stream-restore.ts) therefore loses at
// most the writes acknowledged in the last interval plus one flush (write + fsync of the stream
// disk), and can stop at any earlier time (point-in-time restore). This is WAL shipping over skiff's
// own revision log: the stream is fed from the Backend's commit listener, which sees every revision in
// order (its own commits and other servers'), so it works alike for SQLite, PostgreSQL, MySQL and etcd.
//
// Layout: DIR/<epoch>/ where an epoch is `<start unix ms>-<node>`, made at each server start and then
// every `rebaseMs` (default 6 h), so a restore replays hours of changes, never weeks:
//   base.jsonl         every live key at the epoch's base revision (snapshot-dump.ts format)
//   creds/             token, TLS and encryption keys (a restore on a new machine needs them)
//   epoch.json         written last: {node, startedAt, baseRevision}; an epoch without it is unusable
//   seg-<first revision, 16 digits>.log   the changes after the base, one line each:
//       {"r":revision,"t":unix ms acknowledged,"e":"c"|"u"|"d","k":key,"v":value,"c":createRevision}<TAB><check>
//     where <check> is the first 16 hex digits of the line's SHA-256: a torn last line (a crash in the
//     middle of a write) is recognised and dropped.
// Values are stored as the datastore holds them: Secrets encrypted at rest stay encrypted.
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, openSync, fsyncSync, closeSync, readdirSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import type { Backend, BackendEvent } from '../storage/index.js';
import { readState, writeDump } from './snapshot-dump.js';
import { CREDENTIALS } from './snapshot.js';

export interface BackupStreamOptions {
  dir: string;
  dataDir: string;
  node: string;
  /** The raw backend (below encryption), so the stream holds what the datastore holds. */
  backend: Backend;
  /** The backend's kind for the base dump's header. */
  backendName: string;
  /** How often buffered changes are written and fsynced (default 1000 ms). */
  intervalMs?: number;
  /** A new base and epoch this often (default 6 h). */
  rebaseMs?: number;
  /** Segment size before a new file is started (default 64 MiB). */
  segmentBytes?: number;
  /** Epochs are kept while they can serve a restore to a time within this window (default 72 h). */
  retainMs?: number;
  log: (msg: string, fields?: object) => void;
}

export interface StreamLine { r: number; t: number; e: 'c' | 'u' | 'd'; k: string; v?: string; c: number }

/** `line + TAB + check + LF`: the stored form of one change. */
export function encodeLine(l: StreamLine): string {
  const json = JSON.stringify(l);
  return `${json}\t${checkOf(json)}\n`;
}

function checkOf(json: string): string {
  return createHash('sha256').update(json).digest('hex').slice(0, 16);
}

/** Parses one stored line; undefined when it is torn or damaged. */
export function decodeLine(text: string): StreamLine | undefined {
  const tab = text.lastIndexOf('\t');
  if (tab < 0) return undefined;
  const json = text.slice(0, tab);
  if (checkOf(json) !== text.slice(tab + 1)) return undefined;
  try {
    return JSON.parse(json) as StreamLine;
  } catch {
    return undefined;
  }
}

export function lineOf(e: BackendEvent, t: number): StreamLine {
  const kv = e.kv;
  if (e.type === 'delete') return { r: kv.modRevision, t, e: 'd', k: kv.key, c: kv.createRevision };
  return { r: kv.modRevision, t, e: e.type === 'create' ? 'c' : 'u', k: kv.key, v: kv.value, c: kv.createRevision };
}

export const segmentName = (firstRevision: number) => `seg-${String(firstRevision).padStart(16, '0')}.log`;
export const epochName = (startMs: number, node: string) => `${String(startMs).padStart(13, '0')}-${node}`;

function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

export interface BackupStreamStats {
  /** Changes written and fsynced. */
  lines: number;
  bytes: number;
  flushes: number;
  /** The newest revision durable in the stream. */
  syncedRevision: number;
  /** Acknowledgement → durable in the stream, per change: the largest seen and a recent sample for percentiles. */
  maxLagMs: number;
  lagSamples: number[];
  epochs: number;
}

export class BackupStream {
  readonly stats: BackupStreamStats = { lines: 0, bytes: 0, flushes: 0, syncedRevision: 0, maxLagMs: 0, lagSamples: [], epochs: 0 };
  private buffer: StreamLine[] = [];
  /** Until the first base is taken, changes at or below its revision belong to it. */
  private baseRevision = Number.POSITIVE_INFINITY;
  private epochDir?: string;
  private segment?: { fh: FileHandle; bytes: number };
  private chain: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private rebaseTimer?: NodeJS.Timeout;
  private stopped = false;
  private failing = false;
  private rebasing = false;
  /** While a new base is written: lines flushed to the old epoch, some of which the new one needs. */
  private carry?: StreamLine[];
  private readonly intervalMs: number;

  constructor(private readonly o: BackupStreamOptions) {
    this.intervalMs = o.intervalMs ?? 1000;
  }

  /** Attaches to the commit stream, writes the first base, starts the flush timer. */
  async start(): Promise<void> {
    mkdirSync(this.o.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.o.dir, 0o700);
    // Listening first, reading the base second: every revision after the base is in the buffer.
    this.o.backend.onCommit((events) => {
      if (this.stopped) return;
      const t = Date.now();
      for (const e of events) this.buffer.push(lineOf(e, t));
    });
    await this.newEpoch();
    if (!this.epochDir) throw new Error(`continuous backup: could not start the stream in ${this.o.dir}`);
    this.timer = setInterval(() => { void this.flush(); }, this.intervalMs);
    this.timer.unref();
    const rebase = this.o.rebaseMs ?? 6 * 3600_000;
    this.rebaseTimer = setInterval(() => { this.newEpoch().catch((err) => this.o.log('continuous backup: new epoch failed', { err: String(err) })); }, rebase);
    this.rebaseTimer.unref();
    this.o.log('continuous backup on', { dir: this.o.dir, epoch: this.epochDir, intervalMs: this.intervalMs });
  }

  private enqueue(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn).catch((err) => {
      if (!this.failing) this.o.log('continuous backup write failed; retrying', { err: String(err), dir: this.o.dir });
      this.failing = true;
    });
    this.chain = run;
    return run;
  }

  /**
   * A new epoch: a base at the current revision, then a switch. The base is read and written outside
   * the flush chain, so flushing (and the lag bound) goes on while a large base is written; lines
   * flushed meanwhile that are newer than the base are carried into the new epoch at the switch.
   */
  private async newEpoch(): Promise<void> {
    if (this.stopped || this.rebasing) return;
    this.rebasing = true;
    this.carry = [];
    try {
      const started = Date.now();
      const name = epochName(started, this.o.node);
      const dir = join(this.o.dir, name);
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const dump = await readState(this.o.backend, this.o.backendName);
      await writeDump(join(dir, 'base.jsonl'), dump);
      const creds = join(dir, 'creds');
      mkdirSync(creds, { recursive: true, mode: 0o700 });
      for (const f of CREDENTIALS) {
        const from = join(this.o.dataDir, 'server', f);
        if (existsSync(from)) cpSync(from, join(creds, f), { recursive: true });
      }
      await this.enqueue(() => this.switchEpoch(dir, started, dump.revision));
    } finally {
      this.rebasing = false;
      this.carry = undefined;
    }
  }

  /** Under the flush chain: finishes the old epoch up to the base, then opens the new one. */
  private async switchEpoch(dir: string, started: number, baseRevision: number): Promise<void> {
    // Changes the base already holds go to the previous epoch (or nowhere, for the first).
    await this.writeLines((l) => l.r <= baseRevision);
    await this.segment?.fh.close();
    this.segment = undefined;
    const carried = (this.carry ?? []).filter((l) => l.r > baseRevision);
    writeFileSync(join(dir, 'epoch.json'), JSON.stringify({ node: this.o.node, startedAt: new Date(started).toISOString(), baseRevision }) + '\n', { mode: 0o600 });
    this.epochDir = dir;
    this.baseRevision = baseRevision;
    if (carried.length) await this.append(carried);
    fsyncDir(dir);
    fsyncDir(this.o.dir);
    this.stats.epochs++;
    this.stats.syncedRevision = Math.max(this.stats.syncedRevision, baseRevision);
    this.prune(started);
  }

  /** Deletes epochs no restore within the retention window needs. */
  private prune(now: number): void {
    const retain = this.o.retainMs ?? 72 * 3600_000;
    const epochs = readdirSync(this.o.dir).filter((n) => /^\d{13}-/.test(n)).sort();
    for (let i = 0; i + 1 < epochs.length; i++) {
      // Epoch i serves times before epoch i+1 began; once that is outside the window it is not needed.
      if (Number(epochs[i + 1].slice(0, 13)) < now - retain) rmSync(join(this.o.dir, epochs[i]), { recursive: true, force: true });
    }
  }

  /** Writes and fsyncs what is buffered (at most one flush runs at a time; callers may await). */
  flush(): Promise<void> {
    if (!this.buffer.length) return this.chain;
    return this.enqueue(() => this.writeLines());
  }

  /** Writes the buffered lines that `take` accepts (all by default) to the current segment, fsynced. */
  private async writeLines(take: (l: StreamLine) => boolean = () => true): Promise<void> {
    if (!this.buffer.length) return;
    const taken = this.buffer.length;
    const lines: StreamLine[] = [];
    const rest: StreamLine[] = [];
    for (const l of this.buffer) (take(l) ? lines : rest).push(l);
    const fresh = lines.filter((l) => l.r > this.baseRevision);
    if (this.epochDir && fresh.length) await this.append(fresh);
    // Trimmed only once the lines are durable (append threw otherwise: they are retried next time).
    this.buffer = rest.concat(this.buffer.slice(taken));
  }

  /** Appends lines to the current epoch's segment and fsyncs it. */
  private async append(fresh: StreamLine[]): Promise<void> {
    if (!this.segment || this.segment.bytes >= (this.o.segmentBytes ?? 64 * 1024 * 1024)) {
      await this.segment?.fh.close();
      this.segment = undefined;
      const fh = await open(join(this.epochDir!, segmentName(fresh[0].r)), 'a', 0o600);
      this.segment = { fh, bytes: 0 };
      fsyncDir(this.epochDir!);
    }
    const bytes = Buffer.from(fresh.map(encodeLine).join(''));
    await this.segment.fh.write(bytes);
    await this.segment.fh.datasync();
    this.segment.bytes += bytes.length;
    this.carry?.push(...fresh);
    const now = Date.now();
    for (const l of fresh) {
      const lag = now - l.t;
      if (lag > this.stats.maxLagMs) this.stats.maxLagMs = lag;
    }
    this.stats.lagSamples.push(now - fresh[0].t);
    if (this.stats.lagSamples.length > 4096) this.stats.lagSamples.splice(0, 2048);
    this.stats.lines += fresh.length;
    this.stats.bytes += bytes.length;
    this.stats.flushes++;
    this.stats.syncedRevision = fresh[fresh.length - 1].r;
    if (this.failing) this.o.log('continuous backup writing again', { dir: this.o.dir });
    this.failing = false;
  }

  /** Flushes what is buffered and closes the segment. */
  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    if (this.rebaseTimer) clearInterval(this.rebaseTimer);
    await this.flush();
    await this.chain;
    this.stopped = true;
    await this.segment?.fh.close();
    this.segment = undefined;
  }
}
