// Running the real kubectl binaries against a test server: one-shot commands, long-running ones
// (`get -w`), and assertions that put kubectl's own output into the failure message.
import { spawn, type ChildProcess } from 'node:child_process';
import assert from 'node:assert/strict';

export type KubectlVersion = '1.27' | '1.28' | '1.29' | '1.30' | '1.31' | '1.32' | '1.33';

export interface KubectlResult {
  args: string[];        // as given by the test (without --kubeconfig/--cache-dir), for messages
  code: number | null;   // null when killed (timeout)
  stdout: string;
  stderr: string;
}

export interface KubectlOptions {
  input?: string;
  env?: Record<string, string>;
  version?: KubectlVersion;
  timeoutMs?: number;
}

const KUBECTL_DIR = '/usr/lib/google-cloud-sdk/bin';

// The versioned binaries, not the /usr/bin/kubectl dispatcher: the dispatcher picks by the server's
// minor, so skew tests could not choose, and it adds a /version round trip to every call.
export function kubectlBinary(version: KubectlVersion = '1.32'): string {
  return `${KUBECTL_DIR}/kubectl.${version}`;
}

function kubectlEnv(extra?: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...extra };
  // A developer's own cluster must never be touched by a test; --kubeconfig wins anyway, this
  // also keeps plugins and `edit` from reading it.
  delete env.KUBECONFIG;
  return env;
}

export function runKubectl(baseArgs: string[], args: string[], opts: KubectlOptions = {}): Promise<KubectlResult> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  return new Promise((resolve, reject) => {
    const child = spawn(kubectlBinary(opts.version), [...baseArgs, ...args], {
      env: kubectlEnv(opts.env),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d; });
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d; });
    const timer = setTimeout(() => {
      stderr += `\n[test harness: kubectl ${args.join(' ')} killed after ${timeoutMs} ms]`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('error', (err) => { clearTimeout(timer); reject(err); });
    child.on('close', (code) => { clearTimeout(timer); resolve({ args, code, stdout, stderr }); });
    child.stdin.on('error', () => { /* kubectl may exit before reading stdin; its exit code tells */ });
    child.stdin.end(opts.input ?? '');
  });
}

/** A kubectl that keeps running (`get -w`, `wait`): read its output as it comes, stop it when done. */
export class KubectlStream {
  readonly proc: ChildProcess;
  stdout = '';
  stderr = '';
  private readonly exited: Promise<number | null>;

  constructor(baseArgs: string[], readonly args: string[], opts: KubectlOptions = {}) {
    this.proc = spawn(kubectlBinary(opts.version), [...baseArgs, ...args], {
      env: kubectlEnv(opts.env),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.proc.stdout!.setEncoding('utf8').on('data', (d: string) => { this.stdout += d; });
    this.proc.stderr!.setEncoding('utf8').on('data', (d: string) => { this.stderr += d; });
    this.exited = new Promise((resolve) => this.proc.on('close', (code) => resolve(code)));
  }

  /** Resolves once stdout matches `pattern`; rejects with everything seen so far after `timeoutMs`. */
  async waitFor(pattern: RegExp, timeoutMs = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const m = this.stdout.match(pattern);
      if (m) return m;
      if (Date.now() > deadline || this.proc.exitCode !== null) {
        throw new Error(`kubectl output never matched ${pattern} (exit ${this.proc.exitCode})\n--- stdout\n${this.stdout}\n--- stderr\n${this.stderr}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits for kubectl to exit on its own. */
  async wait(timeoutMs = 30_000): Promise<KubectlResult> {
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), timeoutMs);
    const code = await this.exited;
    clearTimeout(timer);
    return { args: this.args, code, stdout: this.stdout, stderr: this.stderr };
  }

  async stop(): Promise<KubectlResult> {
    if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill('SIGKILL');
    const code = await this.exited;
    return { args: this.args, code, stdout: this.stdout, stderr: this.stderr };
  }
}

function describe(r: KubectlResult): string {
  return `kubectl ${r.args.join(' ')}\nexit ${r.code}\n--- stdout\n${r.stdout}\n--- stderr\n${r.stderr}`;
}

/** Asserts exit 0 and returns stdout; on failure the message carries kubectl's output. */
export function ok(r: KubectlResult, what = 'command'): string {
  assert.equal(r.code, 0, `${what} failed: ${describe(r)}`);
  return r.stdout;
}

/** Asserts a non-zero exit whose stderr matches `pattern`. */
export function fails(r: KubectlResult, pattern: RegExp, what = 'command'): string {
  assert.notEqual(r.code, 0, `${what} should have failed: ${describe(r)}`);
  assert.match(r.stderr, pattern, `${what} failed differently: ${describe(r)}`);
  return r.stderr;
}

/** Splits kubectl's table output into rows of cells (columns are separated by 3+ spaces or more). */
export function tableRows(stdout: string): string[][] {
  return stdout.trimEnd().split('\n').filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s{3,}/));
}

/** The header cells of kubectl's table output. */
export function tableHeader(stdout: string): string[] {
  return tableRows(stdout)[0] ?? [];
}
