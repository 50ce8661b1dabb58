// The release artifacts a server offers its nodes: a directory (default `<data-dir>/server/releases`)
// holding what `npm run release` writes, `skiff-<version>-linux-<arch>.tar.gz` files and a SHA256SUMS
// listing them. Served to nodes at RELEASES_PATH over the API server's own port, so a node behind NAT
// downloads through the connection it already has to the server (no second port, no internet).
//
// Several servers (HA): each keeps its own release dir, and a release uploaded to (or copied onto) one
// of them reaches the others by pull on miss: a server asked for a release it lacks (a node's
// download through the load balancer, the upgrade controller of the leader resolving a plan) fetches
// it from the other servers listed in the `kubernetes` Endpoints, checks it against the checksum the
// holder lists, keeps it with its SHA256SUMS line and serves it. Chosen over pushing to every server at
// upload time (a server down then, or joining later, would lack it for ever) and over chunks in the
// datastore (tens of MB in every server's watch cache): nothing to configure, and it heals by itself.
import type { IncomingMessage, ServerResponse } from 'node:http';
import http from 'node:http';
import https from 'node:https';
import { createReadStream, createWriteStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash, randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ApiError, errors } from '../../api/status.js';
import { Resources, type ApiClient } from '../../client/types.js';
import { logger } from '../../util/log.js';
import { releaseFileName } from './api.js';

const log = logger('releases');

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
      + 'send it with `skiff release upload`, or copy the tarball and its SHA256SUMS line there (npm run release writes both)';
  }
  const sha256 = sums(dir).get(file);
  if (!sha256) return `${join(dir, 'SHA256SUMS')} lists no checksum for ${file}: a release is only offered with its checksum`;
  return { file, sha256, size: statSync(path).size };
}

/** Where a server finds the other servers of its cluster, and how it authenticates to them. */
export interface ReleasePeers {
  /** The other servers' base URLs (`https://ip:port`); this server itself may be listed (it answers 404). */
  urls(): Promise<string[]>;
  /** The cluster's serving CA and this server's own client certificate (system:masters). */
  tls?: { caPem: string; certPem: string; keyPem: string };
}

/** Set by a server asking a peer: answer from your own dir only (two servers lacking a file never ask each other in a loop). */
export const LOCAL_ONLY_HEADER = 'x-skiff-release-local';
/** The sha256 of the tarball: sent with an upload, and with a download when the server's SHA256SUMS lists it. */
export const SHA256_HEADER = 'x-skiff-sha256';

/**
 * GET RELEASES_PATH<file>: the tarball, to nodes and admins only; its checksum travels separately
 * (the plan hands it to the node), so a tarball changed on disk after the plan resolved it is refused
 * by the node. A release this server lacks is fetched from `peers` first (HA). Returns false for any
 * other path.
 */
export function handleReleaseDownload(dir: string, req: IncomingMessage, res: ServerResponse, user: { groups?: string[] } | null, peers?: ReleasePeers): boolean {
  const path = (req.url ?? '').split('?')[0]!;
  if (!path.startsWith(RELEASES_PATH)) return false;
  if (req.method === 'PUT') { void upload(dir, req, res, user, path).catch((e) => sendError(res, e)); return true; }
  if (!user?.groups?.some((g) => g === 'system:nodes' || g === 'system:masters')) throw new ApiError(403, 'Forbidden', 'release artifacts are served to nodes and administrators only');
  if (req.method !== 'GET' && req.method !== 'HEAD') throw errors.methodNotAllowed(req.method ?? '');
  const file = decodeURIComponent(path.slice(RELEASES_PATH.length));
  if (!FILE_RE.test(file)) throw errors.badRequest(`invalid release file name ${JSON.stringify(file)}: expected skiff-<version>-linux-<arch>.tar.gz`);
  const full = join(dir, file);
  if (existsSync(full)) { serve(dir, file, req, res); return true; }
  if (!peers || req.headers[LOCAL_ONLY_HEADER]) throw errors.notFound('releases', 'skiff.io', file);
  void fetchFromPeers(dir, file, peers).then((r) => {
    if (typeof r === 'string') throw new ApiError(404, 'NotFound', `release ${file} not found on this server; ${r}`);
    serve(dir, file, req, res);
  }).catch((e) => sendError(res, e));
  return true;
}

function serve(dir: string, file: string, req: IncomingMessage, res: ServerResponse): void {
  const full = join(dir, file);
  const size = statSync(full).size;
  const sha = sums(dir).get(file);
  res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': String(size), ...(sha ? { [SHA256_HEADER]: sha } : {}) });
  if (req.method === 'HEAD') { res.end(); return; }
  createReadStream(full).on('error', (e) => res.destroy(e)).pipe(res);
}

/** The API servers of the cluster as the `kubernetes` Endpoints list them (every live server), but `self` (`ip:port`). */
export function apiServerPeers(client: ApiClient, self: string, tls: ReleasePeers['tls']): ReleasePeers {
  return {
    tls,
    async urls() {
      const ep = await client.get(Resources.endpoints, 'default', 'kubernetes') as { subsets?: { addresses?: { ip: string }[]; ports?: { port: number }[] }[] } | undefined;
      const out: string[] = [];
      for (const s of ep?.subsets ?? []) {
        for (const a of s.addresses ?? []) {
          for (const p of s.ports ?? []) {
            if (`${a.ip}:${p.port}` === self) continue;
            out.push(`https://${a.ip.includes(':') ? `[${a.ip}]` : a.ip}:${p.port}`);
          }
        }
      }
      return out;
    },
  };
}

