// The ingress proxy's listeners: HTTP and HTTPS servers on the node that route each request (and
// each WebSocket upgrade) by the current routing table and hand it to http-proxy-3, which streams it
// to a pod. The table and the certificates are plain references swapped whole: a configuration change
// touches no socket, so keep-alive connections and open WebSockets carry on, and the next request on
// any connection sees the new routes.
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import tls, { type SecureContext } from 'node:tls';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { createProxyServer, type ProxyServer } from 'http-proxy-3';
import { emptyTable, normalizeHost, pickEndpoint, route, tlsSecretFor, type RouteTable } from './routes.js';
import { logger } from '../../../util/log.js';

const log = logger('ingress-proxy');

/** Traefik's answers, so clients and scripts written against k3s see the same bodies. */
const NOT_FOUND = '404 page not found\n';
const UNAVAILABLE = 'no available server\n';
const BAD_GATEWAY = 'Bad Gateway\n';
/** How long an idle client connection is kept (Traefik keeps 180 s; nginx 75 s). */
const CLIENT_IDLE_MS = 90_000;
/** A listener that cannot bind (port taken) is tried again this often. */
const BIND_RETRY_MS = 5_000;

export interface ListenSpec {
  port: number;
  /** Default: every IPv4 address of the node (so load-balancer addresses added later answer too). */
  address?: string;
}

export interface IngressProxyOptions {
  http?: ListenSpec;
  https?: ListenSpec;
  /** Presented for SNI names no Ingress has a certificate for (and for clients sending no SNI). */
  defaultCert: { certPem: string; keyPem: string };
  /** Called whenever a listener starts listening (the agent then reports the node as serving). */
  onListening?(): void;
}

export class IngressProxy {
  private table: RouteTable = emptyTable();
  /** `namespace/name` of a TLS Secret → its context. */
  private readonly contexts = new Map<string, SecureContext>();
  private readonly defaultContext: SecureContext;
  private readonly proxy: ProxyServer;
  /** Keep-alive to the pods: a request costs no new TCP handshake to its backend. */
  private readonly upstream = new http.Agent({ keepAlive: true, maxFreeSockets: 256, scheduling: 'lifo' });
  private readonly targets = new Map<string, URL>();
  private readonly servers: { server: http.Server; spec: ListenSpec; name: string; listening: boolean; timer?: NodeJS.Timeout }[] = [];
  /** Every client connection, upgraded ones included (the HTTP server forgets those), for close(). */
  private readonly sockets = new Set<Duplex>();
  private closed = false;

