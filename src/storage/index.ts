// Opening the datastore named by `--datastore-endpoint` (k3s's syntax), with the watch cache on top:
//  - unset, `sqlite` or `sqlite://`: SQLite under <data-dir>/server/db/state.db (k3s's layout);
//  - `postgres://user:pass@host:5432/db` or `postgresql://...`: PostgreSQL;
//  - `mysql://user:pass@tcp(host:3306)/db`: MySQL 8 / MariaDB 10.11;
//  - `https://host:2379` or `http://...` (comma-separated for several members): etcd 3.4+ (etcd.ts).
// Callers see the Store; the backend is returned for health checks, compaction marks and metrics.
// Compaction is scheduled here, behind the Backend, for every driver.
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CacheStore } from './cache.js';
import { LogBackend } from './log.js';
import { SqliteBackend } from './sqlite.js';
import { redact } from './driver.js';
import type { Backend, Store } from './types.js';
import type { EtcdBackend } from './etcd.js';

export * from './types.js';
export { CacheStore, type CacheStoreOptions } from './cache.js';
export { EncryptingBackend, loadEncryptionConfig, type EncryptionConfiguration } from './encryption.js';
export { LogBackend, type LogBackendOptions, type LogStats } from './log.js';
export { SqliteBackend, SqliteDriver, type SqliteBackendOptions, type SqliteStats } from './sqlite.js';
// postgres.ts and mysql.ts are loaded only when an endpoint names them: their client libraries
// take about a second to load on a busy small machine, which the SQLite default must not pay.
export { DatastoreUnavailableError, type Driver } from './driver.js';
export type { EtcdBackend, EtcdBackendOptions } from './etcd.js';
export { startEventTtl, type EventTtl } from './event-ttl.js';

export interface OpenStoreOptions {
  /** `--datastore-endpoint`; unset or empty: the embedded SQLite. */
  endpoint?: string;
  /** Events kept per resource for watch resumption. */
  ringSize?: number;
  /** Revisions of history read into the rings at start (CacheStoreOptions.prefillRevisions). */
  prefillRevisions?: number;
  /** Revisions the automatic compactor keeps. */
  compactKeep?: number;
  /** How often the automatic compactor runs (0: not at all). Default 5 min. */
  compactIntervalMs?: number;
  log?: (msg: string, fields?: object) => void;
  /** Wraps the backend the cache sits on (encryption at rest transforms values there). */
  wrap?: (backend: Backend) => Backend;
  /** `--datastore-cafile/-certfile/-keyfile`: TLS to the datastore (etcd, postgres, mysql). */
  tls?: DatastoreTls;
  /** The embedded SQLite's WAL checkpoints in a worker thread (sqlite-checkpointer.ts). */
  sqliteCheckpointInWorker?: boolean;
}

export interface DatastoreTls {
  caFile?: string;
  certFile?: string;
  keyFile?: string;
}

/** Any backend `backendFor` opens: the Backend contract plus the compaction schedule and counters. */
export type DatastoreBackend = LogBackend | EtcdBackend;

/** Reads one TLS file for the datastore, failing with the flag's name. */
function tlsFile(path: string | undefined, flag: string): Buffer | undefined {
  if (!path) return undefined;
  try {
    return readFileSync(path);
  } catch (err) {
    throw new Error(`${flag} ${path}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : String(err)}`);
  }
}

/**
 * The client URLs of an etcd endpoint (`https://h1:2379,https://h2:2379`), each checked to be a bare
 * http(s)://host:port (etcd serves gRPC at its root: a path or credentials mean a typo).
 */
