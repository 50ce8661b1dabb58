// Snapshots of a server's state, for backup and disaster recovery, shaped like k3s's `etcd-snapshot`:
// a snapshot is a directory `<snapshot dir>/<name>-<node>-<unix seconds>` (default dir
// `<data dir>/server/db/snapshots`), readable by root only because it holds the cluster's CA keys,
// the token and the secrets-encryption keys (without which a server restored on a new machine could
// neither be trusted by its nodes nor read its Secrets). What it holds of the datastore depends on it:
//  - SQLite: `state.db`, a consistent copy taken with SQLite's online backup while the server writes;
//  - PostgreSQL, MySQL/MariaDB, etcd: `dump.jsonl`, every live key at one revision (snapshot-dump.ts),
//    read in one consistent read; with etcd also `etcd.db`, etcd's own snapshot (what `etcdctl
//    snapshot restore` takes, for rebuilding a lost etcd cluster from scratch).
// With compression the datastore file is gzipped (`.gz`). `snapshot.json` describes the snapshot.
import Database from 'better-sqlite3';
import {
  chmodSync, closeSync, cpSync, createReadStream, createWriteStream, existsSync, fsyncSync, mkdirSync, openSync,
  readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync,
} from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { backendFor, SqliteDriver, type DatastoreBackend, type DatastoreTls, type KeyValue } from '../storage/index.js';
import type { EtcdBackend } from '../storage/etcd.js';
import { applyState, readDump, readState, writeDump } from './snapshot-dump.js';

// cred holds the secrets encryption keys: a snapshot without them could not read its Secrets.
export const CREDENTIALS = ['token', 'node-token', 'tls', 'cred'];

export const snapshotsDir = (dataDir: string) => join(dataDir, 'server', 'db', 'snapshots');
const dbFile = (dataDir: string) => join(dataDir, 'server', 'db', 'state.db');
const pidFile = (dataDir: string) => join(dataDir, 'server', 'server.pid');
/** Where the server records its datastore, so `skiff snapshot` reaches the same one (0600: it may hold a password). */
const datastoreFile = (dataDir: string) => join(dataDir, 'server', 'datastore.json');

export type SnapshotBackend = 'sqlite' | 'postgres' | 'mysql' | 'etcd';

export interface SnapshotMeta {
  name: string;
  createdAt: string;
  node: string;
  backend: SnapshotBackend;
  /** The datastore file in the snapshot directory. */
  file: string;
  compressed: boolean;
  /** The revision of a dump. */
  revision?: number;
  /** etcd's own snapshot file, when the datastore is etcd. */
  etcdDb?: string;
}

export interface SnapshotInfo extends SnapshotMeta { path: string; bytes: number }

export interface DatastoreRef { endpoint?: string; tls?: DatastoreTls }

/** `<name>-<node>-<unix seconds>`, k3s's naming. */
export function snapshotName(prefix: string, node: string, at: Date): string {
  return `${prefix}-${node}-${Math.floor(at.getTime() / 1000)}`;
}

/** The prefix a snapshot name was made from, given its node (undefined when it is not `<prefix>-<node>-<ts>`). */
export function namePrefix(name: string, node: string): string | undefined {
  const m = new RegExp(`^(.+)-${node.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d+$`).exec(name);
  return m?.[1];
}

export function backendKind(endpoint: string | undefined): SnapshotBackend {
  const e = (endpoint ?? '').trim().toLowerCase();
  if (e === '' || e.startsWith('sqlite')) return 'sqlite';
  if (e.startsWith('postgres')) return 'postgres';
  if (e.startsWith('mysql')) return 'mysql';
  return 'etcd';
}

/** Called by the server at start: which datastore it uses (the embedded etcd's endpoint included). */
export function recordDatastore(dataDir: string, ref: DatastoreRef): void {
  const file = datastoreFile(dataDir);
  if (!ref.endpoint) { rmSync(file, { force: true }); return; }
  writeFileSync(file, JSON.stringify(ref, null, 2) + '\n', { mode: 0o600 });
  chmodSync(file, 0o600);
}

