// A real PostgreSQL for tests: Debian's binaries, initdb into a temp dir, postgres on a free port on
// 127.0.0.1 with its own socket dir, run as the `postgres` user (it refuses root). Password auth over
// TCP (so wrong-password tests mean something). Stopped and removed when the test ends, pass or fail.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { eventually } from './wait.js';

export const PG_PASSWORD = 'skiff-test-pw';

export interface PostgresServer {
  port: number;
  /** postgres://postgres:<pw>@127.0.0.1:<port>/<db> */
  url(db?: string): string;
  /** Fast shutdown (clients are disconnected); data kept. */
  stop(): Promise<void>;
  /** Starts again on the same port and data. */
  start(): Promise<void>;
  /** Everything gone. */
  destroy(): Promise<void>;
}

export function postgresBinDir(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base).filter((v) => existsSync(join(base, v, 'bin', 'postgres'))).sort((a, b) => Number(b) - Number(a));
  return versions[0] && join(base, versions[0], 'bin');
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** Starts a PostgreSQL; fails with a clear message when Debian's postgresql or root is missing. */
export async function startPostgres(t?: TestContext): Promise<PostgresServer> {
  const bin = postgresBinDir();
  if (!bin) throw new Error('PostgreSQL is not installed: apt-get install postgresql (Debian) is needed for this test');
  if (process.getuid?.() !== 0) throw new Error('this test runs postgres as the postgres user through runuser: it needs root');
  const dir = mkdtempSync(join(tmpdir(), `skiff-pg-${process.pid}-`));
  const data = join(dir, 'data');
  const sock = join(dir, 'sock');
  execFileSync('mkdir', ['-p', data, sock]);
  const pwfile = join(dir, 'pw');
  writeFileSync(pwfile, PG_PASSWORD + '\n');
  execFileSync('chown', ['-R', 'postgres:postgres', dir]);
  execFileSync('runuser', ['-u', 'postgres', '--', join(bin, 'initdb'), '-D', data, '-U', 'postgres', `--pwfile=${pwfile}`,
    '--auth-host=scram-sha-256', '--auth-local=trust', '-E', 'UTF8', '--locale=C.UTF-8'], { stdio: 'pipe' });
  const port = await freePort();
  let child: ChildProcess | undefined;
  let logTail = '';

  const start = async () => {
    const proc = spawn('runuser', ['-u', 'postgres', '--', join(bin, 'postgres'), '-D', data, '-p', String(port),
      '-k', sock, '-h', '127.0.0.1', '-c', 'fsync=on', '-c', 'synchronous_commit=on', '-c', 'max_connections=100'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const keep = (b: Buffer) => { logTail = (logTail + b.toString()).slice(-4000); };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    await eventually(async () => {
      if (proc.exitCode !== null) throw new Error(`postgres exited: ${logTail}`);
      try {
        execFileSync(join(bin, 'pg_isready'), ['-h', '127.0.0.1', '-p', String(port), '-q']);
        return true;
      } catch { return false; }
    }, 'postgres to accept connections', 60_000, () => logTail);
  };

  /** The postmaster's pid (runuser's child), from its pid file. */
  const postmasterPid = (): number | undefined => {
    try { return Number(readFileSync(join(data, 'postmaster.pid'), 'utf8').split('\n')[0]); } catch { return undefined; }
  };

  const stop = async () => {
    const pid = postmasterPid();
    const proc = child;
    child = undefined;
    if (pid) { try { process.kill(pid, 'SIGINT'); } catch { /* gone */ } }
    if (proc && proc.exitCode === null) {
      await Promise.race([new Promise((r) => proc.once('exit', r)), new Promise((r) => setTimeout(r, 20_000))]);
      if (proc.exitCode === null) { try { if (pid) process.kill(pid, 'SIGKILL'); proc.kill('SIGKILL'); } catch { /* gone */ } }
    }
    await eventually(async () => !existsSync(join(data, 'postmaster.pid')) || !alive(postmasterPid()), 'postgres to stop', 30_000);
  };

  const destroy = async () => {
    await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };

  await start().catch(async (err) => { await destroy(); throw err; });
  const server: PostgresServer = {
    port, start, stop, destroy,
    url: (db = 'skiff') => `postgres://postgres:${PG_PASSWORD}@127.0.0.1:${port}/${db}`,
  };
  t?.after(() => destroy());
  return server;
}

function alive(pid: number | undefined): boolean {
  if (!pid) return false;
  try { process.kill(pid, 0); return true; } catch { return false; }
}
