// SQLite → embedded etcd, as k3s does when a single SQLite server is restarted with --cluster-init:
// every live object of <data-dir>/server/db/state.db is copied into the (empty) etcd once, values
// byte for byte (encrypted Secrets stay encrypted). Objects get new resourceVersions (etcd's
// revisions); watchers resume with a relist, as after any datastore change. The SQLite file is kept
// (renamed state.db.migrated) so a rollback is possible and the copy never runs twice.
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SqliteBackend } from '../storage/sqlite.js';
import type { EtcdBackend } from '../storage/etcd.js';
import { KeyExistsError } from '../storage/types.js';
import { logger } from '../util/log.js';

const log = logger('etcd-migrate');

/** Objects written concurrently while copying (etcd batches them into few raft proposals). */
const PARALLEL = 64;

/** Copies SQLite's objects into `etcd` when a state.db exists and etcd holds none; returns how many. */
export async function migrateSqliteToEtcd(dataDir: string, etcd: EtcdBackend): Promise<number> {
  const file = join(dataDir, 'server', 'db', 'state.db');
  if (!existsSync(file)) return 0;
  // Set while copying: a copy interrupted half way resumes instead of taking etcd's part for all.
  const marker = join(dataDir, 'server', 'db', 'etcd', 'migrating-from-sqlite');
  const present = await etcd.listLatest('/');
  if (present.kvs.length && !existsSync(marker)) {
    log.warn({ file, etcdObjects: present.kvs.length }, 'etcd already holds objects: not migrating the SQLite datastore');
    return 0;
  }
  const sqlite = new SqliteBackend(file);
  await sqlite.start();
  let kvs;
  try {
    kvs = (await sqlite.listLatest('/')).kvs;
  } finally {
    await sqlite.close();
  }
  const t0 = performance.now();
  writeFileSync(marker, `${new Date().toISOString()}\n`);
  for (let i = 0; i < kvs.length; i += PARALLEL) {
    await Promise.all(kvs.slice(i, i + PARALLEL).map((kv) => etcd.create(kv.key, kv.value).catch((err) => {
      // A copy interrupted half way and run again meets the keys it already wrote.
      if (!(err instanceof KeyExistsError)) throw err;
    })));
  }
  renameSync(file, `${file}.migrated`);
  for (const ext of ['-wal', '-shm']) if (existsSync(file + ext)) renameSync(file + ext, `${file}.migrated${ext}`);
  rmSync(marker, { force: true });
  log.info({ objects: kvs.length, ms: Math.round(performance.now() - t0), kept: `${file}.migrated` }, 'migrated the SQLite datastore into etcd');
  return kvs.length;
}
