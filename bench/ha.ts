// HA datastore benchmark, first cut: per backend (sqlite, postgres, mariadb, external etcd, embedded
// etcd) at 64 clients through the full API (`skiff server`, TLS, admission, watch cache):
//   durable creates/s and p99, gets/s and p99, list(limit=500)/s and p99, the server's RSS,
// and in the same run the datastore's own raw write rate at the same durability and concurrency
// (SQLite: single-row WAL/synchronous=FULL commits, one writer; PostgreSQL/MariaDB: single-row INSERT
// commits from 64 connections; etcd: single-key puts from 64 concurrent requests — etcd always
// fsyncs its WAL before answering), with skiff's create rate as a ratio of it. For the backends
// several servers can share, a second server watches and the time from a create's start on server A
// to its event on server B is measured (cross-server watch latency). Prints each figure and one
// SUMMARY line. The `failover` entry measures leader failover: three servers on one PostgreSQL, the
// server holding kube-system/kube-controller-manager killed with SIGKILL (BENCH_FAILOVERS times, 2 by
// default), and the time from the kill to another server holding the Lease and to a controller acting
// again (a ReplicaSet created through a survivor right after the kill gets its pod). Needs root (the SQL servers run as their users), Debian's postgresql, mariadb-server
// and etcd-server, and `npm run build`.
// Run: node --import tsx bench/ha.ts   (BENCH_PHASE_MS=8000 default; BENCH_BACKENDS=sqlite,etcd,failover to choose)
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import Database from 'better-sqlite3';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { Etcd3 } from 'etcd3';
import { ApiClient } from '../test/helpers/api-client.js';
import { startPostgres } from '../test/helpers/postgres-server.js';
import { MARIADB_PASSWORD, startMariadb } from '../test/helpers/mariadb-server.js';
import { freePort, startEtcd } from '../test/helpers/datastores.js';
import { startBenchServer, rssMb, type BenchServer } from './lib/server.js';
import { percentile, driveFor, type Rate } from './lib/stats.js';

const CLIENTS = 64;
const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 8000);
const WARMUP_MS = Math.min(1500, PHASE_MS / 4);
const LIST_LIMIT = 500;
const BACKENDS = (process.env.BENCH_BACKENDS ?? 'sqlite,postgres,mariadb,etcd,etcd-embedded,failover').split(',');
const FAILOVERS = Number(process.env.BENCH_FAILOVERS ?? 2);

/** Runs `op` from `clients` (default CLIENTS) loops for `ms` (bench/lib/stats.ts). */
const drive = (ms: number, op: (w: number, i: number) => Promise<boolean>, clients = CLIENTS) => driveFor(ms, clients, op);

const fmt = (r: Rate) => `${Math.round(r.perSec)}/s  p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms  (${r.n}${r.errors ? `, ${r.errors} errors` : ''})`;
const pad = 'x'.repeat(200);
const value = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { pad } });

interface ApiFigures { creates: Rate; gets: Rate; lists: Rate; rssMb: number; watchP99?: number; watchP50?: number }

/** Creates, gets and lists through the API of a server started with `args`; `second` adds a watching server. */
/** Servers sharing a datastore share the cluster's CAs through it, sealed with this token (datastore-bootstrap.ts). */
const HA_TOKEN = 'skiff-bench-ha-token';