const inflight = new Map<string, Promise<Artifact | string>>();
/** A file no peer had, and when: not asked again for a while (a plan naming a missing version is reconciled at every node heartbeat). */
const misses = new Map<string, { at: number; why: string }>();
const MISS_TTL_MS = 15_000;

/**
 * Fetches `file` into `dir` from the first peer that has it, checked against the sha256 that peer
 * lists for it; one fetch per file at a time. The artifact, or why none of the peers gave it.
 */
export function fetchFromPeers(dir: string, file: string, peers: ReleasePeers, now: () => number = Date.now): Promise<Artifact | string> {
  const key = `${dir}\0${file}`;
  const miss = misses.get(key);
  if (miss && now() - miss.at < MISS_TTL_MS) return Promise.resolve(miss.why);
  let p = inflight.get(key);
  if (!p) {
    p = (async (): Promise<Artifact | string> => {
      const urls = await peers.urls().catch((e) => { log.warn({ err: String(e) }, 'could not list the other servers'); return [] as string[]; });
      const tried: string[] = [];
      for (const base of urls) {
        try {
          const got = await fetchOne(dir, file, new URL(RELEASES_PATH + encodeURIComponent(file), base), peers.tls);
          log.info({ file, from: base, sha256: got.sha256, size: got.size }, 'release fetched from another server');
          misses.delete(key);
          return got;
        } catch (e) {
          tried.push(`${base}: ${e instanceof Error ? e.message : String(e)}`);
        }
      }
      const why = urls.length ? `no other server gave it (${tried.join('; ')})` : 'no other server to fetch it from';
      misses.set(key, { at: now(), why });
      return why;
    })().finally(() => inflight.delete(key));
    inflight.set(key, p);
  }
  return p;
}

function fetchOne(dir: string, file: string, url: URL, tls: ReleasePeers['tls']): Promise<Artifact> {
  mkdirSync(dir, { recursive: true });
  const tmp = join(dir, `.fetch-${randomBytes(6).toString('hex')}`);
  const get = url.protocol === 'https:' ? https.get : http.get;
  return new Promise<Artifact>((resolve, reject) => {
    const req = get(url, { headers: { [LOCAL_ONLY_HEADER]: '1' }, timeout: 60_000, ...(tls ? { ca: tls.caPem, cert: tls.certPem, key: tls.keyPem } : {}) }, (res) => {
      const want = String(res.headers[SHA256_HEADER] ?? '');
      if (res.statusCode !== 200) { res.resume(); reject(new Error(`HTTP ${res.statusCode}`)); return; }
      if (!/^[0-9a-f]{64}$/.test(want)) { res.destroy(); reject(new Error('sent no checksum for it')); return; }
      const hash = createHash('sha256');
      let size = 0;
      const out = createWriteStream(tmp, { mode: 0o644 });
      res.on('data', (c: Buffer) => { hash.update(c); size += c.length; });
      res.on('error', reject);
      out.on('error', reject);
      out.on('finish', () => {
        const got = hash.digest('hex');
        if (got !== want) { reject(new Error(`checksum mismatch: expected ${want}, got ${got}; not kept`)); return; }
        keep(dir, tmp, file, got);
        resolve({ file, sha256: got, size });
      });
      res.pipe(out);
    });
    req.on('timeout', () => req.destroy(new Error('no data for 60 s')));
    req.on('error', reject);
  }).finally(() => rmSync(tmp, { force: true }));
}

/** Puts a verified tarball in place and lists it in SHA256SUMS (no await between read and write: one writer at a time). */
function keep(dir: string, tmp: string, file: string, sha256: string): void {
  renameSync(tmp, join(dir, file));
  const lines = existsSync(join(dir, 'SHA256SUMS')) ? readFileSync(join(dir, 'SHA256SUMS'), 'utf8').split('\n').filter((l) => l && !l.endsWith(`  ${file}`)) : [];
  writeFileSync(join(dir, 'SHA256SUMS.tmp'), [...lines, `${sha256}  ${file}`].join('\n') + '\n');
  renameSync(join(dir, 'SHA256SUMS.tmp'), join(dir, 'SHA256SUMS'));
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
 * checksum given; SHA256SUMS then lists it. The other servers of an HA cluster fetch it from this
 * one when they are asked for it (fetchFromPeers).
 */
async function upload(dir: string, req: IncomingMessage, res: ServerResponse, user: { groups?: string[] } | null, path: string): Promise<void> {
  if (!user?.groups?.includes('system:masters')) throw new ApiError(403, 'Forbidden', 'only administrators (system:masters) may upload releases');
  const file = decodeURIComponent(path.slice(RELEASES_PATH.length));
  if (!FILE_RE.test(file)) throw errors.badRequest(`invalid release file name ${JSON.stringify(file)}: expected skiff-<version>-linux-<arch>.tar.gz`);
  const want = String(req.headers[SHA256_HEADER] ?? '').toLowerCase();
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
    keep(dir, tmp, file, got);
  } finally {
    rmSync(tmp, { force: true });
  }
  res.writeHead(201, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ file, sha256: want, size }));
}
