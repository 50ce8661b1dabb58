// Embedded etcd, k3s style (`skiff server --cluster-init`): Debian's etcd binary runs as a child of
// the server, data in <data-dir>/server/db/etcd, peer and client TLS from certificates under
// <data-dir>/server/tls/etcd (pki/etcd-certs.ts), listening on loopback and the node address. The
// server then uses it through the etcd driver like an external one. The child is supervised: when it
// dies the server logs it, starts it again with backoff, and the driver's watch and requests recover
// (they fail with 503-class errors meanwhile). k3s links etcd into its own process; a child process
// keeps skiff's event loop free of raft and fsync work, and setpriv's parent-death signal makes the
// child stop when the server dies, even by SIGKILL.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, existsSync, mkdirSync, readFileSync, writeFileSync, type WriteStream } from 'node:fs';
import https from 'node:https';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { ensureEtcdPki, type EtcdPkiFiles } from '../pki/etcd-certs.js';
import { logger } from '../util/log.js';

const log = logger('etcd');

export const ETCD_BINARY = '/usr/bin/etcd';

export interface EmbeddedEtcdOptions {
  dataDir: string;
  nodeName: string;
  /** The address other members reach this one at (the node IP); loopback is always listened on too. */
  advertiseIp: string;
  clientPort?: number;
  peerPort?: number;
  /** Joining an existing cluster: `name=peerURL,...` as member add returned it (this member included). */
  initialCluster?: string;
  /** The member name (default: the stored one, or a new `<node>-<random>`). */
  name?: string;
}

/** `https://ip:port`, IPv6 in brackets. */
export function urlOf(ip: string, port: number): string {
  return `https://${ip.includes(':') ? `[${ip}]` : ip}:${port}`;
}

export class EmbeddedEtcd {
  readonly clientPort: number;
  readonly peerPort: number;
  readonly dir: string;
  readonly name: string;
  private pki?: EtcdPkiFiles;
  private child?: ChildProcess;
  private stopping = false;
  private restarts = 0;
  private restartTimer?: NodeJS.Timeout;
  private logTail = '';
  private logFile?: WriteStream;
  private startedAt = 0;

  constructor(private readonly opts: EmbeddedEtcdOptions) {
    this.clientPort = opts.clientPort ?? 2379;
    this.peerPort = opts.peerPort ?? 2380;
    this.dir = join(opts.dataDir, 'server', 'db', 'etcd');
    this.name = opts.name ?? memberName(this.dir, opts.nodeName);
  }

  /** Where the API server reaches its member. */
  get endpoint(): string {
    return urlOf('127.0.0.1', this.clientPort);
  }

  get peerUrl(): string {
    return urlOf(this.opts.advertiseIp, this.peerPort);
  }

  get clientUrl(): string {
    return urlOf(this.opts.advertiseIp, this.clientPort);
  }

  /** The API server's client credentials for etcd (`--datastore-cafile/-certfile/-keyfile`). */
  get tls(): { caFile: string; certFile: string; keyFile: string } {
    const p = this.pki!;
    return { caFile: p.serverCa, certFile: p.clientCert, keyFile: p.clientKey };
  }

  /** Whether this member has joined a cluster before (etcd ignores the initial-cluster flags then). */
  initialized(): boolean {
    return existsSync(join(this.dir, 'member'));
  }

  async start(): Promise<void> {
    if (!existsSync(ETCD_BINARY)) throw new Error(`--cluster-init needs ${ETCD_BINARY} (Debian package etcd-server)`);
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    if (!existsSync(join(this.dir, 'name'))) writeFileSync(join(this.dir, 'name'), this.name + '\n', { mode: 0o600 });
    const ips = [...new Set(['127.0.0.1', this.opts.advertiseIp])];
    this.pki = await ensureEtcdPki(this.opts.dataDir, { dns: ['localhost', hostname()], ips });
    this.logFile = createWriteStream(join(this.opts.dataDir, 'server', 'db', 'etcd.log'), { flags: 'a', mode: 0o600 });
    this.spawnChild();
    await this.waitHealthy(120_000);
    log.info({ name: this.name, client: this.clientUrl, peer: this.peerUrl }, 'embedded etcd ready');
  }

  private args(): string[] {
    const p = this.pki!;
    const ips = [...new Set(['127.0.0.1', this.opts.advertiseIp])];
    const joining = !!this.opts.initialCluster && !this.initialized();
    return [
      '--name', this.name,
      '--data-dir', this.dir,
      '--listen-client-urls', ips.map((ip) => urlOf(ip, this.clientPort)).join(','),
      '--advertise-client-urls', this.clientUrl,
      '--listen-peer-urls', ips.map((ip) => urlOf(ip, this.peerPort)).join(','),
      '--initial-advertise-peer-urls', this.peerUrl,
      '--initial-cluster', joining ? this.opts.initialCluster! : `${this.name}=${this.peerUrl}`,
      '--initial-cluster-state', joining ? 'existing' : 'new',
      '--cert-file', p.serverCert, '--key-file', p.serverKey, '--trusted-ca-file', p.serverCa, '--client-cert-auth',
      '--peer-cert-file', p.peerCert, '--peer-key-file', p.peerKey, '--peer-trusted-ca-file', p.peerCa, '--peer-client-cert-auth',
      // k3s's timing: tolerant of slow disks and busy small machines.
      '--heartbeat-interval', '500', '--election-timeout', '5000',
      '--snapshot-count', '10000',
      '--logger', 'zap', '--log-outputs', 'stderr', '--log-level', 'warn',
    ];
  }

