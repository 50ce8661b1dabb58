// Calls one admission webhook: POSTs the AdmissionReview over HTTPS, verified against the
// webhook's caBundle (the server's CA when absent), with the webhook's timeout, through a bounded
// pool so a slow webhook cannot tie up unbounded sockets. `url` clients go where they say; `service`
// clients go to a ready endpoint of the Service (EndpointSlices in the watch cache), verifying the
// certificate for `<service>.<namespace>.svc` as kube-apiserver does.
//
// An endpoint pod on a node with a connected tunnel is reached through that tunnel (its `dial` op,
// k3s's egress selector), so nodes behind NAT serve webhooks; other endpoints (and `url` clients) are
// dialled directly from the server.
import { request as httpsRequest, Agent, type RequestOptions } from 'node:https';
import { checkServerIdentity, connect as tlsConnect } from 'node:tls';
import type { Duplex } from 'node:stream';
import type { Store } from '../../storage/types.js';

export interface WebhookClientConfig {
  url?: string;
  service?: { namespace: string; name: string; path?: string; port?: number };
  caBundle?: string;
}

export interface CallTarget {
  /** The URL as Kubernetes prints it in errors (with `?timeout=`). */
  display: string;
  host: string;
  port: number;
  path: string;
  servername: string;
  /** The node running the endpoint pod (service clients), for the tunnel. */
  node?: string;
}

/** Opens a byte stream to host:port through `node`'s tunnel; undefined when that node has none. */
export type Dialer = (node: string, host: string, port: number) => Promise<Duplex> | undefined;

/** Error whose message is already in Kubernetes' words after `failed calling webhook "x": `. */
export class WebhookCallError extends Error {}

/** Resolves where a webhook is served. */
export function resolveTarget(store: Store, cfg: WebhookClientConfig, timeoutSeconds: number): CallTarget {
  const q = `?timeout=${timeoutSeconds}s`;
  if (cfg.url) {
    let u: URL;
    try { u = new URL(cfg.url); } catch { throw new WebhookCallError(`failed to call webhook: invalid url "${cfg.url}"`); }
    const path = (u.pathname || '/') + (u.search ? u.search + '&' + q.slice(1) : q);
    return { display: `${u.origin}${path}`, host: u.hostname.replace(/^\[|\]$/g, ''), port: Number(u.port || 443), path, servername: u.hostname };
  }
  const s = cfg.service;
  if (!s) throw new WebhookCallError('failed to call webhook: neither url nor service is set');
  const svcPort = s.port ?? 443;
  const path = (s.path || '/') + q;
  const display = `https://${s.name}.${s.namespace}.svc:${svcPort}${path}`;
  const svc = store.get(`/core/services/${s.namespace}/${s.name}`)?.obj;
  if (!svc) throw new WebhookCallError(`failed to call webhook: service "${s.namespace}/${s.name}" not found`);
  const port = (svc.spec?.ports ?? []).find((p: any) => p.port === svcPort);
  if (!port) throw new WebhookCallError(`failed to call webhook: service "${s.namespace}/${s.name}" has no port ${svcPort}`);
  const endpoint = readyEndpoint(store, s.namespace, s.name, port);
  if (!endpoint) throw new WebhookCallError(`failed to call webhook: Post "${display}": no endpoints available for service "${s.name}"`);
  return { display, host: endpoint.ip, port: endpoint.port, path, servername: `${s.name}.${s.namespace}.svc`, node: endpoint.node };
}

let rotate = 0;
/** A ready endpoint of the Service port, rotating among them (also API aggregation's backend choice). */
export function readyEndpoint(store: Store, ns: string, name: string, svcPort: any): { ip: string; port: number; node?: string } | undefined {
  const candidates: { ip: string; port: number; node?: string }[] = [];
  for (const o of store.list(`/discovery.k8s.io/endpointslices/${ns}/`).items) {
    const slice = o.obj;
    if (slice.metadata?.labels?.['kubernetes.io/service-name'] !== name) continue;
    const p = (slice.ports ?? []).find((x: any) => (x.name ?? '') === (svcPort.name ?? ''));
    const num = p?.port ?? (typeof svcPort.targetPort === 'number' ? svcPort.targetPort : undefined);
    if (!num) continue;
    for (const e of slice.endpoints ?? []) {
      if (e.conditions?.ready === false) continue;
      for (const ip of e.addresses ?? []) candidates.push({ ip, port: num, node: e.nodeName });
    }
  }
  if (!candidates.length) return undefined;
  return candidates[rotate++ % candidates.length];
}

