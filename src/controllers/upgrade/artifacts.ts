// The release artifacts a server offers its nodes: a directory (default `<data-dir>/server/releases`)
// holding what `npm run release` writes, `skiff-<version>-linux-<arch>.tar.gz` files and a SHA256SUMS
// listing them. Served to nodes at RELEASES_PATH over the API server's own port, so a node behind NAT
// downloads through the connection it already has to the server (no second port, no internet).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ApiError, errors } from '../../api/status.js';
import { releaseFileName } from './api.js';

export const RELEASES_PATH = '/v1-skiff/releases/';
const FILE_RE = /^skiff-[0-9A-Za-z][0-9A-Za-z.+_-]*-linux-[a-z0-9]+\.tar\.gz$/;

export interface Artifact { file: string; sha256: string; size: number }

/** sha256 per file of the dir's SHA256SUMS (the `sha  name` lines sha256sum writes). */
function sums(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const path = join(dir, 'SHA256SUMS');
  if (!existsSync(path)) return out;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^([0-9a-f]{64}) [ *]?(\S+)$/.exec(line.trim());
    if (m) out.set(m[2]!, m[1]!);
  }
  return out;
}

/** The artifact of `version` for `arch`, or why there is none (a message for the plan's condition). */
export function findArtifact(dir: string, version: string, arch: string): Artifact | string {
  const file = releaseFileName(version, arch);
  const path = join(dir, file);
  if (!existsSync(path)) {
    const have = existsSync(dir) ? readdirSync(dir).filter((f) => FILE_RE.test(f) && f.endsWith(`-linux-${arch}.tar.gz`))
      .map((f) => f.slice('skiff-'.length, -`-linux-${arch}.tar.gz`.length)) : [];
    return `no release ${file} in ${dir} (versions there for ${arch}: ${have.length ? have.join(', ') : 'none'}); `
      + 'copy the tarball and its SHA256SUMS line there (npm run release writes both)';
  }
  const sha256 = sums(dir).get(file);
  if (!sha256) return `${join(dir, 'SHA256SUMS')} lists no checksum for ${file}: a release is only offered with its checksum`;
  return { file, sha256, size: statSync(path).size };
}

/**
 * GET RELEASES_PATH<file>: the tarball, to nodes and admins only; its checksum travels separately
 * (the plan hands it to the node), so a tarball changed on disk after the plan resolved it is refused
 * by the node. Returns false for any other path.
 */
export function handleReleaseDownload(dir: string, req: IncomingMessage, res: ServerResponse, user: { groups?: string[] } | null): boolean {
  const path = (req.url ?? '').split('?')[0]!;
  if (!path.startsWith(RELEASES_PATH)) return false;
  if (req.method === 'PUT') { void upload(dir, req, res, user, path).catch((e) => sendError(res, e)); return true; }
  if (!user?.groups?.some((g) => g === 'system:nodes' || g === 'system:masters')) throw new ApiError(403, 'Forbidden', 'release artifacts are served to nodes and administrators only');
  if (req.method !== 'GET' && req.method !== 'HEAD') throw errors.methodNotAllowed(req.method ?? '');
  const file = decodeURIComponent(path.slice(RELEASES_PATH.length));
  if (!FILE_RE.test(file)) throw errors.badRequest(`invalid release file name ${JSON.stringify(file)}: expected skiff-<version>-linux-<arch>.tar.gz`);
  const full = join(dir, file);
  if (!existsSync(full)) throw errors.notFound('releases', 'skiff.io', file);
  const size = statSync(full).size;
  res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': String(size) });
  if (req.method === 'HEAD') { res.end(); return true; }
  createReadStream(full).on('error', (e) => res.destroy(e)).pipe(res);
  return true;
}

/** Largest release accepted by upload (a release is a few MB; this only bounds a runaway client). */
export const MAX_RELEASE_BYTES = 512 * 1024 * 1024;

function sendError(res: ServerResponse, e: unknown): void {
  const err = e instanceof ApiError ? e : new ApiError(500, 'InternalError', e instanceof Error ? e.message : String(e));
  if (res.headersSent) { res.destroy(); return; }
  res.writeHead(err.code, { 'content-type': 'application/json' });
  res.end(JSON.stringify(err.toStatus()));
}

/**
 * PUT RELEASES_PATH<file> with `x-skiff-sha256` (admins only; `skiff release upload`): the body is
 * streamed beside the release dir's files, hashed on the way, and kept only when it matches the
 * checksum given; SHA256SUMS then lists it. A server of an HA cluster keeps what it was sent: upload
 * to each server.
 */
async function upload(dir: string, req: IncomingMessage, res: ServerResponse, user: { groups?: string[] } | null, path: string): Promise<void> {
  if (!user?.groups?.includes('system:masters')) throw new ApiError(403, 'Forbidden', 'only administrators (system:masters) may upload releases');
  const file = decodeURIComponent(path.slice(RELEASES_PATH.length));
  if (!FILE_RE.test(file)) throw errors.badRequest(`invalid release file name ${JSON.stringify(file)}: expected skiff-<version>-linux-<arch>.tar.gz`);
  const want = String(req.headers['x-skiff-sha256'] ?? '').toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(want)) throw errors.badRequest('header x-skiff-sha256 (the sha256 of the tarball, hex) is required');
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.upload-${randomBytes(6).toString('hex')}`);
  const hash = createHash('sha256');
  let size = 0;
  try {
    await new Promise<void>((resolve, reject) => {
      const out = createWriteStream(tmp, { mode: 0o644 });
      req.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_RELEASE_BYTES) { req.destroy(); reject(new ApiError(413, 'RequestEntityTooLarge', `a release may not exceed ${MAX_RELEASE_BYTES} bytes`)); return; }
        hash.update(c);
      });
      req.pipe(out);
      out.on('finish', resolve);
      out.on('error', reject);
      req.on('error', reject);
    });
    const got = hash.digest('hex');
    if (got !== want) throw errors.badRequest(`checksum mismatch for ${file}: expected ${want}, got ${got} (a damaged or tampered upload); nothing was stored`);
    renameSync(tmp, join(dir, file));
    const lines = existsSync(join(dir, 'SHA256SUMS')) ? readFileSync(join(dir, 'SHA256SUMS'), 'utf8').split('\n').filter((l) => l && !l.endsWith(`  ${file}`)) : [];
    writeFileSync(join(dir, 'SHA256SUMS.tmp'), [...lines, `${got}  ${file}`].join('\n') + '\n');
    renameSync(join(dir, 'SHA256SUMS.tmp'), join(dir, 'SHA256SUMS'));
  } finally {
    rmSync(tmp, { force: true });
  }
  res.writeHead(201, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ file, sha256: want, size }));
}
