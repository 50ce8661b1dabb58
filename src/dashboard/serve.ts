// The dashboard's static files (issue 16), served by `skiff server` under /dashboard/ on the API port.
// Only the page itself is served here, without credentials (it is the same for everyone and holds no
// data); every request the page makes goes to the normal API with the user's bearer token, so
// authentication, RBAC and audit apply unchanged. The files are built by scripts/build-dashboard.mjs
// with content-hashed names and precompressed gzip/brotli variants; they are read once, on the first
// request, and kept in memory (about 100 KB).
import type { IncomingMessage, ServerResponse } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { logger } from '../util/log.js';

const log = logger('dashboard');

export const DASHBOARD_PREFIX = '/dashboard';

interface Asset { type: string; raw: Buffer; gzip: Buffer; br: Buffer; etag: string }
interface Assets { index: Asset; files: Map<string, Asset> }

/**
 * The policy every dashboard response carries: scripts from this origin only (no inline code, no
 * eval), data only from this API (fetch and the exec WebSocket), no framing, no plugins, no forms.
 * Styles come from this origin, plus inline styles: xterm.js writes its theme and glyph-size rules
 * into <style> elements and style attributes when a terminal opens. That relaxation cannot run code,
 * and the page never inserts markup from the API (all text is set as text).
 */
export const CONTENT_SECURITY_POLICY = [
  "default-src 'none'", "script-src 'self'", "style-src 'self' 'unsafe-inline'", "img-src 'self' data:", "font-src 'self'",
  "connect-src 'self'", "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
].join('; ');

const SECURITY_HEADERS: Record<string, string> = {
  'Content-Security-Policy': CONTENT_SECURITY_POLICY,
  'X-Content-Type-Options': 'nosniff',
  'X-Frame-Options': 'DENY',
  'Referrer-Policy': 'no-referrer',
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** Where the build put the files: next to this module once compiled, or the repository's dist/ under tsx. */
function assetDirs(): string[] {
  const here = fileURLToPath(new URL('.', import.meta.url));
  return [join(here, 'assets'), join(here, '..', '..', 'dist', 'dashboard', 'assets')];
}

let loaded: Assets | null | undefined;

function load(): Assets | null {
  if (loaded !== undefined) return loaded;
  const dir = assetDirs().find((d) => existsSync(join(d, 'manifest.json')));
  if (!dir) {
    log.warn({ looked: assetDirs() }, 'dashboard assets not built (npm run build); /dashboard/ answers 404');
    loaded = null;
    return null;
  }
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { index: string; files: Record<string, { type: string }> };
  const files = new Map<string, Asset>();
  for (const [name, meta] of Object.entries(manifest.files)) {
    const raw = readFileSync(join(dir, name));
    files.set(name, {
      type: meta.type, raw, gzip: readFileSync(join(dir, `${name}.gz`)), br: readFileSync(join(dir, `${name}.br`)),
      etag: `"${raw.length.toString(36)}-${hashOf(raw)}"`,
    });
  }
  const index = files.get(manifest.index);
  if (!index) throw new Error(`${dir}/manifest.json: no ${manifest.index}`);
  files.delete(manifest.index);
  loaded = { index, files };
  return loaded;
}

function hashOf(b: Buffer): string {
  // FNV-1a: a cheap validator for the ETag (the file names already carry esbuild's content hash).
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) { h ^= b[i]!; h = Math.imul(h, 0x01000193) >>> 0; }
  return h.toString(36);
}

/** Serves /dashboard and below; returns false for every other path (the API handles it). */
export function serveDashboard(req: IncomingMessage, res: ServerResponse): boolean {
  const url = req.url ?? '/';
  if (url !== DASHBOARD_PREFIX && !url.startsWith(`${DASHBOARD_PREFIX}/`) && !url.startsWith(`${DASHBOARD_PREFIX}?`)) return false;
  const path = new URL(url, 'https://x').pathname;
  if (path !== DASHBOARD_PREFIX && !path.startsWith(`${DASHBOARD_PREFIX}/`)) {
    // `/dashboard/../x` normalizes to a path outside: never ours to serve.
    send(res, 404, 'text/plain; charset=utf-8', Buffer.from('not found\n'));
    return true;
  }
  const method = req.method ?? 'GET';
  if (method !== 'GET' && method !== 'HEAD') {
    send(res, 405, 'text/plain; charset=utf-8', Buffer.from('method not allowed\n'), { Allow: 'GET, HEAD' });
    return true;
  }
  if (path === DASHBOARD_PREFIX) {
    // Relative asset URLs in index.html need the trailing slash.
    send(res, 301, 'text/plain; charset=utf-8', Buffer.from(''), { Location: `${DASHBOARD_PREFIX}/` });
    return true;
  }
  const assets = load();
  if (!assets) {
    send(res, 404, 'text/plain; charset=utf-8', Buffer.from('the dashboard is not built into this skiff\n'));
    return true;
  }
  const rest = path.slice(DASHBOARD_PREFIX.length + 1);
  if (rest === '' || rest === 'index.html') {
    // The page must be revalidated every time so a new build's asset names are picked up at once.
    sendAsset(req, res, assets.index, 'no-cache');
    return true;
  }
  const m = /^assets\/([A-Za-z0-9._-]+)$/.exec(rest);
  const asset = m ? assets.files.get(m[1]!) : undefined;
  if (!asset) {
    send(res, 404, 'text/plain; charset=utf-8', Buffer.from('not found\n'));
    return true;
  }
  // Content-hashed names never change content: cache for a year without revalidation.
  sendAsset(req, res, asset, 'public, max-age=31536000, immutable');
  return true;
}

function sendAsset(req: IncomingMessage, res: ServerResponse, a: Asset, cacheControl: string): void {
  const headers: Record<string, string> = { 'Cache-Control': cacheControl, ETag: a.etag, Vary: 'Accept-Encoding' };
  if (req.headers['if-none-match'] === a.etag) {
    res.writeHead(304, { ...SECURITY_HEADERS, ...headers });
    res.end();
    return;
  }
  const enc = pickEncoding(String(req.headers['accept-encoding'] ?? ''));
  if (enc) headers['Content-Encoding'] = enc;
  send(res, 200, a.type, enc === 'br' ? a.br : enc === 'gzip' ? a.gzip : a.raw, headers, req.method === 'HEAD');
}

/** br if the client takes it, else gzip, else identity (q=0 refuses an encoding). */
export function pickEncoding(accept: string): 'br' | 'gzip' | undefined {
  const ok = new Set<string>();
  for (const part of accept.split(',')) {
    const [name, ...params] = part.trim().toLowerCase().split(';');
    const q = params.map((p) => p.trim()).find((p) => p.startsWith('q='));
    if (name && !(q && Number(q.slice(2)) === 0)) ok.add(name.trim());
  }
  if (ok.has('br')) return 'br';
  if (ok.has('gzip') || ok.has('*')) return 'gzip';
  return undefined;
}

function send(res: ServerResponse, code: number, type: string, body: Buffer, headers: Record<string, string> = {}, headOnly = false): void {
  res.writeHead(code, { ...SECURITY_HEADERS, 'Content-Type': type, 'Content-Length': body.length, ...headers });
  res.end(headOnly ? undefined : body);
}