  constructor(private readonly o: IngressProxyOptions) {
    this.defaultContext = tls.createSecureContext({ cert: o.defaultCert.certPem, key: o.defaultCert.keyPem });
    this.proxy = createProxyServer({ ws: true, agent: this.upstream, xfwd: false });
    // Errors come with each call's callback; this listener only keeps the library from throwing.
    this.proxy.on('error', () => undefined);
    // When the client's side of a WebSocket closes, the library only half-closes the pod's side; a pod
    // that never ends its side would keep that socket forever: destroy it.
    this.proxy.on('proxyReqWs', (proxyReq: http.ClientRequest, _req: IncomingMessage, socket: Duplex) => {
      proxyReq.once('upgrade', (_res: IncomingMessage, upstream: Duplex) => { socket.once('close', () => upstream.destroy()); });
    });
    if (o.http?.port) {
      const server = http.createServer((req, res) => this.onRequest(req, res, false));
      server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head, false));
      this.add(server, o.http, 'http');
    }
    if (o.https?.port) {
      const server = https.createServer({
        cert: o.defaultCert.certPem, key: o.defaultCert.keyPem,
        SNICallback: (name, cb) => cb(null, this.contextFor(name)),
      }, (req, res) => this.onRequest(req, res, true));
      server.on('upgrade', (req, socket, head) => this.onUpgrade(req, socket, head, true));
      this.add(server, o.https, 'https');
    }
  }

  /** Swaps the routing table (atomically: one reference). */
  setTable(t: RouteTable): void {
    this.table = t;
    if (this.targets.size > 4096) this.targets.clear();
  }

  /** Installs (or, with undefined, removes) the certificate of a TLS Secret. */
  setCertificate(secret: string, ctx: SecureContext | undefined): void {
    if (ctx) this.contexts.set(secret, ctx); else this.contexts.delete(secret);
  }

  /** Which listeners listen (`http=80,https=443`), for the Node annotation. */
  listening(): string {
    return this.servers.filter((s) => s.listening).map((s) => `${s.name}=${s.spec.port}`).join(',');
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all(this.servers.map((s) => new Promise<void>((resolve) => {
      if (s.timer) clearTimeout(s.timer);
      if (!s.listening) return resolve();
      // Bounded: a connection the kernel is still tearing down must not hold the agent's stop.
      const t = setTimeout(resolve, 2_000);
      s.server.close(() => { clearTimeout(t); resolve(); });
    })).concat((() => {
      // Open WebSockets and idle keep-alive connections end with the proxy (the agent is stopping).
      for (const socket of this.sockets) socket.destroy();
      return Promise.resolve();
    })()));
    this.upstream.destroy();
  }

  private contextFor(servername: string): SecureContext {
    const secret = tlsSecretFor(this.table, servername);
    return (secret && this.contexts.get(secret)) || this.defaultContext;
  }

  private add(server: http.Server, spec: ListenSpec, name: string): void {
    server.keepAliveTimeout = CLIENT_IDLE_MS;
    // The raw TCP socket (for HTTPS too): destroying it ends whatever runs over it.
    server.on('connection', (socket: Duplex) => {
      this.sockets.add(socket);
      socket.once('close', () => this.sockets.delete(socket));
    });
    const entry: (typeof this.servers)[number] = { server, spec, name, listening: false };
    this.servers.push(entry);
    const tryListen = () => {
      if (this.closed) return;
      const onError = (err: NodeJS.ErrnoException) => {
        log.warn({ listener: name, port: spec.port, address: spec.address ?? '0.0.0.0', err: err.code ?? err.message }, 'ingress listener cannot bind; retrying');
        entry.timer = setTimeout(tryListen, BIND_RETRY_MS);
      };
      server.once('error', onError);
      server.listen(spec.port, spec.address ?? '0.0.0.0', () => {
        server.off('error', onError);
        entry.listening = true;
        log.info({ listener: name, port: spec.port, address: spec.address ?? '0.0.0.0' }, 'ingress proxy listening');
        this.o.onListening?.();
      });
    };
    tryListen();
  }

  private target(endpoint: string): URL {
    let u = this.targets.get(endpoint);
    if (!u) this.targets.set(endpoint, u = new URL(`http://${endpoint}`));
    return u;
  }

  private onRequest(req: IncomingMessage, res: ServerResponse, encrypted: boolean): void {
    const be = route(this.table, normalizeHost(req.headers.host), req.url ?? '/');
    if (!be) return reply(res, 404, NOT_FOUND);
    const endpoint = pickEndpoint(be);
    if (!endpoint) return reply(res, 503, UNAVAILABLE);
    forwardedHeaders(req, encrypted);
    this.proxy.web(req, res, { target: this.target(endpoint) }, (err) => {
      log.debug({ backend: be.key, endpoint, err: (err as Error).message }, 'backend request failed');
      if (!res.headersSent) reply(res, 502, BAD_GATEWAY); else res.destroy();
    });
  }

  private onUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer, encrypted: boolean): void {
    socket.on('error', () => undefined);
    const be = route(this.table, normalizeHost(req.headers.host), req.url ?? '/');
    const endpoint = be && pickEndpoint(be);
    if (!endpoint) return rawReply(socket, be ? 503 : 404, be ? UNAVAILABLE : NOT_FOUND);
    forwardedHeaders(req, encrypted);
    this.proxy.ws(req, socket as Socket, head, { target: this.target(endpoint) }, (err) => {
      log.debug({ backend: be!.key, endpoint, err: (err as Error).message }, 'backend upgrade failed');
      rawReply(socket, 502, BAD_GATEWAY);
    });
  }
}

/**
 * X-Forwarded-For/-Proto/-Host/-Port and X-Real-Ip as this proxy saw the request. Values a client
 * sent are replaced, not appended to: the client is not a trusted proxy (Traefik's default).
 */
function forwardedHeaders(req: IncomingMessage, encrypted: boolean): void {
  const h = req.headers;
  const ip = clientIp(req.socket.remoteAddress);
  h['x-forwarded-for'] = ip;
  h['x-real-ip'] = ip;
  h['x-forwarded-proto'] = encrypted ? 'https' : 'http';
  h['x-forwarded-host'] = h.host ?? '';
  h['x-forwarded-port'] = String(req.socket.localPort ?? '');
}

function clientIp(a: string | undefined): string {
  return a?.startsWith('::ffff:') ? a.slice(7) : a ?? '';
}

function reply(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function rawReply(socket: Duplex, status: number, body: string): void {
  if (!socket.writable) { socket.destroy(); return; }
  socket.end(`HTTP/1.1 ${status} ${http.STATUS_CODES[status]}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`);
}