  private spawnChild(): void {
    // setpriv: the child gets SIGTERM when the server dies, however it dies.
    const child = spawn('setpriv', ['--pdeathsig', 'TERM', '--', ETCD_BINARY, ...this.args()], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.startedAt = Date.now();
    writeFileSync(join(this.opts.dataDir, 'server', 'db', 'etcd.pid'), `${child.pid ?? ''}\n`);
    const keep = (b: Buffer) => {
      this.logTail = (this.logTail + b.toString()).slice(-4000);
      this.logFile?.write(b);
    };
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    child.once('exit', (code, signal) => {
      if (this.child === child) this.child = undefined;
      if (this.stopping) return;
      // Running for a while resets the backoff: a crash a day is not a crash loop.
      if (Date.now() - this.startedAt > 60_000) this.restarts = 0;
      const delay = Math.min(15_000, 1000 * 2 ** this.restarts++);
      log.error({ code, signal, restartInMs: delay, tail: this.logTail.split('\n').filter(Boolean).slice(-3).join(' | ') }, 'embedded etcd exited; restarting it');
      this.restartTimer = setTimeout(() => { if (!this.stopping) this.spawnChild(); }, delay);
    });
  }

  /** The child's pid (tests kill it). */
  pid(): number | undefined {
    return this.child?.pid;
  }

  /** GET /health on the client port with the client certificate: {"health":"true"} once it has a leader. */
  health(): Promise<boolean> {
    const p = this.pki!;
    return new Promise((resolve) => {
      const req = https.get(`${this.endpoint}/health`, {
        ca: readFileSync(p.serverCa), cert: readFileSync(p.clientCert), key: readFileSync(p.clientKey), timeout: 3000,
      }, (res) => {
        let body = '';
        res.on('data', (c) => { body += c; });
        res.on('end', () => resolve(res.statusCode === 200 && /"health":\s*"true"/.test(body)));
        res.on('error', () => resolve(false));
      });
      req.on('timeout', () => req.destroy());
      req.on('error', () => resolve(false));
    });
  }

  private async waitHealthy(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline) {
      if (!this.child) throw new Error(`embedded etcd exited at start: ${this.logTail.split('\n').filter(Boolean).slice(-5).join('\n')}`);
      if (await this.health()) return;
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`embedded etcd did not become healthy within ${ms / 1000} s (a joined cluster needs a quorum of its members running): ${this.logTail.split('\n').filter(Boolean).slice(-3).join(' | ')}`);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    const child = this.child;
    this.child = undefined;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    }
    this.logFile?.end();
  }
}

/** The member's name, `<node>-<random>` as k3s, kept in <dir>/name so it survives restarts. */
function memberName(dir: string, nodeName: string): string {
  const file = join(dir, 'name');
  try {
    const n = readFileSync(file, 'utf8').trim();
    if (n) return n;
  } catch { /* first start */ }
  // Written by start(): a join refused before it leaves nothing behind.
  return `${nodeName}-${randomBytes(4).toString('hex')}`;
}

export interface EmbeddedEtcdSetup {
  dataDir: string;
  clusterInit: boolean;
  /** `--server`: join the cluster of this server. */
  joinServer?: string;
  token?: string;
  nodeName: string;
  advertiseIp: string;
  clientPort?: number;
  peerPort?: number;
}

/**
 * Starts the embedded etcd when this server runs one (--cluster-init, --server, or an etcd data dir
 * from an earlier start, as k3s decides): joins through the first server when new to a cluster,
 * migrates an SQLite datastore into a fresh cluster. Undefined when the server uses another datastore.
 */
export async function startEmbeddedEtcd(o: EmbeddedEtcdSetup): Promise<EmbeddedEtcd | undefined> {
  const dir = join(o.dataDir, 'server', 'db', 'etcd');
  const initialized = existsSync(join(dir, 'member'));
  if (!o.clusterInit && !o.joinServer && !initialized) return undefined;
  const base = { dataDir: o.dataDir, nodeName: o.nodeName, advertiseIp: o.advertiseIp, clientPort: o.clientPort, peerPort: o.peerPort };
  if (o.joinServer && !initialized) {
    if (!o.token) throw new Error('--server needs --token (the first server\'s token, `skiff token show` there)');
    const { joinEtcdCluster, promoteLearner } = await import('./embedded-etcd-join.js');
    // The member's name and peer URL are known before anything is written.
    const probe = new EmbeddedEtcd(base);
    const reply = await joinEtcdCluster(o.joinServer, o.token, o.dataDir, probe.name, probe.peerUrl);
    const etcd = new EmbeddedEtcd({ ...base, initialCluster: reply.initialCluster, name: probe.name });
    await etcd.start();
    const t = etcd.tls;
    await promoteLearner(reply, { ca: readFileSync(t.caFile), cert: readFileSync(t.certFile), key: readFileSync(t.keyFile) });
    return etcd;
  }
  const etcd = new EmbeddedEtcd(base);
  await etcd.start();
  if (!o.joinServer) {
    try {
      const { EtcdBackend } = await import('../storage/etcd.js');
      const { migrateSqliteToEtcd } = await import('./embedded-etcd-migrate.js');
      const t = etcd.tls;
      const backend = new EtcdBackend({ endpoints: [etcd.endpoint], ca: readFileSync(t.caFile), cert: readFileSync(t.certFile), key: readFileSync(t.keyFile) });
      await backend.start();
      try {
        await migrateSqliteToEtcd(o.dataDir, backend);
      } finally {
        await backend.close();
      }
    } catch (err) {
      await etcd.stop();
      throw new Error(`migrating the SQLite datastore into etcd: ${(err as Error).message}`);
    }
  }
  return etcd;
}
