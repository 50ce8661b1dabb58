// A logical dump of the datastore: every live key at one revision, as JSON lines. It is the snapshot
// format of the shared datastores (PostgreSQL, MySQL/MariaDB, etcd: the database is not ours to copy
// as a file) and the base of a continuous backup stream (backup-stream.ts). Values are stored as the
// datastore holds them, so Secrets encrypted at rest stay encrypted in the dump.
//
// Format (one JSON object per line, optionally gzipped as a whole):
//   {"skiff":"dump","v":1,"revision":R,"backend":"postgres","createdAt":"...","count":N}
//   {"k":key,"v":value,"c":createRevision,"m":modRevision}      × N, by key
//   {"end":N}                                                    a dump without it is truncated
import { createReadStream, createWriteStream, openSync, fsyncSync, closeSync } from 'node:fs';
import { createGunzip, createGzip } from 'node:zlib';
import { createInterface } from 'node:readline';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import type { Backend, KeyValue } from '../storage/index.js';
import { LogBackend } from '../storage/index.js';
import type { LogRow } from '../storage/driver.js';

export interface Dump {
  revision: number;
  backend: string;
  createdAt: string;
  kvs: KeyValue[];
}

/** Reads every live key in one consistent read (the driver's listLatest is one snapshot). */
export async function readState(backend: Backend, name: string): Promise<Dump> {
  const { revision, kvs } = await backend.listLatest('');
  return { revision, backend: name, createdAt: new Date().toISOString(), kvs };
}

export function* dumpLines(d: Dump): Generator<string> {
  yield JSON.stringify({ skiff: 'dump', v: 1, revision: d.revision, backend: d.backend, createdAt: d.createdAt, count: d.kvs.length }) + '\n';
  for (const kv of d.kvs) yield JSON.stringify({ k: kv.key, v: kv.value, c: kv.createRevision, m: kv.modRevision }) + '\n';
  yield JSON.stringify({ end: d.kvs.length }) + '\n';
}

/** Writes a dump to `file` (gzipped when `gzip`) and fsyncs it. */
export async function writeDump(file: string, d: Dump, gzip = false): Promise<void> {
  const out = createWriteStream(file, { mode: 0o600 });
  const src = Readable.from(dumpLines(d));
  await (gzip ? pipeline(src, createGzip(), out) : pipeline(src, out));
  const fd = openSync(file, 'r');
  try { fsyncSync(fd); } finally { closeSync(fd); }
}

/** Reads a dump written by writeDump; throws on a truncated or foreign file. */
export async function readDump(file: string): Promise<Dump> {
  const raw = createReadStream(file);
  const input = file.endsWith('.gz') ? raw.pipe(createGunzip()) : raw;
  const lines = createInterface({ input, crlfDelay: Infinity });
  let head: { skiff?: string; v?: number; revision: number; backend: string; createdAt: string; count: number } | undefined;
  const kvs: KeyValue[] = [];
  let ended = false;
  for await (const line of lines) {
    if (!line) continue;
    const o = JSON.parse(line);
    if (!head) {
      if (o.skiff !== 'dump' || o.v !== 1) throw new Error(`${file} is not a skiff dump`);
      head = o;
      continue;
    }
    if ('end' in o) { ended = o.end === kvs.length; break; }
    kvs.push({ key: o.k, value: o.v, createRevision: o.c, modRevision: o.m });
  }
  raw.destroy();
  if (!head || !ended || kvs.length !== head.count) throw new Error(`${file} is truncated (${kvs.length} of ${head?.count ?? '?'} keys)`);
  return { revision: head.revision, backend: head.backend, createdAt: head.createdAt, kvs };
}

/** Rows per transaction when loading an empty database. */
const LOAD_BATCH = 2000;
/** Writes in flight when restoring through the Backend API (they group-commit). */
const APPLY_PARALLEL = 256;

/**
 * Makes `kvs` the live state of a started backend.
 *  - An empty SQL/SQLite database gets the rows with their own revisions (resourceVersions are kept,
 *    as etcd's own restore keeps them) and is marked compacted at `revision`: a watch or list from an
 *    older resourceVersion gets 410 Gone and relists.
 *  - A database with data (etcd, which cannot set revisions, or a shared SQL database restored in
 *    place) gets the difference written as new revisions: deletes, updates and creates. Watchers see
 *    the restore as ordinary changes; resourceVersions move forward.
 */
export async function applyState(backend: Backend, kvs: KeyValue[], revision: number): Promise<{ mode: 'load' | 'diff'; writes: number }> {
  if (backend instanceof LogBackend && backend.currentRevision() === 0) {
    const rows: LogRow[] = [...kvs].sort((a, b) => a.modRevision - b.modRevision).map((kv) => ({
      id: kv.modRevision, name: kv.key, created: kv.createRevision === kv.modRevision, deleted: false,
      createRevision: kv.createRevision, prevRevision: 0, value: kv.value,
    }));
    // A defined result: drivers roll back a transaction whose plan yields undefined.
    for (let i = 0; i < rows.length || i === 0; i += LOAD_BATCH) {
      const part = rows.slice(i, i + LOAD_BATCH);
      const last = i + LOAD_BATCH >= rows.length;
      await backend.driver.commit([], (rev) => ({ rows: part, revision: last ? Math.max(revision, rev) : part[part.length - 1]?.id ?? rev, probe: false, result: true }));
    }
    // No history before the restored revision: mark it compacted (no row has a predecessor to remove).
    for (let from = 0; from < revision;) from = (await backend.driver.compactStep(from, revision, 10_000)).upTo;
    return { mode: 'load', writes: rows.length };
  }
  const current = new Map((await backend.listLatest('')).kvs.map((kv) => [kv.key, kv]));
  const ops: (() => Promise<unknown>)[] = [];
  const wanted = new Set<string>();
  for (const kv of kvs) {
    wanted.add(kv.key);
    const cur = current.get(kv.key);
    if (!cur) ops.push(() => backend.create(kv.key, kv.value));
    else if (cur.value !== kv.value) ops.push(() => backend.update(kv.key, kv.value, cur.modRevision));
  }
  for (const [key, cur] of current) if (!wanted.has(key)) ops.push(() => backend.delete(key, cur.modRevision));
  for (let i = 0; i < ops.length; i += APPLY_PARALLEL) await Promise.all(ops.slice(i, i + APPLY_PARALLEL).map((op) => op()));
  return { mode: 'diff', writes: ops.length };
}
