// Temp databases for storage tests: every backend and store opened here is closed, and its folder
// removed, when the test ends, pass or fail.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { SqliteBackend, type SqliteBackendOptions } from '../../src/storage/sqlite.js';
import { CacheStore, type CacheStoreOptions } from '../../src/storage/cache.js';

export function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-storage-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A started backend on `file`, closed when the test ends (closing twice is harmless). */
export async function openBackend(t: TestContext, file: string, opts?: SqliteBackendOptions): Promise<SqliteBackend> {
  const backend = new SqliteBackend(file, opts);
  t.after(() => backend.close());
  await backend.start();
  return backend;
}

export async function openCache(
  t: TestContext, file: string, opts?: CacheStoreOptions,
): Promise<{ store: CacheStore; backend: SqliteBackend }> {
  const backend = new SqliteBackend(file);
  const store = new CacheStore(backend, opts);
  t.after(() => store.close());
  await store.start();
  return { store, backend };
}

export function dbFile(t: TestContext): string {
  return join(tempDir(t), 'state.db');
}
