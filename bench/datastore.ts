// Datastore benchmark: durable creates/s and p99 at 64 concurrent clients through the full API
// (`skiff server`, TLS, admission, the watch cache) on SQLite and on PostgreSQL, and in the same run
// the datastore's own raw write rate at the same durability and concurrency:
//  - sqlite: single-row INSERT commits (WAL, synchronous=FULL) from one connection (SQLite has one
//    writer; 64 clients queue behind it);
//  - postgres: single-row INSERT commits (synchronous_commit=on) from 64 connections at once, so
//    PostgreSQL's own WAL group commit applies.
//  - mariadb: likewise (innodb_flush_log_at_trx_commit=1), skipped with BENCH_MARIADB=0.
// Between them, the storage layer alone (log layer + watch cache, no HTTP) shows what the seam costs
// apart from the API's CPU. Prints the figures and one summary line with skiff/raw ratios. Needs root (PostgreSQL runs as the
// `postgres` user) and `npm run build`. Run: node --import tsx bench/datastore.ts
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import pg from 'pg';
import mysql from 'mysql2/promise';
import { ApiClient } from '../test/helpers/api-client.js';
import { startPostgres } from '../test/helpers/postgres-server.js';
import { MARIADB_PASSWORD, startMariadb } from '../test/helpers/mariadb-server.js';
import { startBenchServer, rssMb } from './lib/server.js';
import { driveFor, type Rate } from './lib/stats.js';
import { CacheStore } from '../src/storage/cache.js';
import { LogBackend } from '../src/storage/log.js';
import { SqliteDriver } from '../src/storage/sqlite.js';
import { PostgresDriver } from '../src/storage/postgres.js';
import { MysqlDriver } from '../src/storage/mysql.js';
import type { Driver } from '../src/storage/driver.js';

const CLIENTS = 64;
const PHASE_MS = Number(process.env.BENCH_PHASE_MS ?? 8000);
const WARMUP_MS = 1500;

/** Runs `op` from `clients` (default CLIENTS) loops for `ms` (bench/lib/stats.ts). */
const drive = (ms: number, op: (w: number, i: number) => Promise<boolean>, clients = CLIENTS) => driveFor(ms, clients, op);

const fmt = (r: Rate) => `${Math.round(r.perSec)}/s  p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms  (${r.n} writes${r.errors ? `, ${r.errors} errors` : ''})`;

const pad = 'x'.repeat(200);
let run = 0;

