// Opening the datastore named by `--datastore-endpoint` (k3s's syntax), with the watch cache on top:
//  - unset, `sqlite` or `sqlite://`: SQLite under <data-dir>/server/db/state.db (k3s's layout);
//  - `postgres://user:pass@host:5432/db` or `postgresql://...`: PostgreSQL;
//  - `mysql://user:pass@tcp(host:3306)/db`: MySQL 8 / MariaDB 10.11.
// Callers see the Store; the backend is returned for health checks, compaction marks and metrics.
// Compaction is scheduled here, behind the Backend, for every driver.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CacheStore } from './cache.js';
import { LogBackend } from './log.js';
import { SqliteBackend } from './sqlite.js';
import { redact } from './driver.js';
import type { Backend, Store } from './types.js';

export * from './types.js';
export { CacheStore, type CacheStoreOptions } from './cache.js';
export { EncryptingBackend, loadEncryptionConfig, type EncryptionConfiguration } from './encryption.js';
export { LogBackend, type LogBackendOptions, type LogStats } from './log.js';
export { SqliteBackend, SqliteDriver, type SqliteBackendOptions, type SqliteStats } from './sqlite.js';
// postgres.ts and mysql.ts are loaded only when an endpoint names them: their client libraries
// take about a second to load on a busy small machine, which the SQLite default must not pay.
export { DatastoreUnavailableError, type Driver } from './driver.js';
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
}

/** The scheme of an endpoint, for choosing its driver ('' for the default). */
function schemeOf(endpoint: string): string {
  const m = /^([a-z][a-z0-9+.-]*):/i.exec(endpoint);
  return m ? m[1].toLowerCase() : endpoint.toLowerCase();
}

/** A backend for `endpoint`, not yet started. Throws one clear line for an endpoint skiff cannot use. */
export async function backendFor(dataDir: string, endpoint: string | undefined, opts: OpenStoreOptions = {}): Promise<LogBackend> {
  const ep = (endpoint ?? '').trim();
  const common = { compactKeep: opts.compactKeep, log: opts.log };
  switch (schemeOf(ep)) {
    case '':
    case 'sqlite': {
      const dir = join(dataDir, 'server', 'db');
      // The database holds secrets and tokens.
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      return new SqliteBackend(join(dir, 'state.db'), common);
    }
    case 'postgres':
    case 'postgresql': {
      const { PostgresDriver } = await import('./postgres.js');
      // Other servers may write: poll as the fallback of LISTEN/NOTIFY.
      return new LogBackend(new PostgresDriver(ep, { log: opts.log }), { ...common, pollIntervalMs: 1000 });
    }
    case 'mysql': {
      const { MysqlDriver } = await import('./mysql.js');
      // No push channel: a short poll finds other servers' commits.
      return new LogBackend(new MysqlDriver(ep, { log: opts.log }), { ...common, pollIntervalMs: 250 });
    }
    case 'http':
    case 'https':
      throw new Error(`datastore endpoint ${JSON.stringify(redact(ep))}: etcd is not supported yet`);
    default:
      throw new Error(`invalid datastore endpoint ${JSON.stringify(redact(ep))}: expected sqlite, postgres://user:pass@host:port/db or mysql://user:pass@tcp(host:port)/db`);
  }
}

export async function openStore(dataDir: string, opts: OpenStoreOptions = {}): Promise<{ store: Store; backend: LogBackend }> {
  const backend = await backendFor(dataDir, opts.endpoint, opts);
  const store = new CacheStore(opts.wrap ? opts.wrap(backend) : backend, { ringSize: opts.ringSize, prefillRevisions: opts.prefillRevisions, log: opts.log });
  await store.start();
  const every = opts.compactIntervalMs ?? 5 * 60_000;
  if (every > 0) backend.startAutoCompact(every);
  return { store, backend };
}
