// Reading a continuous backup stream (backup-stream.ts) back into a state: the newest epoch whose
// base was taken at or before the requested time, then its changes in revision order up to that
// time. A torn or damaged line ends the epoch's replay there (it can only be the tail a crash left).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KeyValue } from '../storage/index.js';
import { decodeLine } from './backup-stream.js';
import { readDump } from './snapshot-dump.js';

export interface StreamEpoch { dir: string; node: string; startedAt: Date; baseRevision: number }

export interface StreamState {
  epoch: StreamEpoch;
  kvs: KeyValue[];
  /** The revision of the last change applied (or the base's). */
  revision: number;
  /** When the last applied change was acknowledged (the base's time when none). */
  lastChangeAt: Date;
  changes: number;
  /** Lines dropped as torn or damaged. */
  damaged: number;
}

/** Usable epochs of a stream directory, oldest first. */
export function streamEpochs(dir: string): StreamEpoch[] {
  if (!existsSync(dir)) throw new Error(`${dir}: no such backup stream`);
  const out: StreamEpoch[] = [];
  for (const n of readdirSync(dir).sort()) {
    const meta = join(dir, n, 'epoch.json');
    if (!/^\d{13}-/.test(n) || !existsSync(meta)) continue;
    const m = JSON.parse(readFileSync(meta, 'utf8')) as { node: string; startedAt: string; baseRevision: number };
    out.push({ dir: join(dir, n), node: m.node, startedAt: new Date(m.startedAt), baseRevision: m.baseRevision });
  }
  return out;
}

/** `--at`: RFC 3339 / ISO time, or unix seconds. */
export function parseAt(at: string): Date {
  const d = /^\d+(\.\d+)?$/.test(at) ? new Date(Number(at) * 1000) : new Date(at);
  if (Number.isNaN(d.getTime())) throw new Error(`--at: not a time (RFC 3339 such as 2026-12-05T12:00:00Z, or unix seconds): ${at}`);
  return d;
}

/** The state the stream in `dir` records at time `at` (default: its newest). */
export async function streamState(dir: string, at?: Date): Promise<StreamState> {
  const epochs = streamEpochs(dir);
  if (!epochs.length) throw new Error(`${dir}: the backup stream holds no complete epoch`);
  const candidates = at ? epochs.filter((e) => e.startedAt.getTime() <= at.getTime()) : epochs;
  const epoch = candidates[candidates.length - 1];
  if (!epoch) throw new Error(`${dir}: the backup stream begins at ${epochs[0].startedAt.toISOString()}, after ${at!.toISOString()}`);
  const base = await readDump(join(epoch.dir, 'base.jsonl'));
  const state = new Map<string, KeyValue>(base.kvs.map((kv) => [kv.key, kv]));
  let revision = base.revision;
  let lastChangeAt = epoch.startedAt;
  let changes = 0;
  let damaged = 0;
  const limit = at?.getTime() ?? Number.POSITIVE_INFINITY;
  const segments = readdirSync(epoch.dir).filter((n) => /^seg-\d{16}\.log$/.test(n)).sort();
  replay: for (const seg of segments) {
    const lines = readFileSync(join(epoch.dir, seg), 'utf8').split('\n');
    // The text after the last newline is a line still being written (or torn).
    if (lines[lines.length - 1] !== '') damaged++;
    lines.pop();
    for (const text of lines) {
      const l = decodeLine(text);
      if (!l) { damaged++; break replay; }
      if (l.r <= revision) continue;          // a line written twice (a retried flush)
      if (l.t > limit) break replay;
      if (l.e === 'd') state.delete(l.k);
      else state.set(l.k, { key: l.k, value: l.v ?? '', createRevision: l.c, modRevision: l.r });
      revision = l.r;
      lastChangeAt = new Date(l.t);
      changes++;
    }
  }
  return { epoch, kvs: [...state.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)), revision, lastChangeAt, changes, damaged };
}