async function throughApi(label: string, args: string[], second?: string[]): Promise<ApiFigures & { server: BenchServer }> {
  const server = await startBenchServer([...args, '--disable-controller-manager'], { readyTimeoutMs: 120_000 });
  const api = ApiClient.fromKubeconfig(server.kubeconfigPath, { maxSockets: CLIENTS });
  try {
    const coll = '/api/v1/namespaces/default/configmaps';
    const created: string[] = [];
    const create = async (name: string) => {
      const r = await api.post(coll, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { pad } });
      if (r.status === 201) created.push(name);
      return r.status === 201;
    };
    await drive(WARMUP_MS, (w, i) => create(`warm-${w}-${i}`));
    const creates = await drive(PHASE_MS, (w, i) => create(`m-${w}-${i}`));
    console.log(`  API creates:       ${fmt(creates)}`);
    const gets = await drive(PHASE_MS / 2, async () => (await api.get(`${coll}/${created[Math.floor(Math.random() * created.length)]}`)).status === 200);
    console.log(`  API gets:          ${fmt(gets)}`);
    const lists = await drive(PHASE_MS / 2, async () => (await api.get(`${coll}?limit=${LIST_LIMIT}`)).status === 200);
    console.log(`  API list(${LIST_LIMIT}):    ${fmt(lists)}   (${created.length} ConfigMaps stored)`);
    const rss = rssMb(server.proc.pid!);
    console.log(`  server RSS ${rss.toFixed(0)} MB`);
    const out: ApiFigures & { server: BenchServer } = { creates, gets, lists, rssMb: rss, server };
    if (second) {
      const b = await startBenchServer([...second, '--disable-controller-manager'], { readyTimeoutMs: 120_000 });
      const apiB = ApiClient.fromKubeconfig(b.kubeconfigPath);
      try {
        const started = new Map<string, number>();
        const seen: number[] = [];
        const rv = (await apiB.get(coll + '?limit=1')).body.match(/"resourceVersion":"(\d+)"/)?.[1] ?? '0';
        const w = await apiB.watch(`${coll}?watch=1&resourceVersion=${rv}`, (ev) => {
          const t = started.get(ev.object?.metadata?.name);
          if (ev.type === 'ADDED' && t !== undefined) seen.push(performance.now() - t);
        });
        // A steady stream of single creates (16 clients), each timed from its start on A to its event on B.
        await drive(PHASE_MS / 2, async (wk, i) => {
          const name = `x-${wk}-${i}`;
          started.set(name, performance.now());
          return (await api.post(coll, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { pad } })).status === 201;
        }, 16);
        await new Promise((r) => setTimeout(r, 1000));
        w.close();
        seen.sort((x, y) => x - y);
        out.watchP50 = percentile(seen, 50);
        out.watchP99 = percentile(seen, 99);
        console.log(`  cross-server watch (create start on A → event on B): p50 ${out.watchP50.toFixed(1)} ms  p99 ${out.watchP99.toFixed(1)} ms  (${seen.length} events of ${started.size})  server B RSS ${rssMb(b.proc.pid!).toFixed(0)} MB`);
      } finally {
        apiB.close();
        await b.stop();
      }
    }
    return out;
  } finally {
    api.close();
  }
}

