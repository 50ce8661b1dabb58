// Starts the built `bin/skiff server` in a temp dir for a benchmark and reads its memory use.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const BIN = join(ROOT, 'bin', 'skiff');

export interface BenchServer {
  proc: ChildProcess;
  port: number;
  dataDir: string;
  kubeconfigPath: string;
  /** Milliseconds from spawn to the first `/readyz` answering 200. */
  startMs: number;
  logPath: string;
  stop(): Promise<void>;
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => resolve(port));
    });
  });
}

export function readyz(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    // The CA is not known before the server writes it; readiness needs no trust.
    const req = https.get({ host: '127.0.0.1', port, path: '/readyz', rejectUnauthorized: false, agent: false, timeout: 1000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode === 200));
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => { req.destroy(); resolve(false); });
  });
}

/** How one patient `/readyz` attempt ended; `connectedAt` (performance.now()) once the kernel completed its TCP handshake. */
export interface PatientAnswer { ok: boolean; connectedAt?: number }

/**
 * `/readyz` asked the way kubectl (client-go) asks: up to 30 s to connect, 10 s for the TLS handshake,
 * then no deadline of its own (capped here at `answerMs`). `readyz` above gives up after 1 s, which is
 * right for polling an idle server's start but measures the wrong thing on a server that is busy: under
 * a reconnection storm it would give up and queue again behind every other client, over and over.
 */
export function readyzPatient(port: number, answerMs = 60_000): Promise<PatientAnswer> {
  return new Promise((resolve) => {
    let connectedAt: number | undefined;
    let done = false;
    const finish = (ok: boolean) => { if (!done) { done = true; clearTimeout(timer); resolve({ ok, connectedAt }); } };
    const req = https.get({ host: '127.0.0.1', port, path: '/readyz', rejectUnauthorized: false, agent: false }, (res) => {
      res.resume();
      res.on('end', () => finish(res.statusCode === 200));
      res.on('error', () => finish(false));
    });
    let timer = setTimeout(() => { req.destroy(); finish(false); }, 30_000);
    req.on('socket', (s) => {
      s.once('connect', () => {
        connectedAt = performance.now();
        clearTimeout(timer);
        timer = setTimeout(() => { req.destroy(); finish(false); }, 10_000);
      });
      s.once('secureConnect', () => { clearTimeout(timer); timer = setTimeout(() => { req.destroy(); finish(false); }, answerMs); });
    });
    req.on('error', () => finish(false));
  });
}

/**
 * What a server that thousands of hollow nodes join needs: k3s's default 10.42.0.0/16 holds 256
 * nodes' /24s, a /10 holds 16,384 (and stays clear of 10.43.0.0/16's services); and every hollow
 * node connects from 127.0.0.1, so the per-address connection cap (1,024, meant for one client
 * machine) would reset the connections of the nodes past the first few hundred.
 */
export const MANY_NODES = {
  args: ['--cluster-cidr', '10.64.0.0/10'],
  env: { SKIFF_CONNECTION_LIMITS: JSON.stringify({ maxConnectionsPerAddress: 1_000_000 }) },
} as const;

/** `opts.bin`: another checkout's launcher (its own build), to compare two builds in one run. */
export async function startBenchServer(extraArgs: string[] = [], opts: { readyTimeoutMs?: number; env?: Record<string, string>; bin?: string } = {}): Promise<BenchServer> {
  const bin = opts.bin ?? BIN;
  if (!existsSync(join(bin, '..', '..', 'dist', 'cli', 'main.js'))) throw new Error(`${bin}: not built: run \`npm run build\` in its checkout first`);
  const dataDir = mkdtempSync(join(tmpdir(), 'skiff-bench-'));
  const port = await freePort();
  const kubeconfigPath = join(dataDir, 'kubeconfig.yaml');
  const logPath = join(dataDir, 'server.log');
  const logFd = openSync(logPath, 'a');
  const t0 = performance.now();
  const proc = spawn(bin, ['server', '--data-dir', dataDir, '--https-listen-port', String(port), '--bind-address', '127.0.0.1',
    '--write-kubeconfig', kubeconfigPath, '--disable-agent', ...extraArgs], { stdio: ['ignore', logFd, logFd], env: { ...process.env, ...opts.env } });
  closeSync(logFd);
  const exited = new Promise<void>((r) => proc.on('exit', () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      proc.kill('SIGTERM');
      const t = setTimeout(() => proc.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  for (;;) {
    if (proc.exitCode !== null || proc.signalCode !== null) {
      const log = readFileSync(logPath, 'utf8').split('\n').slice(-20).join('\n');
      await stop();
      throw new Error(`skiff server exited before ready:\n${log}`);
    }
    if (await readyz(port) && existsSync(kubeconfigPath)) break;
    const limit = opts.readyTimeoutMs ?? 30_000;
    if (performance.now() - t0 > limit) { await stop(); throw new Error(`skiff server not ready after ${limit / 1000} s`); }
    await new Promise((r) => setTimeout(r, 5));
  }
  return { proc, port, dataDir, kubeconfigPath, startMs: performance.now() - t0, logPath, stop };
}

/** A memory figure of /proc/<pid>/status (`VmRSS`, `VmSize`…), in kB. */
export function procStatusKb(pid: number, field: string): number {
  const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm'));
  if (!m) throw new Error(`no ${field} for pid ${pid}`);
  return Number(m[1]);
}

/** Resident set size in MB (VmRSS of /proc/<pid>/status). */
export function rssMb(pid: number): number {
  return procStatusKb(pid, 'VmRSS') / 1024;
}

/** CPU seconds a process has used, its reaped children included (runc, CNI plugins, iptables…). */
export function cpuSeconds(pid: number, thread?: number): number {
  try {
    // One thread's own (its task's stat), or the whole process's.
    const stat = readFileSync(thread === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${thread}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces): utime is the 12th, then stime, cutime, cstime.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ').map(Number);
    return (f[11]! + f[12]! + f[13]! + f[14]!) / 100;
  } catch {
    return 0;   // the process is gone
  }
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The server's /metrics as a function from a series (name with its labels, as Prometheus prints it,
 * e.g. `skiff_controller_write_budget{value="limit"}`) to its value; undefined when the scrape
 * fails (through kubectl, as an admin: /metrics needs authorization) or the series is absent.
 */
export async function scrapeMetrics(kubeconfigPath: string): Promise<(series: string) => number | undefined> {
  const values = await scrapeMetricSeries(kubeconfigPath);
  return (series) => values.get(series);
}

/** Every series of the server's /metrics with its value; empty when the scrape fails. */
export function scrapeMetricSeries(kubeconfigPath: string): Promise<Map<string, number>> {
  return new Promise((resolve) => {
    execFile('kubectl', ['--kubeconfig', kubeconfigPath, 'get', '--raw', '/metrics'], { maxBuffer: 64 << 20, timeout: 10_000 }, (err, out) => {
      const values = new Map<string, number>();
      if (!err) {
        for (const line of out.split('\n')) {
          if (line.startsWith('#')) continue;
          const at = line.lastIndexOf(' ');
          if (at > 0) values.set(line.slice(0, at), Number(line.slice(at + 1)));
        }
      }
      resolve(values);
    });
  });
}

/** SIGTERM, then SIGKILL after 10 s; resolves when the process has exited. */
export async function stopProcess(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const exited = new Promise((r) => p.on('exit', r));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(t);
}
