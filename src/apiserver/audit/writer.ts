// The audit log file: events are queued and written in batches off the request path, with
// lumberjack-style rotation as kube-apiserver's `--audit-log-max*` flags (size in MB, backups by
// count and age). `-` writes to stdout. A full queue drops events (and counts them) rather than
// growing without bound, as kube-apiserver's batch backend does.
import { createWriteStream, mkdirSync, readdirSync, renameSync, statSync, unlinkSync, type WriteStream } from 'node:fs';
import { basename, dirname, extname, join } from 'node:path';
import { logger } from '../../util/log.js';

const log = logger('audit');

export interface AuditWriterOptions {
  path: string;
  /** Megabytes before the file is rotated (0: never). */
  maxSizeMb?: number;
  /** Rotated files kept (0: all). */
  maxBackups?: number;
  /** Days a rotated file is kept (0: forever). */
  maxAgeDays?: number;
  /** Events held before new ones are dropped. */
  bufferSize?: number;
  /** How long an event may wait for its batch. */
  flushMs?: number;
}

export class AuditWriter {
  private queue: string[] = [];
  private timer?: NodeJS.Timeout;
  private stream?: WriteStream;
  private size = 0;
  private writing: Promise<void> = Promise.resolve();
  dropped = 0;

  constructor(private readonly opts: AuditWriterOptions) {
    if (opts.path !== '-') {
      mkdirSync(dirname(opts.path), { recursive: true, mode: 0o700 });
      this.open();
    }
  }

  private open(): void {
    try { this.size = statSync(this.opts.path).size; } catch { this.size = 0; }
    this.stream = createWriteStream(this.opts.path, { flags: 'a', mode: 0o600 });
    this.stream.on('error', (err) => log.error({ err: err.message, path: this.opts.path }, 'audit log write failed'));
  }

  /** Queues one event (a JSON line); never blocks. */
  write(line: string): void {
    if (this.queue.length >= (this.opts.bufferSize ?? 10_000)) {
      if (this.dropped++ % 1000 === 0) log.warn({ dropped: this.dropped }, 'audit buffer full: events dropped');
      return;
    }
    this.queue.push(line);
    this.timer ??= setTimeout(() => this.flush(), this.opts.flushMs ?? 50);
  }

  /** Writes what is queued; resolves when it is handed to the file. */
  flush(): Promise<void> {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.queue.length === 0) return this.writing;
    const batch = this.queue.join('\n') + '\n';
    this.queue = [];
    this.writing = this.writing.then(() => this.writeBatch(batch));
    return this.writing;
  }

  private async writeBatch(batch: string): Promise<void> {
    if (this.opts.path === '-') { process.stdout.write(batch); return; }
    const bytes = Buffer.byteLength(batch);
    const max = (this.opts.maxSizeMb ?? 0) * 1024 * 1024;
    if (max > 0 && this.size > 0 && this.size + bytes > max) await this.rotate();
    this.size += bytes;
    const s = this.stream!;
    await new Promise<void>((resolve) => { if (s.write(batch)) resolve(); else s.once('drain', resolve); });
  }

  /** `audit.log` → `audit-2006-01-02T15-04-05.000.log` (lumberjack's naming), then prunes backups. */
  private async rotate(): Promise<void> {
    const s = this.stream!;
    await new Promise<void>((resolve) => s.end(resolve));
    const ext = extname(this.opts.path);
    const stem = basename(this.opts.path, ext);
    const stamp = new Date().toISOString().replace(/:/g, '-').replace('Z', '');
    renameSync(this.opts.path, join(dirname(this.opts.path), `${stem}-${stamp}${ext}`));
    this.open();
    this.prune(stem, ext);
  }

  private prune(stem: string, ext: string): void {
    const dir = dirname(this.opts.path);
    const re = new RegExp(`^${stem.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-(\\d{4}-\\d\\d-\\d\\dT\\d\\d-\\d\\d-\\d\\d\\.\\d{3})${ext.replace('.', '\\.')}$`);
    const backups = readdirSync(dir).filter((f) => re.test(f)).sort().reverse();   // newest first
    const maxAge = (this.opts.maxAgeDays ?? 0) * 86_400_000;
    backups.forEach((f, i) => {
      const stamp = re.exec(f)![1].replace(/T(\d\d)-(\d\d)-(\d\d)/, 'T$1:$2:$3') + 'Z';
      const tooMany = (this.opts.maxBackups ?? 0) > 0 && i >= this.opts.maxBackups!;
      const tooOld = maxAge > 0 && Date.now() - Date.parse(stamp) > maxAge;
      if (tooMany || tooOld) { try { unlinkSync(join(dir, f)); } catch { /* already gone */ } }
    });
  }

  async close(): Promise<void> {
    await this.flush();
    const s = this.stream;
    if (s) await new Promise<void>((resolve) => s.end(resolve));
  }
}
