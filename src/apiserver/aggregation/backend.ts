// Where an aggregated APIService's requests go and the TLS connections that carry them, as
// kube-aggregator resolves them: the Service named by `spec.service`, its port `spec.service.port`
// (443 by default), one ready endpoint of it from the EndpointSlices, HTTPS verified against
// `spec.caBundle` for the name `<service>.<namespace>.svc` (or not at all with
// insecureSkipTLSVerify), the server presenting its front-proxy client certificate.
//
// An endpoint pod on a node with a connected tunnel is reached through that tunnel's `dial` op
// (k3s's egress selector), exactly as admission webhooks are: pods on other nodes, or on nodes behind
// NAT, are not routable from the server. Other endpoints are dialled directly.
import { Agent as HttpsAgent, type AgentOptions } from 'node:https';
import { checkServerIdentity, connect as tlsConnect, type ConnectionOptions, type PeerCertificate } from 'node:tls';
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import type { Store } from '../../storage/types.js';
import { readyEndpoint, type Dialer } from '../webhooks/client.js';

/** The parts of an APIService the aggregator reads. */
export interface ApiServiceObject {
  metadata: { name: string; [k: string]: unknown };
  spec?: {
    group?: string; version?: string;
    service?: { namespace?: string; name?: string; port?: number } | null;
    caBundle?: string; insecureSkipTLSVerify?: boolean;
    groupPriorityMinimum?: number; versionPriority?: number;
  };
  status?: { conditions?: { type: string; status: string; reason?: string; message?: string; lastTransitionTime?: string }[] };
}

export interface ServiceRef { namespace: string; name: string; port: number }

/** The service reference of an APIService served elsewhere, or undefined for a Local one. */
export function serviceRefOf(a: ApiServiceObject): ServiceRef | undefined {
  const s = a.spec?.service;
  if (!s || !s.name || !s.namespace) return undefined;
  return { namespace: s.namespace, name: s.name, port: s.port ?? 443 };
}

/** kube-aggregator's reasons for an APIService whose Service cannot be used (Available=False). */
export type UnavailableReason = 'ServiceNotFound' | 'ServicePortError' | 'EndpointsNotFound' | 'MissingEndpoints';

export class BackendUnavailable extends Error {
  constructor(readonly reason: UnavailableReason, message: string) { super(message); }
}

export interface Endpoint {
  host: string;
  port: number;
  /** The node running the endpoint pod (its tunnel carries the connection when connected). */
  node?: string;
}

/** One ready endpoint of the APIService's Service port; BackendUnavailable in kube-aggregator's words. */
export function resolveEndpoint(store: Store, ref: ServiceRef): Endpoint {
  const where = `service/${ref.name} in "${ref.namespace}"`;
  const svc = store.get(`/core/services/${ref.namespace}/${ref.name}`)?.obj;
  if (!svc) throw new BackendUnavailable('ServiceNotFound', `${where} is not present`);
  const port = (svc.spec?.ports ?? []).find((p: any) => p.port === ref.port);
  if (!port) throw new BackendUnavailable('ServicePortError', `${where} is not listening on port ${ref.port}`);
  const ep = readyEndpoint(store, ref.namespace, ref.name, port);
  if (ep) return { host: ep.ip, port: ep.port, node: ep.node };
  const slices = store.list(`/discovery.k8s.io/endpointslices/${ref.namespace}/`).items
    .filter((o) => o.obj.metadata?.labels?.['kubernetes.io/service-name'] === ref.name);
  if (!slices.length) throw new BackendUnavailable('EndpointsNotFound', `cannot find endpointslices for ${where}`);
  throw new BackendUnavailable('MissingEndpoints', `endpointslices for ${where} have no addresses with port name "${port.name ?? ''}"`);
}

/** How to speak TLS to one APIService's backend. */
export interface BackendTls {
  /** The name verified in the backend's certificate: `<service>.<namespace>.svc`. */
  servername: string;
  /** PEM decoded from spec.caBundle; undefined: the system roots (as kube-aggregator). */
  caPem?: string;
  insecure: boolean;
  /** Short digest of caPem: part of the connection pool's key. */
  caKey: string;
}

export function backendTls(a: ApiServiceObject, ref: ServiceRef): BackendTls {
  const ca = a.spec?.caBundle ? Buffer.from(a.spec.caBundle, 'base64').toString('utf8') : undefined;
  return {
    servername: `${ref.name}.${ref.namespace}.svc`, caPem: ca || undefined, insecure: Boolean(a.spec?.insecureSkipTLSVerify),
    caKey: ca ? createHash('sha256').update(ca).digest('hex').slice(0, 16) : '-',
  };
}

/** The front-proxy client certificate the server presents to every backend. */
export interface ProxyClientCert { certPem: string; keyPem: string }

/**
 * An https.Agent whose connections may start as a tunnel stream: Node asks `createConnection` for
 * each new socket, so keep-alive pooling works unchanged whether the bytes go through a node's
 * tunnel or straight to the pod.
 */
class BackendAgent extends HttpsAgent {
  constructor(opts: AgentOptions, private readonly ep: Endpoint, private readonly dialer: () => Dialer | undefined) {
    super(opts);
  }

  // Node calls this with the merged agent and request TLS options; returning undefined and calling
  // back later is the documented asynchronous form.
  override createConnection(options: ConnectionOptions, cb: (err: Error | null, socket?: Duplex) => void): Duplex | undefined {
    const dial = this.dialer();
    const tunnel = this.ep.node && dial ? dial(this.ep.node, this.ep.host, this.ep.port) : undefined;
    if (!tunnel) return tlsConnect(options);
    tunnel.then((raw) => {
      let s: Duplex;
      try { s = tlsConnect({ ...options, socket: raw }); } catch (e) { raw.destroy(); return cb(e as Error); }
      cb(null, s);
    }, (e: Error) => cb(e));
    return undefined;
  }
}

/** Keep-alive agents per (endpoint, TLS settings): the handshake is most of an aggregated call's cost. */
export class BackendTransport {
  private readonly agents = new Map<string, HttpsAgent>();
  private dialer: Dialer | undefined;

  constructor(private readonly cert: ProxyClientCert) {}

  useDialer(d: Dialer): void { this.dialer = d; }

  agentFor(ep: Endpoint, tls: BackendTls, insecure = tls.insecure): HttpsAgent {
    const key = `${ep.node ?? ''}|${ep.host}|${ep.port}|${tls.servername}|${insecure}|${tls.caKey}`;
    let a = this.agents.get(key);
    if (!a) {
      // Endpoints come and go (pods restart with new IPs): bound the pool rather than track each.
      if (this.agents.size >= 256) this.closeAll();
      a = new BackendAgent({
        keepAlive: true, maxSockets: 64, maxFreeSockets: 64,
        cert: this.cert.certPem, key: this.cert.keyPem, ca: tls.caPem,
        servername: tls.servername, rejectUnauthorized: !insecure,
        checkServerIdentity: (_host: string, c: PeerCertificate) => checkServerIdentity(tls.servername, c),
      }, ep, () => this.dialer);
      this.agents.set(key, a);
    }
    return a;
  }

  closeAll(): void {
    for (const a of this.agents.values()) a.destroy();
    this.agents.clear();
  }
}
