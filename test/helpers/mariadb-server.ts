// A real MariaDB for tests: Debian's mariadbd, a fresh data dir (mariadb-install-db), a free port on
// 127.0.0.1 and its own socket, run as the `mysql` user. A password user `skiff` for TCP. Stopped
// and removed when the test ends, pass or fail.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { eventually } from './wait.js';
import { freePort } from './postgres-server.js';

export const MARIADB_PASSWORD = 'skiff-test-pw';

export interface MariadbServer {
  port: number;
  /** mysql://skiff:<pw>@tcp(127.0.0.1:<port>)/<db> */
  url(db?: string): string;
  stop(): Promise<void>;
  start(): Promise<void>;
  destroy(): Promise<void>;
}

export async function startMariadb(t?: TestContext): Promise<MariadbServer> {
  if (!existsSync('/usr/sbin/mariadbd')) throw new Error('MariaDB is not installed: apt-get install mariadb-server (Debian) is needed for this test');
  if (process.getuid?.() !== 0) throw new Error('this test runs mariadbd as the mysql user: it needs root');
  const dir = mkdtempSync(join(tmpdir(), `skiff-maria-${process.pid}-`));
  const data = join(dir, 'data');
  const sock = join(dir, 'mysqld.sock');
  execFileSync('mkdir', ['-p', data]);
  execFileSync('chown', ['-R', 'mysql:mysql', dir]);
  execFileSync('mariadb-install-db', ['--no-defaults', `--datadir=${data}`, '--user=mysql', '--auth-root-authentication-method=socket', '--skip-test-db'], { stdio: 'pipe' });
  const port = await freePort();
  let child: ChildProcess | undefined;
  let logTail = '';
  let initialized = false;

  const start = async () => {
    const proc = spawn('/usr/sbin/mariadbd', ['--no-defaults', `--datadir=${data}`, `--socket=${sock}`, `--port=${port}`,
      '--bind-address=127.0.0.1', '--user=mysql', `--pid-file=${join(dir, 'mysqld.pid')}`, '--skip-name-resolve',
      '--innodb-flush-log-at-trx-commit=1', '--sync-binlog=1', '--innodb-buffer-pool-size=64M'],
    { stdio: ['ignore', 'pipe', 'pipe'] });
    child = proc;
    const keep = (b: Buffer) => { logTail = (logTail + b.toString()).slice(-4000); };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    await eventually(async () => {
      if (proc.exitCode !== null) throw new Error(`mariadbd exited: ${logTail}`);
      try {
        execFileSync('mariadb', ['-S', sock, '-u', 'root', '-e', 'SELECT 1'], { stdio: 'pipe' });
        return true;
      } catch { return false; }
    }, 'mariadbd to accept connections', 60_000, () => logTail);
    if (!initialized) {
      execFileSync('mariadb', ['-S', sock, '-u', 'root', '-e',
        `CREATE USER 'skiff'@'%' IDENTIFIED BY '${MARIADB_PASSWORD}'; GRANT ALL ON *.* TO 'skiff'@'%'; FLUSH PRIVILEGES;`], { stdio: 'pipe' });
      initialized = true;
    }
  };

  const stop = async () => {
    const proc = child;
    child = undefined;
    if (!proc || proc.exitCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill('SIGTERM');
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (proc.exitCode === null) { proc.kill('SIGKILL'); await exited; }
  };

  const destroy = async () => {
    await stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };

  await start().catch(async (err) => { await destroy(); throw err; });
  t?.after(() => destroy());
  return {
    port, start, stop, destroy,
    url: (db = 'skiff') => `mysql://skiff:${MARIADB_PASSWORD}@tcp(127.0.0.1:${port})/${db}`,
  };
}