/** The datastore `skiff snapshot` works on: the flag's, else the one the server recorded, else SQLite. */
export function datastoreOf(dataDir: string, flag: DatastoreRef = {}): DatastoreRef {
  if (flag.endpoint) return flag;
  try {
    return JSON.parse(readFileSync(datastoreFile(dataDir), 'utf8')) as DatastoreRef;
  } catch {
    return {};
  }
}

function fsyncFile(path: string): void {
  const fd = openSync(path, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

async function gzipFile(from: string, to: string): Promise<void> {
  await pipeline(createReadStream(from), createGzip(), createWriteStream(to, { mode: 0o600 }));
  fsyncFile(to);
}

/** Opens the datastore of a CLI command (closed by the caller). */
export async function openDatastore(dataDir: string, ref: DatastoreRef): Promise<DatastoreBackend> {
  const backend = await backendFor(dataDir, ref.endpoint, { tls: ref.tls });
  await backend.start();
  return backend;
}

export interface SaveOptions {
  /** Name prefix (k3s: `on-demand` for `save`, `etcd-snapshot` for scheduled ones). */
  name?: string;
  dir?: string;
  compress?: boolean;
  node?: string;
  /** The running server's backend (scheduled snapshots); else the datastore is opened from `datastore`. */
  backend?: DatastoreBackend;
  datastore?: DatastoreRef;
  now?: Date;
}

/** Takes a snapshot; returns where it is. Safe while the server runs and writes. */
export async function saveSnapshot(dataDir: string, opts: SaveOptions = {}): Promise<SnapshotInfo> {
  const ref = opts.backend ? undefined : datastoreOf(dataDir, opts.datastore);
  const kind: SnapshotBackend = opts.backend ? (opts.backend.file ? 'sqlite' : kindOfBackend(opts.backend)) : backendKind(ref?.endpoint);
  const node = opts.node ?? hostname().toLowerCase();
  const createdAt = opts.now ?? new Date();
  const dir = opts.dir ?? snapshotsDir(dataDir);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  // Two snapshots of one prefix in the same second: the later takes the next free second.
  let at = createdAt;
  while (existsSync(join(dir, snapshotName(opts.name ?? 'on-demand', node, at)))) at = new Date(at.getTime() + 1000);
  const name = snapshotName(opts.name ?? 'on-demand', node, at);
  const path = join(dir, name);
  // Written under a dot name and renamed when complete: a crash never leaves a half snapshot that ls lists.
  const tmp = join(dir, `.${name}.partial`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp, { mode: 0o700 });
  chmodSync(tmp, 0o700);
  const meta: SnapshotMeta = { name, createdAt: createdAt.toISOString(), node, backend: kind, file: '', compressed: !!opts.compress };
  try {
    if (kind === 'sqlite') {
      const db = opts.backend?.file ?? dbFile(dataDir);
      if (!existsSync(db)) throw new Error(`no datastore at ${db}: has a server been started with --data-dir ${dataDir}?`);
      const src = new Database(db, { readonly: true, fileMustExist: true });
      try {
        await src.backup(join(tmp, 'state.db'));
      } finally {
        src.close();
      }
      meta.file = 'state.db';
    } else {
      const backend = opts.backend ?? await openDatastore(dataDir, ref!);
      try {
        const dump = await readState(backend, kind);
        meta.revision = dump.revision;
        meta.file = 'dump.jsonl';
        await writeDump(join(tmp, meta.file), dump);
        if (kind === 'etcd') {
          meta.etcdDb = 'etcd.db';
          await etcdSnapshot(backend as EtcdBackend, join(tmp, meta.etcdDb));
        }
      } finally {
        if (!opts.backend) await backend.close();
      }
    }
    if (meta.compressed) {
      for (const f of [meta.file, meta.etcdDb]) {
        if (!f) continue;
        await gzipFile(join(tmp, f), join(tmp, `${f}.gz`));
        rmSync(join(tmp, f));
      }
      meta.file += '.gz';
      if (meta.etcdDb) meta.etcdDb += '.gz';
    } else {
      fsyncFile(join(tmp, meta.file));
    }
    for (const f of CREDENTIALS) {
      const from = join(dataDir, 'server', f);
      if (existsSync(from)) cpSync(from, join(tmp, f), { recursive: true });
    }
    writeFileSync(join(tmp, 'snapshot.json'), JSON.stringify(meta, null, 2) + '\n');
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { recursive: true, force: true });
    throw err;
  }
  return { ...meta, path, bytes: statSync(join(path, meta.file)).size };
}

function kindOfBackend(b: DatastoreBackend): SnapshotBackend {
  if ('driver' in b) return b.driver.name === 'postgres' ? 'postgres' : b.driver.name === 'sqlite' ? 'sqlite' : 'mysql';
  return 'etcd';
}

/** etcd's own snapshot (the Maintenance.Snapshot stream, as `etcdctl snapshot save`). */
async function etcdSnapshot(backend: EtcdBackend, file: string): Promise<void> {
  const stream = await backend.etcd().maintenance.snapshot();
  const out = createWriteStream(file, { mode: 0o600 });
  await new Promise<void>((resolveDone, reject) => {
    stream.on('data', (r) => { if (r.blob?.length) out.write(r.blob); });
    stream.on('error', reject);
    stream.on('end', () => out.end(() => resolveDone()));
  });
  fsyncFile(file);
}

function readMeta(path: string): SnapshotMeta {
  const raw = JSON.parse(readFileSync(join(path, 'snapshot.json'), 'utf8')) as Partial<SnapshotMeta> & { createdAt: string; host?: string };
  // Snapshots of an older layout: an SQLite copy, named by the directory.
  return {
    name: raw.name ?? basename(path), createdAt: raw.createdAt, node: raw.node ?? raw.host ?? '', backend: raw.backend ?? 'sqlite',
    file: raw.file ?? 'state.db', compressed: raw.compressed ?? false, revision: raw.revision, etcdDb: raw.etcdDb,
  };
}

/** Every complete snapshot in `dir`, oldest first. */
export function listSnapshots(dataDir: string, dir = snapshotsDir(dataDir)): SnapshotInfo[] {
  if (!existsSync(dir)) return [];
  const out: SnapshotInfo[] = [];
  for (const n of readdirSync(dir)) {
    const path = join(dir, n);
    if (n.startsWith('.') || !existsSync(join(path, 'snapshot.json'))) continue;
    try {
      const meta = readMeta(path);
      out.push({ ...meta, name: n, path, bytes: statSync(join(path, meta.file)).size });
    } catch {
      // A damaged entry is not listed; it stays for the operator to look at.
    }
  }
  return out.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.name.localeCompare(b.name));
}

