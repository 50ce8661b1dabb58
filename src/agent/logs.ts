// Reading container logs as the kubelet serves them. The runtime writes CRI log files, one entry per
// line: `<RFC 3339 nano time> <stdout|stderr> <F|P> <content>`, where P marks a partial line that
// continues in the next entry (long lines are split) and F a line's last piece. `kubectl logs` wants
// the content back, optionally with the time in front, only the last N lines, only entries since a
// time, at most N bytes, and with -f new entries as they come, across the kubelet's rotation of the
// file (rename + reopen), until the container stops.
import { open, stat, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

export interface CriLogEntry {
  /** The timestamp exactly as written (RFC 3339 with nanoseconds). */
  time: string;
  stream: 'stdout' | 'stderr';
  /** False for the last (or only) piece of a line. */
  partial: boolean;
  content: Buffer;
}

const NL = 0x0a;
const SP = 0x20;

/** Parses one line of a CRI log file (without its newline); undefined if it is not one. */
export function parseCriLogLine(line: Buffer): CriLogEntry | undefined {
  const a = line.indexOf(SP);
  if (a <= 0) return undefined;
  const b = line.indexOf(SP, a + 1);
  if (b < 0) return undefined;
  const stream = line.toString('latin1', a + 1, b);
  if (stream !== 'stdout' && stream !== 'stderr') return undefined;
  // The tag field is absent in files written before CRI added it; such lines are whole.
  const c = line.indexOf(SP, b + 1);
  const tag = c < 0 ? line.toString('latin1', b + 1) : line.toString('latin1', b + 1, c);
  if (tag !== 'F' && tag !== 'P') {
    return { time: line.toString('latin1', 0, a), stream, partial: false, content: line.subarray(b + 1) };
  }
  return { time: line.toString('latin1', 0, a), stream, partial: tag === 'P', content: c < 0 ? Buffer.alloc(0) : line.subarray(c + 1) };
}

export interface LogReadOptions {
  /** Only the last N lines of the file (counted in file lines, as the kubelet counts). */
  tailLines?: number;
  /** Skip entries written before this time. */
  since?: Date;
  /** Prefix every entry with its time and a space. */
  timestamps?: boolean;
  /** Stop after this many bytes of output. */
  limitBytes?: number;
  /** Keep reading new entries until `isRunning` says the container stopped and the file is drained. */
  follow?: boolean;
  /** Asked (at most once per `runningCheckMs`) while following and the file has no new data. */
  isRunning?: () => boolean | Promise<boolean>;
  pollMs?: number;
  runningCheckMs?: number;
}

const READ_BYTES = 64 * 1024;

/** The container's log as a byte stream (backpressured; destroying it stops reading and following). */
export function containerLogStream(path: string, opts: LogReadOptions = {}): Readable {
  // Not Readable.from: its destroy waits for the generator to reach a yield, which a follower with
  // nothing new to say never does. The signal ends the follow loop itself.
  const ac = new AbortController();
  const it = readLog(path, opts, ac.signal);
  return new Readable({
    read() {
      it.next().then((r) => { this.push(r.done ? null : r.value); }, (err) => this.destroy(err));
    },
    destroy(err, cb) {
      ac.abort();
      it.return(undefined).then(() => cb(err), () => cb(err));
    },
  });
}

async function* readLog(path: string, opts: LogReadOptions, signal: AbortSignal): AsyncGenerator<Buffer> {
  const pollMs = opts.pollMs ?? 100;
  const runningCheckMs = opts.runningCheckMs ?? 1_000;
  const sinceMs = opts.since?.getTime();
  let budget = opts.limitBytes ?? Infinity;
  let fh: FileHandle = await open(path, 'r');
  try {
    const opened = await fh.stat();
    let ino = opened.ino;
    // Without -f the answer is the file as it was when asked: lines the container writes while we
    // read would otherwise stretch `--tail=N` past N.
    const end = opts.follow ? Infinity : opened.size;
    let pos = opts.tailLines !== undefined ? await tailOffset(fh, opts.tailLines, opened.size) : 0;
    let carry: Buffer = Buffer.alloc(0);
    const buf = Buffer.allocUnsafe(READ_BYTES);
    let nextRunningCheck = 0;
    /** Set once the file was rotated (or the container stopped): drain what is left, then act. */
    let rotated = false;
    let stopped = false;
    while (!signal.aborted) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(READ_BYTES, end - pos), pos);
      if (bytesRead > 0) {
        pos += bytesRead;
        const data = carry.length ? Buffer.concat([carry, buf.subarray(0, bytesRead)]) : Buffer.from(buf.subarray(0, bytesRead));
        const lastNl = data.lastIndexOf(NL);
        carry = lastNl < 0 ? data : data.subarray(lastNl + 1);
        if (lastNl < 0) continue;
        let out = render(data.subarray(0, lastNl + 1), sinceMs, opts.timestamps ?? false);
        if (out.length > budget) out = out.subarray(0, budget);
        budget -= out.length;
        if (out.length) yield out;
        if (budget <= 0) return;
        continue;
      }
      // At the end of the file.
      if (!opts.follow || stopped) return;
      if (rotated) {
        // The runtime writes whole lines, so a leftover partial line of the old file is dropped.
        await fh.close();
        fh = await open(path, 'r');
        ino = (await fh.stat()).ino;
        pos = 0;
        carry = Buffer.alloc(0);
        rotated = false;
        continue;
      }
      const now = await stat(path).catch(() => undefined);
      if (now && now.ino !== ino) { rotated = true; continue; }
      if (now && now.size < pos) { pos = 0; carry = Buffer.alloc(0); continue; }   // truncated in place
      if (opts.isRunning && Date.now() >= nextRunningCheck) {
        nextRunningCheck = Date.now() + runningCheckMs;
        // One more pass after the container stopped catches what it wrote just before.
        if (!(await opts.isRunning())) { stopped = true; continue; }
      }
      await sleep(pollMs, undefined, { signal }).catch(() => undefined);
    }
  } finally {
    await fh.close().catch(() => undefined);
  }
}

/** Turns complete CRI log lines into output bytes. */
function render(lines: Buffer, sinceMs: number | undefined, timestamps: boolean): Buffer {
  const parts: Buffer[] = [];
  let start = 0;
  while (start < lines.length) {
    const end = lines.indexOf(NL, start);
    const e = parseCriLogLine(lines.subarray(start, end));
    start = end + 1;
    if (!e) continue;
    if (sinceMs !== undefined && Date.parse(e.time) < sinceMs) continue;
    if (timestamps) parts.push(Buffer.from(e.time + ' '));
    parts.push(e.content);
    if (!e.partial) parts.push(Buffer.from('\n'));
  }
  return Buffer.concat(parts);
}

/** The offset where the last `n` lines of the file start (reading backwards, a chunk at a time). */
async function tailOffset(fh: FileHandle, n: number, size: number): Promise<number> {
  if (n <= 0) return size;
  const chunk = Buffer.allocUnsafe(READ_BYTES);
  let end = size;
  let found = 0;
  // The file's final newline ends the last line; it does not start another.
  let skipFirst = true;
  while (end > 0) {
    const start = Math.max(0, end - READ_BYTES);
    const { bytesRead } = await fh.read(chunk, 0, end - start, start);
    for (let i = bytesRead - 1; i >= 0; i--) {
      if (chunk[i] !== NL) { skipFirst = false; continue; }
      if (skipFirst && start + i === size - 1) { skipFirst = false; continue; }
      if (++found === n) return start + i + 1;
    }
    end = start;
  }
  return 0;
}