/** A semaphore: at most `max` calls in flight, the rest wait in order. */
export class CallPool {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  constructor(readonly max = 64, readonly maxQueue = 1024) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.max) {
      if (this.waiting.length >= this.maxQueue) throw new WebhookCallError('failed to call webhook: too many concurrent webhook calls');
      await new Promise<void>((r) => this.waiting.push(r));
    }
    this.active++;
    try { return await fn(); } finally {
      this.active--;
      this.waiting.shift()?.();
    }
  }
}

// Keep-alive agents per CA bundle: the handshake is most of a loopback call's cost.
const agents = new Map<string, Agent>();
function agentFor(ca: string): Agent {
  let a = agents.get(ca);
  if (!a) {
    // No CA at all: the system roots, as kube-apiserver does for a webhook without caBundle.
    a = new Agent({ keepAlive: true, maxSockets: 32, ...(ca ? { ca } : {}) });
    if (agents.size > 100) agents.clear();
    agents.set(ca, a);
  }
  return a;
}

/** POSTs `body` and returns the parsed JSON answer; errors are WebhookCallErrors in Kubernetes' words. */
export function postReview(target: CallTarget, caPem: string, body: unknown, timeoutMs: number, dialer?: Dialer): Promise<unknown> {
  const payload = Buffer.from(JSON.stringify(body));
  const servername = /^[\d.]+$|:/.test(target.servername) ? undefined : target.servername;
  // Verified against the name kube-apiserver would use (the service DNS name or the URL's host).
  const verify = (_h: string, cert: import('node:tls').PeerCertificate) => checkServerIdentity(target.servername, cert);
  const tunnel = target.node && dialer ? dialer(target.node, target.host, target.port) : undefined;
  tunnel?.catch(() => { /* reported through the request's error */ });
  return new Promise((resolve, reject) => {
    const fail = (why: string) => reject(new WebhookCallError(`failed to call webhook: Post "${target.display}": ${why}`));
    const options: RequestOptions = {
      host: target.host, port: target.port, path: target.path, method: 'POST',
      servername, checkServerIdentity: verify,
      // No agent with a tunnel: Node then opens the connection with createConnection below.
      ...(tunnel ? {} : { agent: agentFor(caPem) }),
      headers: { 'content-type': 'application/json', accept: 'application/json', 'content-length': payload.length },
    };
    if (tunnel) {
      // TLS inside the tunnel stream: the node only relays bytes, the server verifies the webhook.
      (options as { createConnection?: unknown }).createConnection = (_o: unknown, cb: (err: Error | null, s?: Duplex) => void) => {
        tunnel.then((raw) => cb(null, tlsConnect({ socket: raw, ca: caPem || undefined, servername, checkServerIdentity: verify })), (e: Error) => cb(e));
        return undefined;
      };
    }
    const req = httpsRequest(options, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString();
        if ((res.statusCode ?? 0) < 200 || (res.statusCode ?? 0) >= 300) {
          return reject(new WebhookCallError(`failed to call webhook: the server responded with the status code ${res.statusCode} but did not return more information (post ${target.display})`));
        }
        try { resolve(JSON.parse(text)); } catch { reject(new WebhookCallError('received invalid webhook response: invalid character in JSON body')); }
      });
      res.on('error', (e) => { clearTimeout(timer); fail(e.message); });
    });
    const timer = setTimeout(() => { req.destroy(); fail('context deadline exceeded'); }, timeoutMs);
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      if (e.code === 'ECONNREFUSED') return fail(`dial tcp ${target.host}:${target.port}: connect: connection refused`);
      if (/certificate|self.signed|unable to verify|altnames/i.test(e.message)) return fail(`tls: failed to verify certificate: ${e.message}`);
      fail(e.message);
    });
    req.end(payload);
  });
}
