// Forwards one authenticated (and authorized) request to an aggregated API server, as
// kube-aggregator's proxy handler does: same method, path and query; the caller's credentials
// removed (the Authorization header, impersonation headers, any X-Remote-* a client tried to send)
// and the user the server authenticated passed as X-Remote-User / X-Remote-Group /
// X-Remote-Extra-<key>, which the backend trusts because the connection presents the front-proxy
// client certificate. Responses stream back as they come (watches, logs), and upgrades (exec-like
// WebSocket or SPDY) are spliced both ways once the backend answers 101.
//
// Plain node:https with pipes rather than a proxy library: every connection here must start as a
// node-tunnel stream wrapped in TLS (BackendTransport's agent), the identity headers are the whole
// point and are easier to get exactly right in one visible function, and an upgrade arrives as an
// ordinary request with its socket (tunnel/upgrade.ts), which generic proxies do not expect.
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage, ServerResponse, OutgoingHttpHeaders } from 'node:http';
import type { Duplex } from 'node:stream';
import type { UserInfo } from '../authn.js';
import { errors } from '../../api/status.js';
import { sendError } from '../http.js';
import { upgradeHead } from '../tunnel/upgrade.js';
import type { BackendTls, BackendTransport, Endpoint } from './backend.js';

const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade']);
const REMOTE_USER = 'X-Remote-User';
const REMOTE_GROUP = 'X-Remote-Group';
const REMOTE_EXTRA = 'X-Remote-Extra-';

/** The identity headers kube-aggregator sets (client-go's SetAuthProxyHeaders). */
export function authProxyHeaders(user: Pick<UserInfo, 'name' | 'groups' | 'extra'>): OutgoingHttpHeaders {
  const h: OutgoingHttpHeaders = { [REMOTE_USER]: user.name };
  if (user.groups.length) h[REMOTE_GROUP] = [...user.groups];
  for (const [k, vs] of Object.entries(user.extra ?? {})) {
    // Header names cannot carry every character of an extra key: escaped as a URL path segment.
    if (vs.length) h[REMOTE_EXTRA + encodeURIComponent(k)] = [...vs];
  }
  return h;
}

/** The request headers that go to the backend: the client's, minus credentials and hop-by-hop ones. */
export function forwardHeaders(req: IncomingMessage, user: Pick<UserInfo, 'name' | 'groups' | 'extra'>, ep: Endpoint, upgrade: boolean): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(req.headers)) {
    if (value === undefined) continue;
    const l = name.toLowerCase();
    if (HOP_BY_HOP.has(l) || l === 'host' || l === 'authorization' || l.startsWith('impersonate-') || l.startsWith('x-remote-')) continue;
    out[name] = value;
  }
  const client = req.socket.remoteAddress?.replace(/^::ffff:/, '');
  if (client) out['X-Forwarded-For'] = req.headers['x-forwarded-for'] ? `${String(req.headers['x-forwarded-for'])}, ${client}` : client;
  out.Host = ep.host.includes(':') ? `[${ep.host}]:${ep.port}` : `${ep.host}:${ep.port}`;
  if (upgrade) {
    out.Connection = 'Upgrade';
    out.Upgrade = req.headers.upgrade ?? '';
  }
  return { ...out, ...authProxyHeaders(user) };
}