/** Deletes snapshots by name (k3s `etcd-snapshot delete`); returns the names deleted. */
export function deleteSnapshots(dataDir: string, names: string[], dir = snapshotsDir(dataDir)): string[] {
  const known = new Map(listSnapshots(dataDir, dir).map((s) => [s.name, s]));
  for (const n of names) if (!known.has(n)) throw new Error(`no snapshot named ${JSON.stringify(n)} in ${dir}`);
  for (const n of names) rmSync(known.get(n)!.path, { recursive: true, force: true });
  return names;
}

/**
 * Keeps the newest `retention` snapshots named `<prefix>-<node>-<ts>` and deletes the rest (k3s
 * prunes scheduled snapshots to --etcd-snapshot-retention; on-demand ones only with `prune`).
 * Returns the names deleted, oldest first.
 */
export function pruneSnapshots(dataDir: string, opts: { prefix: string; retention: number; node?: string; dir?: string }): string[] {
  if (!Number.isInteger(opts.retention) || opts.retention < 1) throw new Error(`snapshot retention must be a positive integer, not ${opts.retention}`);
  const node = opts.node ?? hostname().toLowerCase();
  const dir = opts.dir ?? snapshotsDir(dataDir);
  const mine = listSnapshots(dataDir, dir).filter((s) => namePrefix(s.name, node) === opts.prefix);
  const doomed = mine.slice(0, Math.max(0, mine.length - opts.retention)).map((s) => s.name);
  return doomed.length ? deleteSnapshots(dataDir, doomed, dir) : [];
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

function refuseIfRunning(dataDir: string): void {
  const pid = runningServerPid(dataDir);
  if (pid) throw new Error(`a server (pid ${pid}) is running on ${dataDir}: stop it before restoring`);
}

/**
 * Copies the credentials of a snapshot (or backup stream) into the data dir. Not while a server runs
 * on it (a live restore into a shared datastore): its certificates and keys may have been rotated
 * since the snapshot, and swapping them under it would break it; returns false then.
 */
export function restoreCredentials(from: string, dataDir: string): boolean {
  if (runningServerPid(dataDir)) return false;
  mkdirSync(join(dataDir, 'server'), { recursive: true, mode: 0o700 });
  for (const f of CREDENTIALS) {
    const src = join(from, f);
    if (existsSync(src)) cpSync(src, join(dataDir, 'server', f), { recursive: true, force: true });
  }
  return true;
}

/**
 * Revisions skipped after a restore when the replaced datastore's revision is unknown (its disk is
 * gone): etcdutl's advice for `--bump-revision`, a week of writes at 1,500/s.
 */
export const UNKNOWN_REVISION_BUMP = 1_000_000_000;

/** The revision of an SQLite datastore file, if there is one. */
async function sqliteRevision(file: string): Promise<number | undefined> {
  if (!existsSync(file)) return undefined;
  const d = new SqliteDriver(file);
  try {
    return (await d.open()).revision;
  } finally {
    await d.close();
  }
}

/**
 * After a restore, as `etcdutl snapshot restore --bump-revision --mark-compacted`: the next revision
 * is past every revision clients may have seen from the replaced datastore (`seen`, or a large bump
 * when unknown), and everything before it is compacted. Clients resuming a list or watch from a
 * resourceVersion of before the restore get 410 Gone and relist, instead of silently missing the
 * changes the restore made or, worse, meeting reused revisions with other contents.
 */
export async function bumpRevision(file: string, seen: number | undefined): Promise<number> {
  const d = new SqliteDriver(file);
  try {
    const cur = (await d.open()).revision;
    // Strictly past `seen`: a watch from exactly `seen` must get 410 too, not resume silently.
    const target = seen === undefined ? cur + UNKNOWN_REVISION_BUMP : Math.max(cur, seen + 1);
    await d.commit([], () => ({ rows: [], revision: target, probe: false, result: true }));
    for (let from = (await d.state()).compacted; from < target;) from = (await d.compactStep(from, target, 10_000)).upTo;
    return target;
  } finally {
    await d.close();
  }
}

/** Moves the SQLite datastore aside (nothing is deleted); returns where it went, if there was one. */
export function setAsideSqlite(dataDir: string): string | undefined {
  const db = dbFile(dataDir);
  mkdirSync(join(dataDir, 'server', 'db'), { recursive: true, mode: 0o700 });
  const kept = `${db}.before-restore-${Math.floor(Date.now() / 1000)}`;
  const had = existsSync(db);
  if (had) renameSync(db, kept);
  // The write-ahead log belongs to the datastore being replaced.
  for (const ext of ['-wal', '-shm']) {
    if (existsSync(db + ext)) {
      if (had) renameSync(db + ext, kept + ext);
      else rmSync(db + ext, { force: true });
    }
  }
  return had ? kept : undefined;
}

/**
 * Makes a state (a list of stored key-values at `revision`) the datastore's: SQLite (server stopped)
 * gets a new database with the state's revisions, then bumpRevision; a shared datastore gets it
 * through applyState.
 */
export async function restoreState(dataDir: string, ref: DatastoreRef, kvs: KeyValue[], revision: number): Promise<{ kept?: string; mode: string; writes: number; revision?: number }> {
  const sqlite = backendKind(ref.endpoint) === 'sqlite';
  let kept: string | undefined;
  let seen: number | undefined;
  if (sqlite) {
    refuseIfRunning(dataDir);
    seen = await sqliteRevision(dbFile(dataDir));
    kept = setAsideSqlite(dataDir);
  }
  const backend = await openDatastore(dataDir, ref);
  let r;
  try {
    r = await applyState(backend, kvs, revision);
  } finally {
    await backend.close();
  }
  return { kept, ...r, ...(sqlite ? { revision: await bumpRevision(dbFile(dataDir), seen) } : {}) };
}

/**
 * Puts a snapshot back as the server's state. SQLite: the server must be stopped; the current
 * datastore is kept next to it as `state.db.before-restore-<time>`. A dump (PostgreSQL, MySQL, etcd)
 * is written into the datastore the server records (or `datastore`), which may be running: see
 * applyState. Credentials are copied back unless a server runs on the data dir (restoreCredentials).
 */
export async function restoreSnapshot(dataDir: string, path: string, datastore?: DatastoreRef): Promise<{ kept?: string; mode: string; writes?: number; revision?: number; credentials: boolean }> {
  if (!existsSync(join(path, 'snapshot.json')) && !existsSync(join(path, 'state.db'))) throw new Error(`${path} is not a snapshot: it has no snapshot.json`);
  const meta = existsSync(join(path, 'snapshot.json')) ? readMeta(path) : { backend: 'sqlite', file: 'state.db', compressed: false } as SnapshotMeta;
  const snapFile = join(path, meta.file);
  if (!existsSync(snapFile)) throw new Error(`${path} is not a snapshot: it has no ${meta.file}`);
  const ref = datastoreOf(dataDir, datastore);
  if (meta.backend === 'sqlite') {
    if (backendKind(ref.endpoint) !== 'sqlite') throw new Error(`${path} is an SQLite snapshot; this server's datastore is ${backendKind(ref.endpoint)} (restore it on an SQLite server, or save a new snapshot)`);
    refuseIfRunning(dataDir);
    let plain = snapFile;
    let scratch: string | undefined;
    if (meta.compressed) {
      scratch = join(tmpdir(), `skiff-restore-${process.pid}-${Date.now()}.db`);
      await pipeline(createReadStream(snapFile), createGunzip(), createWriteStream(scratch, { mode: 0o600 }));
      plain = scratch;
    }
    try {
      const check = new Database(plain, { readonly: true, fileMustExist: true });
      try {
        const r = check.pragma('integrity_check', { simple: true });
        if (r !== 'ok') throw new Error(`the snapshot's datastore is damaged: ${String(r)}`);
      } finally {
        check.close();
      }
      const seen = await sqliteRevision(dbFile(dataDir));
      const kept = setAsideSqlite(dataDir);
      cpSync(plain, dbFile(dataDir));
      chmodSync(dbFile(dataDir), 0o600);
      const revision = await bumpRevision(dbFile(dataDir), seen);
      restoreCredentials(path, dataDir);
      return { kept, mode: 'file', revision, credentials: true };
    } finally {
      // The integrity check opens it as SQLite, which may leave its -wal and -shm files beside it.
      if (scratch) for (const f of [scratch, `${scratch}-wal`, `${scratch}-shm`]) rmSync(f, { force: true });
    }
  }
  const dump = await readDump(snapFile);
  const r = await restoreState(dataDir, ref, dump.kvs, dump.revision);
  return { ...r, credentials: restoreCredentials(path, dataDir) };
}

/** Resolves a snapshot argument: a path, or a name in the snapshot dir. */
export function snapshotPath(dataDir: string, arg: string, dir = snapshotsDir(dataDir)): string {
  if (existsSync(arg)) return resolve(arg);
  const byName = join(dir, arg);
  return existsSync(byName) ? byName : resolve(arg);
}
