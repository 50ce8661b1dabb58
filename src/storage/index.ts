// Opening the embedded datastore: SQLite under <data-dir>/server/db/state.db (k3s's layout) with the
// watch cache on top. Callers see only the Store; the backend is returned for compaction and metrics.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { CacheStore } from './cache.js';
import { SqliteBackend } from './sqlite.js';
import type { Backend, Store } from './types.js';

export * from './types.js';
export { CacheStore, type CacheStoreOptions } from './cache.js';
export { EncryptingBackend, loadEncryptionConfig, type EncryptionConfiguration } from './encryption.js';
export { SqliteBackend, type SqliteBackendOptions, type SqliteStats } from './sqlite.js';

export interface OpenStoreOptions {
  /** Events kept per resource for watch resumption. */
  ringSize?: number;
  /** Revisions the automatic compactor keeps. */
  compactKeep?: number;
  log?: (msg: string, fields?: object) => void;
  /** Wraps the backend the cache sits on (encryption at rest transforms values there). */
  wrap?: (backend: Backend) => Backend;
}

export async function openStore(dataDir: string, opts: OpenStoreOptions = {}): Promise<{ store: Store; backend: SqliteBackend }> {
  const dir = join(dataDir, 'server', 'db');
  // The database holds secrets and tokens.
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const backend = new SqliteBackend(join(dir, 'state.db'), { compactKeep: opts.compactKeep, log: opts.log });
  const store = new CacheStore(opts.wrap ? opts.wrap(backend) : backend, { ringSize: opts.ringSize, log: opts.log });
  await store.start();
  return { store, backend };
}