export function parseEtcdEndpoint(endpoint: string): string[] {
  const urls = endpoint.split(',').map((s) => s.trim()).filter(Boolean);
  const bad = (why: string) => new Error(`invalid etcd datastore endpoint ${JSON.stringify(redact(endpoint))}: ${why} (expected https://host:2379 or http://host:2379, comma-separated for several members)`);
  if (!urls.length) throw bad('no address');
  const scheme = urls[0].slice(0, urls[0].indexOf(':'));
  return urls.map((u) => {
    let url: URL;
    try { url = new URL(u); } catch { throw bad(`${JSON.stringify(redact(u))} is not a URL`); }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(`${url.protocol} is not http or https`);
    if (url.protocol.slice(0, -1) !== scheme) throw bad('all members must use the same scheme');
    if (!url.hostname) throw bad('no host');
    if (url.username || url.password) throw bad('credentials in the URL are not supported; use --datastore-certfile/--datastore-keyfile');
    if (url.pathname !== '/' && url.pathname !== '' || url.search) throw bad('a path or query is not allowed');
    return `${url.protocol}//${url.host}`;
  });
}

/** The scheme of an endpoint, for choosing its driver ('' for the default). */
function schemeOf(endpoint: string): string {
  const m = /^([a-z][a-z0-9+.-]*):/i.exec(endpoint);
  return m ? m[1].toLowerCase() : endpoint.toLowerCase();
}

/** A backend for `endpoint`, not yet started. Throws one clear line for an endpoint skiff cannot use. */
export async function backendFor(dataDir: string, endpoint: string | undefined, opts: OpenStoreOptions = {}): Promise<DatastoreBackend> {
  const ep = (endpoint ?? '').trim();
  const common = { compactKeep: opts.compactKeep, log: opts.log };
  const tls = {
    ca: tlsFile(opts.tls?.caFile, '--datastore-cafile'),
    cert: tlsFile(opts.tls?.certFile, '--datastore-certfile'),
    key: tlsFile(opts.tls?.keyFile, '--datastore-keyfile'),
  };
  if (!!tls.cert !== !!tls.key) throw new Error('--datastore-certfile and --datastore-keyfile go together');
  switch (schemeOf(ep)) {
    case '':
    case 'sqlite': {
      const dir = join(dataDir, 'server', 'db');
      // The database holds secrets and tokens.
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      return new SqliteBackend(join(dir, 'state.db'), { ...common, checkpointInWorker: opts.sqliteCheckpointInWorker });
    }
    case 'postgres':
    case 'postgresql': {
      const { PostgresDriver } = await import('./postgres.js');
      // Other servers may write: poll as the fallback of LISTEN/NOTIFY.
      return new LogBackend(new PostgresDriver(ep, { log: opts.log, tls }), { ...common, pollIntervalMs: 1000 });
    }
    case 'mysql': {
      const { MysqlDriver } = await import('./mysql.js');
      // No push channel: a short poll finds other servers' commits.
      return new LogBackend(new MysqlDriver(ep, { log: opts.log, tls }), { ...common, pollIntervalMs: 250 });
    }
    case 'http':
    case 'https': {
      const endpoints = parseEtcdEndpoint(ep);
      if (endpoints[0].startsWith('http:') && (tls.ca || tls.cert)) throw new Error(`datastore endpoint ${JSON.stringify(ep)} is plain http: TLS files need https://`);
      const { EtcdBackend } = await import('./etcd.js');
      return new EtcdBackend({ endpoints, ...tls, compactKeep: opts.compactKeep, log: opts.log });
    }
    default:
      throw new Error(`invalid datastore endpoint ${JSON.stringify(redact(ep))}: expected sqlite, postgres://user:pass@host:port/db or mysql://user:pass@tcp(host:port)/db`);
  }
}

export async function openStore(dataDir: string, opts: OpenStoreOptions = {}): Promise<{ store: Store; backend: DatastoreBackend }> {
  const backend = await backendFor(dataDir, opts.endpoint, opts);
  const store = new CacheStore(opts.wrap ? opts.wrap(backend) : backend, { ringSize: opts.ringSize, prefillRevisions: opts.prefillRevisions, log: opts.log });
  await store.start();
  const every = opts.compactIntervalMs ?? 5 * 60_000;
  if (every > 0) backend.startAutoCompact(every);
  return { store, backend };
}
