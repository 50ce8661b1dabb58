// Snapshots of a server's state, for backup and disaster recovery (k3s's `etcd-snapshot` for the
// embedded datastore; with SQLite k3s asks users to copy the data dir by hand). A snapshot is a
// directory under `<data dir>/server/db/snapshots/`: a consistent copy of the datastore taken with
// SQLite's online backup (safe while the server runs and writes), plus the server's token and TLS
// material, without which nodes and kubeconfigs could not trust a server restored on a new machine.
// The directory holds the cluster's CA keys, so it is made readable by root only.
import Database from 'better-sqlite3';
import { chmodSync, cpSync, existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

// cred holds the secrets encryption keys: a snapshot without them could not read its Secrets.
const CREDENTIALS = ['token', 'node-token', 'tls', 'cred'];

export const snapshotsDir = (dataDir: string) => join(dataDir, 'server', 'db', 'snapshots');
const dbFile = (dataDir: string) => join(dataDir, 'server', 'db', 'state.db');
const pidFile = (dataDir: string) => join(dataDir, 'server', 'server.pid');

export interface SnapshotInfo { name: string; path: string; createdAt: string; bytes: number }

/** Takes a snapshot; returns where it is. */
export async function saveSnapshot(dataDir: string, opts: { name?: string; dir?: string } = {}): Promise<SnapshotInfo> {
  const db = dbFile(dataDir);
  if (!existsSync(db)) throw new Error(`no datastore at ${db}: has a server been started with --data-dir ${dataDir}?`);
  const createdAt = new Date();
  const name = `${opts.name ?? 'on-demand'}-${hostname()}-${Math.floor(createdAt.getTime() / 1000)}`;
  const path = join(opts.dir ?? snapshotsDir(dataDir), name);
  mkdirSync(path, { recursive: true, mode: 0o700 });
  chmodSync(path, 0o700);
  const src = new Database(db, { readonly: true, fileMustExist: true });
  try {
    await src.backup(join(path, 'state.db'));
  } finally {
    src.close();
  }
  for (const f of CREDENTIALS) {
    const from = join(dataDir, 'server', f);
    if (existsSync(from)) cpSync(from, join(path, f), { recursive: true });
  }
  writeFileSync(join(path, 'snapshot.json'), JSON.stringify({ name, createdAt: createdAt.toISOString(), host: hostname() }, null, 2) + '\n');
  return { name, path, createdAt: createdAt.toISOString(), bytes: statSync(join(path, 'state.db')).size };
}

export function listSnapshots(dataDir: string): SnapshotInfo[] {
  const dir = snapshotsDir(dataDir);
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => existsSync(join(dir, n, 'snapshot.json'))).map((n) => {
    const meta = JSON.parse(readFileSync(join(dir, n, 'snapshot.json'), 'utf8')) as { createdAt: string };
    return { name: n, path: join(dir, n), createdAt: meta.createdAt, bytes: statSync(join(dir, n, 'state.db')).size };
  }).sort((a, b) => a.createdAt.localeCompare(b.createdAt));
}

/** The pid of a server running on this data dir, if any (see markServerRunning). */
export function runningServerPid(dataDir: string): number | undefined {
  try {
    const pid = Number(readFileSync(pidFile(dataDir), 'utf8'));
    process.kill(pid, 0);
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('server') ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Recorded by `skiff server` so that a restore refuses to pull the datastore from under it. */
export function markServerRunning(dataDir: string): () => void {
  writeFileSync(pidFile(dataDir), String(process.pid));
  return () => rmSync(pidFile(dataDir), { force: true });
}

/**
 * Puts a snapshot back as the server's state (the server must be stopped). Nothing is deleted: the
 * current datastore is kept next to it as `state.db.before-restore-<time>`.
 */
export function restoreSnapshot(dataDir: string, path: string): { kept: string } {
  const pid = runningServerPid(dataDir);
  if (pid) throw new Error(`a server (pid ${pid}) is running on ${dataDir}: stop it before restoring`);
  const snapDb = join(path, 'state.db');
  if (!existsSync(snapDb)) throw new Error(`${path} is not a snapshot: it has no state.db`);
  const check = new Database(snapDb, { readonly: true, fileMustExist: true });
  try {
    const r = check.pragma('integrity_check', { simple: true });
    if (r !== 'ok') throw new Error(`the snapshot's datastore is damaged: ${String(r)}`);
  } finally {
    check.close();
  }
  const db = dbFile(dataDir);
  mkdirSync(join(dataDir, 'server', 'db'), { recursive: true, mode: 0o700 });
  const kept = `${db}.before-restore-${Math.floor(Date.now() / 1000)}`;
  if (existsSync(db)) renameSync(db, kept);
  // The write-ahead log belongs to the datastore being replaced.
  for (const ext of ['-wal', '-shm']) rmSync(db + ext, { force: true });
  cpSync(snapDb, db);
  for (const f of CREDENTIALS) {
    const from = join(path, f);
    if (existsSync(from)) cpSync(from, join(dataDir, 'server', f), { recursive: true, force: true });
  }
  return { kept };
}
