// Datastore processes for tests, the shared part: a child started with its own data dir and port,
// its output kept as a tail for error messages, waited on until it answers, stopped (SIGTERM, then
// SIGKILL) and removed when the test ends, pass or fail. etcd is defined here; PostgreSQL and MariaDB
// (postgres-server.ts, mariadb-server.ts) keep their own setup (initdb, users) and are re-exported here.
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { eventually } from './wait.js';
import { freePort } from './postgres-server.js';

export { freePort };
// One import for every datastore a test can start.
export { startPostgres, type PostgresServer } from './postgres-server.js';
export { startMariadb, type MariadbServer } from './mariadb-server.js';

/** One supervised child process: started, waited for, stopped; its last output kept for messages. */
export class DatastoreProcess {
  child?: ChildProcess;
  logTail = '';

  constructor(readonly name: string, private readonly command: string, private readonly args: string[]) {}

  /** Spawns and waits until `ready` answers truthy (or the process exits). */
  async start(ready: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
    const proc = spawn(this.command, this.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = proc;
    const keep = (b: Buffer) => { this.logTail = (this.logTail + b.toString()).slice(-6000); };
    proc.stdout!.on('data', keep);
    proc.stderr!.on('data', keep);
    await eventually(async () => {
      if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`${this.name} exited: ${this.logTail}`);
      return ready().catch(() => false);
    }, `${this.name} to answer`, timeoutMs, () => this.logTail);
  }

  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const proc = this.child;
    this.child = undefined;
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
    const exited = new Promise((r) => proc.once('exit', r));
    proc.kill(signal);
    await Promise.race([exited, new Promise((r) => setTimeout(r, 30_000))]);
    if (proc.exitCode === null && proc.signalCode === null) { proc.kill('SIGKILL'); await exited; }
  }
}

export interface EtcdTls {
  dir: string;
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** A client certificate from another CA: the server must refuse it. */
  otherClientCert: string;
  otherClientKey: string;
}

/** A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and a stranger's client certificate (openssl). */
export function makeEtcdTls(dir: string): EtcdTls {
  mkdirSync(dir, { recursive: true });
  const ossl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ca = (name: string) => ossl('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2',
    '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.crt`);
  const leaf = (name: string, caName: string, ext: string) => {
    ossl('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${name}`, '-keyout', `${name}.key`, '-out', `${name}.csr`);
    writeFileSync(join(dir, `${name}.ext`), ext);
    ossl('x509', '-req', '-in', `${name}.csr`, '-CA', `${caName}.crt`, '-CAkey', `${caName}.key`, '-CAcreateserial', '-days', '2',
      '-extfile', `${name}.ext`, '-out', `${name}.crt`);
  };
  ca('ca');
  ca('other-ca');
  leaf('server', 'ca', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  leaf('client', 'ca', 'extendedKeyUsage=clientAuth\n');
  leaf('other-client', 'other-ca', 'extendedKeyUsage=clientAuth\n');
  const p = (f: string) => join(dir, f);
  return {
    dir, ca: p('ca.crt'), serverCert: p('server.crt'), serverKey: p('server.key'), clientCert: p('client.crt'), clientKey: p('client.key'),
    otherClientCert: p('other-client.crt'), otherClientKey: p('other-client.key'),
  };
}

export interface EtcdServer {
  clientPort: number;
  peerPort: number;
  /** http(s)://127.0.0.1:<clientPort> */
  url: string;
  tls?: EtcdTls;
  proc: DatastoreProcess;
  start(): Promise<void>;
  stop(signal?: NodeJS.Signals): Promise<void>;
  destroy(): Promise<void>;
}

/**
 * Debian's etcd on 127.0.0.1 with its own data dir and free client/peer ports. With `tls`, clients
 * must present a certificate from the test CA (--client-cert-auth).
 */
export async function startEtcd(t?: TestContext, opts: { tls?: boolean } = {}): Promise<EtcdServer> {
  if (!existsSync('/usr/bin/etcd')) throw new Error('etcd is not installed: apt-get install etcd-server (Debian) is needed for this test');
  const dir = mkdtempSync(join(tmpdir(), `skiff-etcd-${process.pid}-`));
  const tls = opts.tls ? makeEtcdTls(join(dir, 'tls')) : undefined;
  const clientPort = await freePort();
  const peerPort = await freePort();
  const scheme = tls ? 'https' : 'http';
  const url = `${scheme}://127.0.0.1:${clientPort}`;
  const args = [
    '--name', 'test', '--data-dir', join(dir, 'data'),
    '--listen-client-urls', url, '--advertise-client-urls', url,
    '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
    '--initial-cluster', `test=http://127.0.0.1:${peerPort}`, '--initial-cluster-state', 'new',
    '--logger', 'zap', '--log-level', 'warn',
    ...(tls ? ['--cert-file', tls.serverCert, '--key-file', tls.serverKey, '--trusted-ca-file', tls.ca, '--client-cert-auth'] : []),
  ];
  const proc = new DatastoreProcess('etcd', '/usr/bin/etcd', args);
  const ctlArgs = ['--endpoints', url, '--command-timeout=2s', ...(tls ? ['--cacert', tls.ca, '--cert', tls.clientCert, '--key', tls.clientKey] : []), 'endpoint', 'health'];
  const start = () => proc.start(async () => {
    try {
      execFileSync('/usr/bin/etcdctl', ctlArgs, { stdio: 'pipe', env: { ...process.env, ETCDCTL_API: '3' } });
      return true;
    } catch { return false; }
  });
  const destroy = async () => {
    await proc.stop().catch(() => {});
    rmSync(dir, { recursive: true, force: true });
  };
  await start().catch(async (err) => { await destroy(); throw err; });
  t?.after(() => destroy());
  return { clientPort, peerPort, url, tls, proc, start, stop: (s) => proc.stop(s), destroy };
}
