// API aggregation (kube-aggregator's role): requests under /apis/<group>/<version>/ for which an
// APIService names a Service are proxied to that Service's endpoint; everything else is served by
// skiff itself. The availability controller (availability.ts) checks each backend and feeds its
// discovery document to RemoteDiscovery, which the server's Discovery merges.
import { request as httpsRequest } from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Store } from '../../storage/types.js';
import type { UserInfo } from '../authn.js';
import type { Dialer } from '../webhooks/client.js';
import {
  BackendTransport, BackendUnavailable, backendTls, resolveEndpoint, serviceRefOf,
  type ApiServiceObject, type BackendTls, type Endpoint, type ProxyClientCert, type UnavailableReason,
} from './backend.js';
import { authProxyHeaders, parseGoDuration, plainError, proxyRequest } from './proxy.js';
import { RemoteDiscovery, type GroupVersionPriority } from './remote-discovery.js';

export { RemoteDiscovery } from './remote-discovery.js';
export type { ApiServiceObject } from './backend.js';

const APISERVICES_PREFIX = '/apiregistration.k8s.io/apiservices/';
/** kube-aggregator's discovery check: a short GET that must answer 2xx. */
const CHECK_TIMEOUT_MS = 5_000;
/** The identity of the server's own discovery checks (kube-aggregator's). */
const AGGREGATOR_USER = { name: 'system:kube-aggregator', groups: ['system:masters'] };
/** kube-apiserver's --request-timeout: the longest a request that is not long-running may take. */
const REQUEST_TIMEOUT_MS = 60_000;

export type CheckOutcome =
  | { available: true; reason: 'Passed'; message: string }
  | { available: false; reason: UnavailableReason | 'FailedDiscoveryCheck'; message: string };

export function isAvailable(a: ApiServiceObject): boolean {
  return (a.status?.conditions ?? []).some((c) => c.type === 'Available' && c.status === 'True');
}

export function groupVersionOf(a: ApiServiceObject): GroupVersionPriority {
  return {
    group: a.spec?.group ?? '', version: a.spec?.version ?? '',
    groupPriorityMinimum: a.spec?.groupPriorityMinimum ?? 0, versionPriority: a.spec?.versionPriority ?? 0,
  };
}

export class Aggregator {
  readonly discovery = new RemoteDiscovery();
  private readonly transport: BackendTransport;
  /** Per APIService: the OpenAPI v3 path of its group version and the backend's hash for it. */
  private readonly openapi = new Map<string, { gvPath: string; url: string }>();

  constructor(private readonly store: Store, proxyClient: ProxyClientCert) {
    this.transport = new BackendTransport(proxyClient);
  }

  /** Endpoint pods are reached through their node's tunnel when it has one. */
  useDialer(d: Dialer): void { this.transport.useDialer(d); }

  /** The APIService whose backend serves `path` (/apis/<group>/<version> or below), if any. */
  match(path: string): ApiServiceObject | undefined {
    const m = /^\/apis\/([^/]+)\/([^/]+)(?:\/|$)/.exec(path);
    if (!m) return undefined;
    const a = this.store.get(`${APISERVICES_PREFIX}${m[2]}.${m[1]}`)?.obj as ApiServiceObject | undefined;
    return a && serviceRefOf(a) ? a : undefined;
  }

