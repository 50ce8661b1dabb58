// Reaching a site's API through the manager: `https://<manager>/apis/fleet.skiff.io/v1alpha1/clusters/<name>/proxy/<path>`
// becomes `<path>` on the site, sent over a `fleet-api` stream of the site's tunnel as plain HTTP/1.1
// (the site relays the bytes to its own API port over TLS, with its own credential).
//
// Security: the manager authenticated the caller and authorized the request on `clusters/proxy` of
// this Cluster (RBAC on the manager decides who may reach which site). The request then runs on the
// site *as the caller*: the manager drops the caller's credentials and sends Impersonate-User/Group/
// Extra headers, and the site's fleet identity may do nothing but impersonate. So what the caller may
// do on the site is decided by the site's own RBAC (least privilege: reaching a site is not the same
// as being its admin), and the site's audit log names the real user. The manager never holds a
// site credential: a compromised manager can act only as users, inside what the site grants them,
// and a site can be cut off by revoking its fleet identity's impersonate binding. (Rancher does the
// same in spirit: its cluster agent impersonates the Rancher user on the downstream cluster, where
// Rancher-synced RBAC applies; k3s itself has no such proxy.)
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { ApiError } from '../api/status.js';
import { TunnelStreamError, type TunnelMux, type TunnelStream } from '../tunnel/mux.js';
import { FLEET_GROUP, FLEET_VERSION } from './api.js';

export interface ProxyCaller {
  name: string;
  groups: string[];
  uid?: string;
  extra?: Record<string, string[]>;
}

/** Request headers never forwarded: credentials, identity claims, and hop-by-hop headers. */
const DROP_REQUEST = new Set([
  'authorization', 'proxy-authorization', 'cookie', 'host', 'connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding',
  'proxy-connection', 'upgrade',
]);
const DROP_RESPONSE = new Set(['connection', 'keep-alive', 'transfer-encoding', 'te', 'trailer', 'proxy-connection', 'upgrade']);

export function proxyPrefix(name: string): string {
  return `/apis/${FLEET_GROUP}/${FLEET_VERSION}/clusters/${name}/proxy`;
}

/** The site-side request target for a proxied URL: what follows `/proxy`, always starting with `/`. */
export function siteTarget(rawUrl: string, name: string): string {
  const prefix = proxyPrefix(name);
  if (!rawUrl.startsWith(prefix)) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
  const rest = rawUrl.slice(prefix.length);
  if (rest === '' || rest.startsWith('?')) return '/' + rest;
  if (!rest.startsWith('/')) throw new ApiError(404, 'NotFound', 'the server could not find the requested resource');
  return rest;
}

/** Headers for the site: the caller's request minus credentials and hop-by-hop headers, plus impersonation. */
export function siteHeaders(rawHeaders: string[], caller: ProxyCaller, upgrade: boolean): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
    const name = rawHeaders[i]!;
    const lower = name.toLowerCase();
    if (DROP_REQUEST.has(lower) || lower.startsWith('impersonate-') || lower.startsWith('x-remote-')) continue;
    const prev = out[name];
    out[name] = prev === undefined ? rawHeaders[i + 1]! : [...(Array.isArray(prev) ? prev : [prev]), rawHeaders[i + 1]!];
  }
  if (upgrade) {
    const h = rawHeaders;
    for (let i = 0; i + 1 < h.length; i += 2) if (h[i]!.toLowerCase() === 'upgrade') out.Upgrade = h[i + 1]!;
    out.Connection = 'Upgrade';
  } else {
    out.Connection = 'close';
  }
  out['Impersonate-User'] = caller.name;
  const groups = caller.groups.filter((g) => g !== 'system:authenticated');
  if (groups.length) out['Impersonate-Group'] = groups;
  if (caller.uid) out['Impersonate-Uid'] = caller.uid;
  for (const [k, vs] of Object.entries(caller.extra ?? {})) if (vs.length) out[`Impersonate-Extra-${encodeURIComponent(k)}`] = vs;
  return out;
}

function responseHeaders(raw: string[]): Record<string, string | string[]> {
  const out: Record<string, string | string[]> = {};
  for (let i = 0; i + 1 < raw.length; i += 2) {
    const name = raw[i]!;
    if (DROP_RESPONSE.has(name.toLowerCase())) continue;
    const prev = out[name];
    out[name] = prev === undefined ? raw[i + 1]! : [...(Array.isArray(prev) ? prev : [prev]), raw[i + 1]!];
  }
  return out;
}

/** Sends one request to the site and its answer (or upgraded connection) back to the caller. */
export async function forwardToSite(mux: TunnelMux, name: string, req: IncomingMessage, res: ServerResponse, caller: ProxyCaller,
  upgradeHead: Buffer | undefined): Promise<void> {
  const target = siteTarget(req.url ?? '', name);
  let stream: TunnelStream;
  try {
    stream = await mux.open({ op: 'fleet-api' });
  } catch (err) {
    const code = err instanceof TunnelStreamError ? err.code : 502;
    throw new ApiError(code === 504 ? 504 : 502, code === 504 ? 'Timeout' : 'InternalError', `error dialing cluster "${name}": ${(err as Error).message}`);
  }
  if (req.socket.destroyed) { stream.destroy(); return; }
  asSocket(stream);
  const upgrade = upgradeHead !== undefined;
  const out = http.request({
    method: req.method, path: target, headers: { ...siteHeaders(req.rawHeaders, caller, upgrade), Host: `fleet-${name}` },
    createConnection: () => stream as never,
  });
  const fail = (err: Error) => {
    stream.destroy();
    if (!res.headersSent && !req.socket.destroyed) {
      const status = new ApiError(502, 'InternalError', `error proxying to cluster "${name}": ${err.message}`).toStatus();
      const body = JSON.stringify(status);
      res.writeHead(502, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    } else {
      res.destroy();
    }
  };
  out.once('error', fail);
  out.once('response', (pres) => {
    res.writeHead(pres.statusCode ?? 502, pres.statusMessage, responseHeaders(pres.rawHeaders));
    pres.pipe(res);
    pres.once('error', () => res.destroy());
  });
  res.once('close', () => { if (!upgrade) stream.destroy(); });
  if (upgrade) {
    out.once('upgrade', (pres, socket: Duplex, siteHead: Buffer) => {
      const client = req.socket;
      const lines = [`HTTP/1.1 ${pres.statusCode} ${pres.statusMessage ?? 'Switching Protocols'}`];
      for (let i = 0; i + 1 < pres.rawHeaders.length; i += 2) lines.push(`${pres.rawHeaders[i]}: ${pres.rawHeaders[i + 1]}`);
      client.write(lines.join('\r\n') + '\r\n\r\n');
      if (siteHead.length) client.write(siteHead);
      if (upgradeHead.length) socket.write(upgradeHead);
      client.pipe(socket);
      socket.pipe(client);
      const done = () => { client.destroy(); socket.destroy(); };
      client.once('close', done);
      socket.once('close', done);
      client.on('error', done);
      socket.on('error', done);
    });
    out.end();
  } else {
    req.pipe(out);
  }
}

/** Node's HTTP client calls a few net.Socket methods on the connection it is given. */
function asSocket(stream: TunnelStream): void {
  const s = stream as unknown as Record<string, unknown>;
  for (const m of ['setNoDelay', 'setKeepAlive', 'ref', 'unref']) if (typeof s[m] !== 'function') s[m] = () => stream;
  if (typeof s.setTimeout !== 'function') s.setTimeout = () => stream;
}
