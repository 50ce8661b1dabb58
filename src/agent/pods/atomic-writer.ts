// Writes a directory of files so that a reader never sees a half-updated set, the way the kubelet's
// configMap/secret volumes do it: the files go into a fresh hidden `..<timestamp>` directory, the
// `..data` symlink is swapped to it with one rename, and each visible name is a symlink through
// `..data`. A container that opened `..data/x` keeps its old version; the next open sees the new one.
import { randomBytes } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export interface FileEntry {
  data: Buffer;
  /** Permission bits, e.g. 0o644. */
  mode: number;
}

const DATA_LINK = '..data';

/** A relative path with no `..` element and no leading `..` (those names are the writer's own). */
export function validateFilePath(p: string): void {
  if (p === '' || p.startsWith('/')) throw new Error(`invalid file path ${JSON.stringify(p)}: must be relative`);
  if (p.split('/').includes('..')) throw new Error(`invalid file path ${JSON.stringify(p)}: must not contain '..'`);
  if (p.startsWith('..')) throw new Error(`invalid file path ${JSON.stringify(p)}: must not start with '..'`);
}

function listFiles(root: string, prefix = ''): Map<string, FileEntry> {
  const out = new Map<string, FileEntry>();
  for (const e of readdirSync(join(root, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    if (e.isDirectory()) for (const [k, v] of listFiles(root, rel)) out.set(k, v);
    else out.set(rel, { data: readFileSync(join(root, rel)), mode: statSync(join(root, rel)).mode & 0o7777 });
  }
  return out;
}

function same(a: Map<string, FileEntry>, b: Map<string, FileEntry>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) {
    const w = b.get(k);
    if (!w || w.mode !== v.mode || !w.data.equals(v.data)) return false;
  }
  return true;
}

/** Makes `dir` hold exactly `files`; returns false when it already did (nothing was touched). */
export function writeAtomic(dir: string, files: Map<string, FileEntry>): boolean {
  for (const p of files.keys()) validateFilePath(p);
  mkdirSync(dir, { recursive: true });
  let current: string | undefined;
  try {
    current = readlinkSync(join(dir, DATA_LINK));
  } catch {
    // first write
  }
  if (current !== undefined && same(listFiles(join(dir, current)), files)) return false;

  const stamp = new Date().toISOString().replace(/[-:T]/g, '_').replace(/\..*$/, '');
  const version = `..${stamp}.${randomBytes(4).toString('hex')}`;
  for (const [p, f] of files) {
    const file = join(dir, version, p);
    mkdirSync(dirname(file), { recursive: true, mode: 0o755 });
    writeFileSync(file, f.data);
    chmodSync(file, f.mode);
  }
  mkdirSync(join(dir, version), { recursive: true });
  chmodSync(join(dir, version), 0o755);
  const tmp = join(dir, `${DATA_LINK}_tmp`);
  rmSync(tmp, { force: true });
  symlinkSync(version, tmp);
  renameSync(tmp, join(dir, DATA_LINK));

  const top = new Set([...files.keys()].map((p) => p.split('/')[0]!));
  for (const name of top) {
    try {
      lstatSync(join(dir, name));
    } catch {
      symlinkSync(join(DATA_LINK, name), join(dir, name));
    }
  }
  for (const name of readdirSync(dir)) {
    if (name.startsWith('..') || top.has(name)) continue;
    if (lstatSync(join(dir, name)).isSymbolicLink()) rmSync(join(dir, name));
  }
  if (current !== undefined && current !== version) rmSync(join(dir, current), { recursive: true, force: true });
  return true;
}
