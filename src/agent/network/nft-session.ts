// A long-lived `nft -i` process for small, frequent transactions.
//
// Every one-shot `nft -f` first loads the kernel's ruleset into its cache before it can resolve a
// chain name. With 1,000 Services the proxy's table holds ~11,000 chains, so each run cost 70–90 ms
// of CPU (120–250 ms wall on a loaded 2-core machine) for a change of a few lines, which is most of
// an endpoint change's latency. An interactive nft keeps its cache between commands and refreshes
// it only when the ruleset's generation changed, so the same transaction costs ~10 ms.
//
// Protocol: one transaction is one input line (nft commits each line as one batch: all of it or
// nothing), followed by `describe meta mark`, which prints a fixed line without touching the kernel.
// Everything printed before that line belongs to the transaction; a line starting with `Error:`
// means it was refused. stderr is merged into stdout so errors and the marker arrive in order.
// Large scripts (a cold start writing the whole table) still go through a one-shot `nft -f -`.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { logger } from '../../util/log.js';

const log = logger('nft');

export const NFT = process.env.SKIFF_NFT_BINARY ?? 'nft';
const MARKER_COMMAND = 'describe meta mark';
const MARKER_LINE = 'meta expression, datatype mark (packet mark) (basetype integer), 32 bits';
/** Above this a script goes to a one-shot `nft -f` (one line per transaction would be megabytes). */
const MAX_LINE_BYTES = 256 * 1024;
const TIMEOUT_MS = 60_000;

/** Runs an nft script as one transaction (`nft -f -`): all of it applies, or none. */
export function runNftScript(script: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const p = spawn(NFT, ['-f', '-'], { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => { if (err.length < 4096) err += d.toString(); });
    p.on('error', reject);
    p.on('close', (code) => code === 0 ? resolve() : reject(new Error(`nft -f: exit ${code}: ${err.trim().split('\n').slice(0, 6).join(' | ')}`)));
    p.stdin.on('error', () => undefined);   // nft may exit before reading all of a bad script
    p.stdin.end(script);
  });
}

interface Pending { resolve(): void; reject(err: Error): void; out: string[]; timer: NodeJS.Timeout }

export class NftSession {
  private child: ChildProcessWithoutNullStreams | undefined;
  private pending: Pending | undefined;
  private partial = '';
  /** Transactions run one after another: the protocol has one in flight at a time. */
  private tail: Promise<void> = Promise.resolve();
  private closed = false;

  /** Runs `script` (commands one per line) as one transaction. */
  run(script: string): Promise<void> {
    const lines = script.split('\n').map((l) => l.trim()).filter((l) => l.length > 0);
    if (!lines.length) return Promise.resolve();
    const line = lines.join('; ');
    // A `#` would comment out the rest of the joined line; such scripts (and huge ones) go one-shot.
    if (this.closed || line.length > MAX_LINE_BYTES || line.includes('#')) return runNftScript(script);
    const result = this.tail.then(() => this.send(line));
    this.tail = result.catch(() => undefined);
    return result;
  }

  /** Stops the interactive process (a later run() would go one-shot). */
  close(): void {
    this.closed = true;
    this.child?.stdin.end();
    this.child?.kill();
    this.child = undefined;
  }

  private send(line: string): Promise<void> {
    const child = this.child ?? this.start();
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        log.warn({ ms: TIMEOUT_MS }, 'nft session did not answer; restarting it');
        this.fail(new Error(`nft: no answer within ${TIMEOUT_MS} ms`));
        child.kill('SIGKILL');
      }, TIMEOUT_MS);
      this.pending = { resolve, reject, out: [], timer };
      child.stdin.write(`${line}\n${MARKER_COMMAND}\n`);
    });
  }

  private start(): ChildProcessWithoutNullStreams {
    // HOME elsewhere: interactive nft saves its command history to ~/.nft.history on exit.
    const child = spawn('sh', ['-c', 'exec "$0" -i 2>&1', NFT], { env: { ...process.env, HOME: '/nonexistent' } });
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => this.onOutput(chunk));
    child.stderr.resume();
    child.stdin.on('error', () => undefined);
    const gone = (why: string) => {
      if (this.child === child) this.child = undefined;
      this.fail(new Error(`nft session ended: ${why}`));
    };
    child.on('error', (err) => gone(err.message));
    child.on('exit', (code, signal) => gone(signal ?? `exit ${code}`));
    this.child = child;
    return child;
  }

  private onOutput(chunk: string): void {
    this.partial += chunk;
    let nl: number;
    while ((nl = this.partial.indexOf('\n')) >= 0) {
      const text = this.partial.slice(0, nl);
      this.partial = this.partial.slice(nl + 1);
      const p = this.pending;
      if (!p) continue;
      if (text !== MARKER_LINE) { if (p.out.length < 50) p.out.push(text.slice(0, 500)); continue; }
      this.pending = undefined;
      clearTimeout(p.timer);
      const error = p.out.findIndex((l) => l.startsWith('Error:'));
      if (error < 0) p.resolve();
      else p.reject(new Error(`nft: ${p.out.slice(error, error + 6).join(' | ')}`));
    }
  }

  private fail(err: Error): void {
    const p = this.pending;
    this.pending = undefined;
    this.partial = '';
    if (p) { clearTimeout(p.timer); p.reject(err); }
  }
}