/** Creates through the API of a fresh server started with `args`. */
async function throughApi(label: string, args: string[]): Promise<{ rate: Rate; rssMb: number }> {
  const server = await startBenchServer([...args, '--disable-controller-manager']);
  const api = ApiClient.fromKubeconfig(server.kubeconfigPath, { maxSockets: CLIENTS });
  try {
    const tag = `r${++run}`;
    const create = async (w: number, i: number, phase: string) => {
      const r = await api.post('/api/v1/namespaces/default/configmaps', {
        apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${tag}-${phase}-${w}-${i}` }, data: { pad },
      });
      return r.status === 201;
    };
    await drive(WARMUP_MS, (w, i) => create(w, i, 'warm'));
    const rate = await drive(PHASE_MS, (w, i) => create(w, i, 'm'));
    const rss = rssMb(server.proc.pid!);
    console.log(`skiff API creates, ${label}, ${CLIENTS} clients: ${fmt(rate)}  server RSS ${rss.toFixed(0)} MB`);
    return { rate, rssMb: rss };
  } finally {
    api.close();
    await server.stop();
  }
}

/** Creates through the storage layer alone (log layer + watch cache, no HTTP), same durability. */
async function throughStore(label: string, driver: Driver): Promise<Rate> {
  const backend = new LogBackend(driver);
  const store = new CacheStore(backend);
  await store.start();
  try {
    const create = (w: number, i: number, phase: string) => store.create(`/core/configmaps/default/${phase}-${w}-${i}`, {
      apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `${phase}-${w}-${i}`, namespace: 'default' }, data: { pad },
    }).then(() => true);
    await drive(WARMUP_MS, (w, i) => create(w, i, 'warm'));
    const tx0 = backend.stats.transactions;
    const rate = await drive(PHASE_MS, (w, i) => create(w, i, 'm'));
    const tx = backend.stats.transactions - tx0;
    console.log(`skiff store creates (log layer + cache, no HTTP), ${label}: ${fmt(rate)}  ${(rate.n / Math.max(tx, 1)).toFixed(1)} writes per commit`);
    return rate;
  } finally {
    await store.close();
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
    const value = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { pad } });
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
  const rawUrl = url.replace(/\/[^/]*$/, '/raw_bench');
  const pool = new pg.Pool({ connectionString: rawUrl, max: CLIENTS });
  try {
    await pool.query('CREATE TABLE kv (id BIGSERIAL PRIMARY KEY, name TEXT COLLATE "C" NOT NULL, value TEXT NOT NULL)');
    await pool.query('CREATE INDEX kv_name ON kv (name, id)');
    const value = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { pad } });
    await drive(WARMUP_MS, async (w, i) => { await pool.query({ name: 'ins', text: 'INSERT INTO kv (name, value) VALUES ($1, $2)', values: [`/w/${w}-${i}`, value] }); return true; });
    return await drive(PHASE_MS, async (w, i) => {
      await pool.query({ name: 'ins', text: 'INSERT INTO kv (name, value) VALUES ($1, $2)', values: [`/core/configmaps/default/${w}-${i}`, value] });
      return true;
    });
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
    const value = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { pad } });
    const ins = (w: number, i: number) => pool.execute('INSERT INTO kv (name, value) VALUES (?, ?)', [`/core/configmaps/default/${w}-${i}`, value]);
    await drive(WARMUP_MS, async (w, i) => { await ins(w + 1000, i); return true; });
    return await drive(PHASE_MS, async (w, i) => { await ins(w, i); return true; });
  } finally {
    await pool.end();
  }
}

const db = await startPostgres();
const maria = process.env.BENCH_MARIADB === '0' ? undefined : await startMariadb().catch((err) => { console.log(`MariaDB skipped: ${(err as Error).message}`); return undefined; });
try {
  console.log(`datastore benchmark: ${CLIENTS} clients, ${PHASE_MS} ms per phase, ConfigMaps of ~${pad.length + 100} bytes`);
  const sqliteRaw = await rawSqlite();
  console.log(`raw SQLite single-row commits (WAL, synchronous=FULL, 1 writer): ${fmt(sqliteRaw)}`);
  const storeDir = mkdtempSync(join(tmpdir(), 'skiff-store-bench-'));
  const sqliteStore = await throughStore('sqlite', new SqliteDriver(join(storeDir, 'state.db')));
  rmSync(storeDir, { recursive: true, force: true });
  const sqliteApi = await throughApi('sqlite', []);
  const pgRaw = await rawPostgres(db.url());
  console.log(`raw PostgreSQL single-row INSERT commits (synchronous_commit=on, ${CLIENTS} connections): ${fmt(pgRaw)}`);
  const pgStore = await throughStore('postgres', new PostgresDriver(db.url('skiff_store_bench')));
  const pgApi = await throughApi('postgres', ['--datastore-endpoint', db.url('skiff_bench')]);
  let mariaRaw: Rate | undefined;
  let mariaApi: { rate: Rate } | undefined;
  let mariaStore: Rate | undefined;
  if (maria) {
    mariaRaw = await rawMariadb(maria.port);
    console.log(`raw MariaDB single-row INSERT commits (innodb_flush_log_at_trx_commit=1, ${CLIENTS} connections): ${fmt(mariaRaw)}`);
    mariaStore = await throughStore('mariadb', new MysqlDriver(maria.url('skiff_store_bench')));
    mariaApi = await throughApi('mariadb', ['--datastore-endpoint', maria.url('skiff_bench')]);
  }
  const ratio = (a: Rate, b: Rate) => (a.perSec / b.perSec).toFixed(2);
  const part = (name: string, api: Rate, store: Rate, raw: Rate) =>
    `${name}: API ${Math.round(api.perSec)}/s p99 ${api.p99.toFixed(0)} ms, store ${Math.round(store.perSec)}/s, raw ${Math.round(raw.perSec)}/s: API/raw ${ratio(api, raw)}x store/raw ${ratio(store, raw)}x`;
  console.log(`SUMMARY ${[part('sqlite', sqliteApi.rate, sqliteStore, sqliteRaw), part('postgres', pgApi.rate, pgStore, pgRaw),
    ...(mariaApi && mariaRaw && mariaStore ? [part('mariadb', mariaApi.rate, mariaStore, mariaRaw)] : [])].join(' | ')}`);
} finally {
  await db.destroy();
  await maria?.destroy();
}