async function rawSqlite(): Promise<Rate> {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-raw-'));
  const db = new Database(join(dir, 'raw.db'));
  try {
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.exec('CREATE TABLE kv (id INTEGER PRIMARY KEY, name TEXT NOT NULL, value TEXT NOT NULL)');
    const insert = db.prepare('INSERT INTO kv (name, value) VALUES (?, ?)');
    // One writer: clients take turns; each INSERT is its own fsynced commit.
    return await drive(PHASE_MS, async (w, i) => {
      insert.run(`/core/configmaps/default/${w}-${i}`, value);
      await new Promise((r) => setImmediate(r));
      return true;
    });
  } finally {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function rawPostgres(url: string): Promise<Rate> {
  const admin = new pg.Client({ connectionString: url.replace(/\/[^/]*$/, '/postgres') });
  await admin.connect();
  await admin.query('CREATE DATABASE raw_bench');
  await admin.end();
  const pool = new pg.Pool({ connectionString: url.replace(/\/[^/]*$/, '/raw_bench'), max: CLIENTS });
  try {
    await pool.query('CREATE TABLE kv (id BIGSERIAL PRIMARY KEY, name TEXT COLLATE "C" NOT NULL, value TEXT NOT NULL)');
    await pool.query('CREATE INDEX kv_name ON kv (name, id)');
    const ins = (name: string) => pool.query({ name: 'ins', text: 'INSERT INTO kv (name, value) VALUES ($1, $2)', values: [name, value] });
    await drive(WARMUP_MS, async (w, i) => { await ins(`/w/${w}-${i}`); return true; });
    return await drive(PHASE_MS, async (w, i) => { await ins(`/core/configmaps/default/${w}-${i}`); return true; });
  } finally {
    await pool.end();
  }
}

async function rawMariadb(port: number): Promise<Rate> {
  const opts = { host: '127.0.0.1', port, user: 'skiff', password: MARIADB_PASSWORD };
  const admin = await mysql.createConnection(opts);
  await admin.query('CREATE DATABASE raw_bench');
  await admin.end();
  const pool = mysql.createPool({ ...opts, database: 'raw_bench', connectionLimit: CLIENTS });
  try {
    await pool.query(`CREATE TABLE kv (id BIGINT AUTO_INCREMENT PRIMARY KEY, name VARCHAR(630) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      value LONGTEXT NOT NULL, KEY kv_name (name, id)) ENGINE=InnoDB`);
    const ins = (w: number, i: number) => pool.execute('INSERT INTO kv (name, value) VALUES (?, ?)', [`/core/configmaps/default/${w}-${i}`, value]);
    await drive(WARMUP_MS, async (w, i) => { await ins(w + 1000, i); return true; });
    return await drive(PHASE_MS, async (w, i) => { await ins(w, i); return true; });
  } finally {
    await pool.end();
  }
}

/** Single-key puts from 64 concurrent requests on one client connection, as the server's driver sends them. */
async function rawEtcd(client: Etcd3): Promise<Rate> {
  const v = Buffer.from(value);
  const put = (k: string) => client.kv.put({ key: Buffer.from(k), value: v });
  await drive(WARMUP_MS, async (w, i) => { await put(`/raw-bench/warm/${w}-${i}`); return true; });
  return drive(PHASE_MS, async (w, i) => { await put(`/raw-bench/core/configmaps/default/${w}-${i}`); return true; });
}

interface Row { name: string; api: ApiFigures; raw: Rate }
const rows: Row[] = [];
const report = (name: string, api: ApiFigures, raw: Rate, rawLabel: string) => {
  console.log(`  raw ${rawLabel}: ${fmt(raw)}`);
  console.log(`  skiff creates / raw writes: ${(api.creates.perSec / raw.perSec).toFixed(2)}x`);
  rows.push({ name, api, raw });
};

console.log(`HA datastore benchmark: ${CLIENTS} clients, ${PHASE_MS} ms per phase, ConfigMaps of ~${pad.length + 100} bytes, backends ${BACKENDS.join(',')}`);
if (BACKENDS.includes('sqlite')) {
  console.log('sqlite (embedded default):');
  const api = await throughApi('sqlite', []);
  await api.server.stop();
  report('sqlite', api, await rawSqlite(), 'SQLite single-row commits (WAL, synchronous=FULL, 1 writer)');
}
if (BACKENDS.includes('postgres')) {
  const db = await startPostgres();
  try {
    console.log('postgres (Debian PostgreSQL, fsync=on, synchronous_commit=on):');
    const ep = ['--datastore-endpoint', db.url('skiff_bench'), '--token', HA_TOKEN];
    const api = await throughApi('postgres', ep, ep);
    await api.server.stop();
    report('postgres', api, await rawPostgres(db.url()), `PostgreSQL single-row INSERT commits (${CLIENTS} connections)`);
  } finally {
    await db.destroy();
  }
}
if (BACKENDS.includes('mariadb')) {
  const maria = await startMariadb().catch((err) => { console.log(`mariadb skipped: ${(err as Error).message}`); return undefined; });
  if (maria) {
    try {
      console.log('mariadb (Debian MariaDB, innodb_flush_log_at_trx_commit=1, sync_binlog=1):');
      const ep = ['--datastore-endpoint', maria.url('skiff_bench'), '--token', HA_TOKEN];
      const api = await throughApi('mariadb', ep, ep);
      await api.server.stop();
      report('mariadb', api, await rawMariadb(maria.port), `MariaDB single-row INSERT commits (${CLIENTS} connections)`);
    } finally {
      await maria.destroy();
    }
  }
}
if (BACKENDS.includes('etcd')) {
  const etcd = await startEtcd();
  try {
    console.log('etcd (Debian etcd 3.4, external, one member, plain http on loopback):');
    const ep = ['--datastore-endpoint', etcd.url, '--token', HA_TOKEN];
    const api = await throughApi('etcd', ep, ep);
    await api.server.stop();
    const client = new Etcd3({ hosts: etcd.url });
    try {
      report('etcd', api, await rawEtcd(client), `etcd puts (${CLIENTS} concurrent)`);
    } finally {
      client.close();
    }
  } finally {
    await etcd.destroy();
  }
}
if (BACKENDS.includes('etcd-embedded')) {
  console.log('etcd-embedded (--cluster-init: Debian etcd as the server\'s child, TLS):');
  const [cp, pp] = [await freePort(), await freePort()];
  const api = await throughApi('etcd-embedded', ['--cluster-init', '--etcd-client-port', String(cp), '--etcd-peer-port', String(pp), '--node-ip', '127.0.0.1']);
  const d = join(api.server.dataDir, 'server', 'tls', 'etcd');
  const client = new Etcd3({ hosts: `https://127.0.0.1:${cp}`, credentials: { rootCertificate: readFileSync(join(d, 'server-ca.crt')), certChain: readFileSync(join(d, 'client.crt')), privateKey: readFileSync(join(d, 'client.key')) } });
  try {
    report('etcd-embedded', api, await rawEtcd(client), `etcd puts over TLS (${CLIENTS} concurrent, same member)`);
  } finally {
    client.close();
    await api.server.stop();
  }
}
/** Kill → Lease taken and kill → a controller acts, per kill of the leading server (three servers on PostgreSQL). */
async function leaderFailover(kills: number): Promise<{ leaseMs: number; actMs: number }[]> {
  const db = await startPostgres();
  const servers: BenchServer[] = [];
  const out: { leaseMs: number; actMs: number }[] = [];
  try {
    const ep = ['--datastore-endpoint', db.url('skiff_failover'), '--token', HA_TOKEN];
    for (let i = 0; i < Math.max(3, kills + 1); i++) servers.push(await startBenchServer(ep, { readyTimeoutMs: 120_000 }));
    const idOf = (s: BenchServer) => readFileSync(join(s.dataDir, 'server', 'id'), 'utf8').trim();
    const apis = new Map(servers.map((s) => [s, ApiClient.fromKubeconfig(s.kubeconfigPath)]));
    const alive = () => servers.filter((s) => s.proc.exitCode === null && s.proc.signalCode === null);
    const holder = async (via: BenchServer) => {
      const r = await apis.get(via)!.get('/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/kube-controller-manager');
      return r.status === 200 ? String(JSON.parse(r.body).spec?.holderIdentity ?? '') : '';
    };
    const poll = async <T>(fn: () => Promise<T | undefined>, limitMs = 120_000): Promise<T> => {
      const until = performance.now() + limitMs;
      for (;;) {
        const v = await fn().catch(() => undefined);
        if (v !== undefined) return v;
        if (performance.now() > until) throw new Error('failover: timed out');
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    for (let k = 0; k < kills; k++) {
      const leader = await poll(async () => {
        const h = await holder(alive()[0]!);
        return alive().find((s) => h.endsWith(`_${idOf(s)}`));
      });
      const old = await holder(leader);
      const via = alive().find((s) => s !== leader)!;
      const api = apis.get(via)!;
      leader.proc.kill('SIGKILL');
      const t0 = performance.now();
      const rs = `failover-${k}`;
      const created = await api.post('/apis/apps/v1/namespaces/default/replicasets', {
        apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: rs },
        spec: { replicas: 1, selector: { matchLabels: { failover: rs } }, template: { metadata: { labels: { failover: rs } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
      });
      if (created.status !== 201) throw new Error(`failover: ReplicaSet not created (${created.status})`);
      let leaseMs: number | undefined;
      const actMs = await poll(async () => {
        if (leaseMs === undefined) {
          const h = await holder(via);
          if (h && h !== old) leaseMs = performance.now() - t0;
        }
        const pods = await api.get(`/api/v1/namespaces/default/pods?labelSelector=failover%3D${rs}`);
        return pods.status === 200 && JSON.parse(pods.body).items.length > 0 ? performance.now() - t0 : undefined;
      });
      leaseMs ??= await poll(async () => { const h = await holder(via); return h && h !== old ? performance.now() - t0 : undefined; });
      console.log(`  kill -9 of the leader #${k + 1}: Lease taken after ${(leaseMs / 1000).toFixed(1)} s, a controller acted after ${(actMs / 1000).toFixed(1)} s`);
      out.push({ leaseMs, actMs });
    }
    for (const a of apis.values()) a.close();
  } finally {
    for (const s of servers) await s.stop();
    await db.destroy();
  }
  return out;
}

let failovers: { leaseMs: number; actMs: number }[] = [];
if (BACKENDS.includes('failover')) {
  console.log(`leader failover (3 servers on PostgreSQL, Kubernetes' lease timing 15 s / 10 s / 2 s, ${FAILOVERS} kills):`);
  failovers = await leaderFailover(FAILOVERS);
}
const part = (r: Row) => `${r.name}: creates ${Math.round(r.api.creates.perSec)}/s p99 ${r.api.creates.p99.toFixed(0)} ms, gets ${Math.round(r.api.gets.perSec)}/s, list(${LIST_LIMIT}) ${r.api.lists.perSec.toFixed(0)}/s p99 ${r.api.lists.p99.toFixed(0)} ms, raw ${Math.round(r.raw.perSec)}/s, API/raw ${(r.api.creates.perSec / r.raw.perSec).toFixed(2)}x`
  + (r.api.watchP99 !== undefined ? `, A→B watch p99 ${r.api.watchP99.toFixed(0)} ms` : '') + `, RSS ${r.api.rssMb.toFixed(0)} MB`;
const failoverPart = failovers.length
  ? [`leader failover: Lease taken ${failovers.map((f) => (f.leaseMs / 1000).toFixed(1)).join(', ')} s, controller acting ${failovers.map((f) => (f.actMs / 1000).toFixed(1)).join(', ')} s after kill -9`]
  : [];
console.log(`SUMMARY ${[...rows.map(part), ...failoverPart].join(' | ')}`);