/** Go's http.Error, which kube-aggregator answers proxy failures with. */
export function plainError(res: ServerResponse, code: number, message: string): void {
  if (res.headersSent) { res.destroy(); return; }
  const body = Buffer.from(message + '\n');
  res.writeHead(code, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff', 'Content-Length': body.length });
  res.end(body);
}

export interface ProxyTarget {
  ep: Endpoint;
  tls: BackendTls;
  /** The raw path and query, as the client sent them. */
  pathAndQuery: string;
  /**
   * No answer from the backend within this: 504 (kube-apiserver's timeout for requests that are not
   * long-running, which wraps proxied ones too). Unset for watches and upgrades.
   */
  timeoutMs?: number;
}

/** A Go duration as clients send `?timeout=` (`32s`, `1m0s`, `500ms`); undefined when malformed. */
export function parseGoDuration(s: string | null): number | undefined {
  if (!s) return undefined;
  const units: Record<string, number> = { ns: 1e-6, us: 1e-3, 'µs': 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/gy;
  let ms = 0;
  let m: RegExpExecArray | null;
  let at = 0;
  while ((m = re.exec(s))) { ms += Number(m[1]) * units[m[2]!]!; at = re.lastIndex; }
  return at === s.length && at > 0 ? ms : undefined;
}

/** Proxies `req` to the backend; resolves when the response (or upgraded stream) has started. */
export function proxyRequest(transport: BackendTransport, target: ProxyTarget, req: IncomingMessage, res: ServerResponse, user: UserInfo): Promise<void> {
  const head = upgradeHead(req);
  const upgrade = head !== undefined;
  // A bodiless read on a kept-alive connection the backend closed meanwhile is sent again once, as
  // Go's transport does for idempotent requests (Node's agent does not).
  const retryable = !upgrade && (req.method === 'GET' || req.method === 'HEAD');
  return new Promise<void>((resolve) => {
    let answered = false;
    let current: ReturnType<typeof httpsRequest> | undefined;
    const timer = target.timeoutMs === undefined ? undefined : setTimeout(() => {
      if (answered) return;
      answered = true;
      current?.destroy();
      sendError(res, errors.timeout('Timeout: request did not complete within requested timeout - context deadline exceeded'));
      resolve();
    }, target.timeoutMs);
    res.once('close', () => clearTimeout(timer));
    const attempt = (again: boolean) => {
      const out = httpsRequest({
        host: target.ep.host, port: target.ep.port, method: req.method, path: target.pathAndQuery,
        agent: transport.agentFor(target.ep, target.tls),
        headers: forwardHeaders(req, user, target.ep, upgrade),
      });
      current = out;
      out.on('error', (err) => {
        if (answered) { res.destroy(); return resolve(); }
        if (again && out.reusedSocket && !res.destroyed) return attempt(false);
        answered = true;
        clearTimeout(timer);
        // UpgradeAwareHandler's words for a backend it could not reach.
        plainError(res, 503, `error trying to reach service: ${err.message}`);
        resolve();
      });
      out.on('response', (up) => {
        if (answered) { up.destroy(); return; }
        answered = true;
        clearTimeout(timer);
        const headers: OutgoingHttpHeaders = {};
        for (const [k, v] of Object.entries(up.headers)) if (v !== undefined && !HOP_BY_HOP.has(k)) headers[k] = v;
        res.writeHead(up.statusCode ?? 502, headers);
        // Flushed as they arrive: a watch's events must not wait for a buffer to fill.
        up.pipe(res);
        up.on('error', () => res.destroy());
        res.once('close', () => { if (!up.complete) up.destroy(); });
        resolve();
      });
      out.on('upgrade', (up, backend: Duplex, backendHead: Buffer) => {
        if (answered) { backend.destroy(); return; }
        answered = true;
        clearTimeout(timer);
        const client = req.socket;
        const lines = [`HTTP/1.1 ${up.statusCode ?? 101} ${up.statusMessage || 'Switching Protocols'}`];
        for (let i = 0; i + 1 < up.rawHeaders.length; i += 2) lines.push(`${up.rawHeaders[i]}: ${up.rawHeaders[i + 1]}`);
        client.write(lines.join('\r\n') + '\r\n\r\n');
        if (backendHead.length) client.write(backendHead);
        if (head && head.length) backend.write(head);
        backend.pipe(client);
        client.pipe(backend);
        const close = () => { backend.destroy(); client.destroy(); };
        backend.once('close', close);
        client.once('close', close);
        backend.on('error', close);
        client.on('error', close);
        resolve();
      });
      // A client gone before the backend answered: let the backend know.
      res.once('close', () => { if (!answered) out.destroy(); });
      if (upgrade || retryable) {
        if (retryable) req.resume();   // a GET's body, if any, is not forwarded (Kubernetes sends none)
        out.end();
      } else {
        req.pipe(out);
        req.on('error', (e) => out.destroy(e));
      }
    };
    attempt(retryable);
  });
}