  /**
   * Proxies an authenticated, authorized request; failures answer as kube-aggregator does (503, plain
   * text). A request that is not long-running gets at most its `?timeout=` (60 s at most) for an answer.
   */
  async proxy(a: ApiServiceObject, req: IncomingMessage, res: ServerResponse, user: UserInfo, longRunning = false): Promise<void> {
    const ref = serviceRefOf(a)!;
    if (!isAvailable(a)) return plainError(res, 503, 'service unavailable');
    let ep: Endpoint;
    try {
      ep = resolveEndpoint(this.store, ref);
    } catch (e) {
      if (e instanceof BackendUnavailable) return plainError(res, 503, 'service unavailable');
      throw e;
    }
    const pathAndQuery = req.url ?? '/';
    let timeoutMs: number | undefined;
    if (!longRunning) {
      const q = pathAndQuery.indexOf('?');
      const asked = q < 0 ? undefined : parseGoDuration(new URLSearchParams(pathAndQuery.slice(q + 1)).get('timeout'));
      timeoutMs = Math.min(asked && asked > 0 ? asked : REQUEST_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    }
    await proxyRequest(this.transport, { ep, tls: backendTls(a, ref), pathAndQuery, timeoutMs }, req, res, user);
  }

  /**
   * kube-aggregator's availability check, which also refreshes the discovery cache: the Service, a
   * ready endpoint, then a GET of the group version's discovery document. Like kube-aggregator, the
   * check itself does not insist on a verified certificate (a backend with a wrong caBundle is
   * Available, but its discovery stays stale and proxied requests fail with the TLS error).
   */
  async check(a: ApiServiceObject): Promise<CheckOutcome> {
    const ref = serviceRefOf(a);
    const name = a.metadata.name;
    const gv = groupVersionOf(a);
    if (!ref) {
      this.forget(name);
      return { available: true, reason: 'Passed', message: 'all checks passed' };
    }
    let ep: Endpoint;
    try {
      ep = resolveEndpoint(this.store, ref);
    } catch (e) {
      if (!(e instanceof BackendUnavailable)) throw e;
      this.discovery.markStale(name, gv);
      return { available: false, reason: e.reason, message: e.message };
    }
    const tls = backendTls(a, ref);
    const path = gv.group ? `/apis/${gv.group}/${gv.version}` : `/api/${gv.version}`;
    const url = `https://${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${ep.port}${path}`;
    let r = await this.get(ep, tls, path, tls.insecure);
    if (r.ok) {
      try { this.discovery.set(name, gv, JSON.parse(r.body)); } catch { this.discovery.markStale(name, gv); }
      await this.refreshOpenApi(name, ep, tls, path.slice(1));
      return { available: true, reason: 'Passed', message: 'all checks passed' };
    }
    this.discovery.markStale(name, gv);
    this.openapi.delete(name);
    if (r.tls && !tls.insecure) {
      r = await this.get(ep, tls, path, true);
      if (r.ok) return { available: true, reason: 'Passed', message: 'all checks passed' };
    }
    return { available: false, reason: 'FailedDiscoveryCheck', message: `failing or missing response from ${url}: ${r.ok ? '' : r.error(url)}` };
  }

  /**
   * The backend's OpenAPI v3 entry for its group version, as kube-aggregator merges /openapi/v3: the
   * server's index lists it with the backend's own URL (its hash changes when the document does).
   */
  private async refreshOpenApi(name: string, ep: Endpoint, tls: BackendTls, gvPath: string): Promise<void> {
    const r = await this.get(ep, tls, '/openapi/v3', tls.insecure);
    let url: unknown;
    if (r.ok) { try { url = JSON.parse(r.body)?.paths?.[gvPath]?.serverRelativeURL; } catch { /* no index */ } }
    if (typeof url === 'string' && url.startsWith(`/openapi/v3/${gvPath}`)) this.openapi.set(name, { gvPath, url });
    else this.openapi.delete(name);
  }

  /** The /openapi/v3 index entries of the aggregated group versions (they replace local ones). */
  openApiPaths(): Record<string, { serverRelativeURL: string }> {
    const out: Record<string, { serverRelativeURL: string }> = {};
    for (const [name, e] of this.openapi) {
      const a = this.store.get(`${APISERVICES_PREFIX}${name}`)?.obj as ApiServiceObject | undefined;
      if (a && serviceRefOf(a)) out[e.gvPath] = { serverRelativeURL: e.url };
    }
    return out;
  }

  /**
   * Serves /openapi/v3/apis/<group>/<version> of an aggregated group version from its backend
   * (fetched with the aggregator's identity, as kube-aggregator does); false when not aggregated.
   */
  async serveOpenApi(path: string, res: ServerResponse): Promise<boolean> {
    const m = /^\/openapi\/v3\/apis\/([^/]+)\/([^/]+)$/.exec(path);
    if (!m) return false;
    const name = `${m[2]}.${m[1]}`;
    const a = this.store.get(`${APISERVICES_PREFIX}${name}`)?.obj as ApiServiceObject | undefined;
    const ref = a && serviceRefOf(a);
    if (!a || !ref) return false;
    const entry = this.openapi.get(name);
    let ep: Endpoint;
    try { ep = resolveEndpoint(this.store, ref); } catch { plainError(res, 503, 'service unavailable'); return true; }
    const tls = backendTls(a, ref);
    const r = await this.get(ep, tls, entry?.url ?? path, tls.insecure);
    if (!r.ok) { plainError(res, 503, 'service unavailable'); return true; }
    const body = Buffer.from(r.body);
    res.writeHead(200, { 'Content-Type': 'application/json', 'Content-Length': body.length, 'Cache-Control': 'no-cache, private' });
    res.end(body);
    return true;
  }

  private get(ep: Endpoint, tls: BackendTls, path: string, insecure: boolean): Promise<{ ok: true; body: string } | { ok: false; tls: boolean; error: (url: string) => string }> {
    return new Promise((resolve) => {
      let done = false;
      const finish = (v: { ok: true; body: string } | { ok: false; tls: boolean; error: (url: string) => string }) => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve(v);
      };
      const req = httpsRequest({
        host: ep.host, port: ep.port, path, method: 'GET',
        agent: this.transport.agentFor(ep, tls, insecure),
        headers: { Accept: 'application/json', ...authProxyHeaders(AGGREGATOR_USER) },
      }, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          // A discovery document is small; a backend streaming without end must not fill memory.
          if (size > 8 * 1024 * 1024) { req.destroy(); finish({ ok: false, tls: false, error: () => 'discovery document too large' }); return; }
          chunks.push(c);
        });
        res.on('end', () => {
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) finish({ ok: true, body: Buffer.concat(chunks).toString('utf8') });
          else finish({ ok: false, tls: false, error: (url) => `bad status from ${url}: ${status}` });
        });
        res.on('error', (e) => finish({ ok: false, tls: false, error: (url) => `Get "${url}": ${e.message}` }));
      });
      const timer = setTimeout(() => {
        req.destroy();
        finish({ ok: false, tls: false, error: (url) => `Get "${url}": context deadline exceeded (Client.Timeout exceeded while awaiting headers)` });
      }, CHECK_TIMEOUT_MS);
      req.on('error', (e: NodeJS.ErrnoException) => {
        const isTls = /certificate|self.signed|unable to verify|altnames|Hostname\/IP/i.test(e.message) || String(e.code ?? '').startsWith('ERR_TLS') || /CERT|SELF_SIGNED/.test(String(e.code ?? ''));
        finish({ ok: false, tls: isTls, error: (url) => `Get "${url}": ${isTls ? `tls: failed to verify certificate: ${e.message}` : e.message}` });
      });
      req.end();
    });
  }

  /** Drops what is cached for an APIService that is gone or became Local. */
  forget(name: string): void {
    this.discovery.remove(name);
    this.openapi.delete(name);
  }

  close(): void { this.transport.closeAll(); }
}
