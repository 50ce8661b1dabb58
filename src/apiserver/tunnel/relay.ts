// With several servers, a node's tunnel is held by one of them: the one its agent's load balancer
// reached. The holder records itself in a Lease (`kube-system/skiff-tunnel-<node>`, holderIdentity:
// its own https URL), which every server reads from its watch cache. A server asked for a stream to a node
// whose tunnel it does not hold (logs, exec, port-forward, node proxy, webhook dials) relays it: it
// opens a WebSocket to the holder's relay path with its own client certificate (system:masters,
// which no CSR can obtain) and speaks the tunnel protocol on it, so the holder opens the same
// request on its tunnel and splices the two streams. The caller was authorized on the first server
// as for a local tunnel; the holder only checks that the caller is a server.
import WebSocket from 'ws';
import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { BUILTIN_KINDS } from '../../api/kinds.js';
import { ApiError } from '../../api/status.js';
import type { ObjectService } from '../objects.js';
import { TunnelMux, TunnelStream, TunnelStreamError } from '../../tunnel/mux.js';
import type { StreamRequest } from '../../tunnel/protocol.js';
import { logger } from '../../util/log.js';
import { microTime } from '../../util/time.js';

const log = logger('tunnel-relay');

export const RELAY_PATH = '/v1-skiff/tunnel-relay';
export const TUNNEL_LEASE_NAMESPACE = 'kube-system';
export const TUNNEL_LEASE_PREFIX = 'skiff-tunnel-';
/** Who may relay: the servers' own certificates (and nothing a CSR can be signed for). */
export const RELAY_GROUP = 'system:masters';

const NODE = BUILTIN_KINDS.find((k) => k.group === '' && k.plural === 'nodes')!;
const LEASE = BUILTIN_KINDS.find((k) => k.group === 'coordination.k8s.io' && k.plural === 'leases')!;
const ACTOR = { user: 'system:apiserver', groups: ['system:masters'], manager: 'skiff-tunnel' };
const HEARTBEAT_MS = 15_000;
const HANDSHAKE_TIMEOUT_MS = 10_000;
const MAX_FRAME_BYTES = 1024 * 1024;
const LINK_IDLE_MS = 60_000;
const CLAIM_RETRY_MS = 500;
const CLAIM_RETRY_MAX_MS = 10_000;

/**
 * Where the holder of each node's tunnel is recorded. `update`'s `next` returns the new value, null
 * to remove it, undefined to leave it as it is.
 */
export interface TunnelHolders {
  get(node: string): string | undefined;
  update(node: string, next: (current: string | undefined) => string | null | undefined): Promise<void>;
}

/** The Lease recording who holds `node`'s tunnel (a long node name is hashed to stay a valid name). */
export function tunnelLeaseName(node: string): string {
  const name = `${TUNNEL_LEASE_PREFIX}${node}`;
  return name.length <= 253 ? name : `${TUNNEL_LEASE_PREFIX}${createHash('sha256').update(node).digest('hex').slice(0, 40)}`;
}

/**
 * The record as a Lease per node in kube-system (`holderIdentity`: the holder's URL), read from the
 * watch cache. Nodes may write no Lease there (only their own in kube-node-lease), so a compromised
 * node cannot point the servers' relays at an address of its choosing. The Node owns the Lease, so
 * the garbage collector removes it with the Node.
 */
export function leaseHolders(objects: ObjectService): TunnelHolders {
  const read = (node: string): unknown => {
    try {
      return objects.get(LEASE, TUNNEL_LEASE_NAMESPACE, tunnelLeaseName(node)).obj.spec?.holderIdentity;
    } catch {
      return undefined;
    }
  };
  return {
    get: (node) => {
      const v = read(node);
      return typeof v === 'string' && v ? v : undefined;
    },
    update: async (node, next) => {
      const cur = read(node);
      if (next(typeof cur === 'string' && cur ? cur : undefined) === undefined) return;
      const owner = objects.get(NODE, undefined, node).obj;
      await objects.update(LEASE, TUNNEL_LEASE_NAMESPACE, tunnelLeaseName(node), (current) => {
        const held = current?.obj.spec?.holderIdentity;
        const v = next(typeof held === 'string' && held ? held : undefined);
        const now = microTime(new Date());
        const lease = current ? structuredClone(current.obj) as Record<string, any> : {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
          metadata: {
            name: tunnelLeaseName(node), namespace: TUNNEL_LEASE_NAMESPACE,
            ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: node, uid: owner.metadata.uid }],
          },
          spec: {},
        };
        delete lease.metadata.resourceVersion;
        lease.spec ??= {};
        if (v === null) delete lease.spec.holderIdentity;
        else if (v !== undefined) {
          lease.spec.holderIdentity = v;
          lease.spec.acquireTime = now;
        }
        lease.spec.renewTime = now;
        return lease;
      }, { actor: ACTOR, allowCreate: true });
    },
  };
}

export interface RelayOptions {
  holders: TunnelHolders;
  /** This server's own base URL as other servers reach it (`https://<advertise-address>:<port>`). */
  self: string;
  /** The cluster's serving CA, and this server's client certificate and key. */
  caPem: string;
  certPem: string;
  keyPem: string;
}

export class TunnelRelay {
  /** One relay connection per holder and node, shared by that node's streams. */
  private readonly links = new Map<string, Promise<TunnelMux>>();
  private readonly idle = new WeakMap<TunnelMux, NodeJS.Timeout>();

  constructor(private readonly o: RelayOptions) {}

  get self(): string {
    return this.o.self;
  }

  /** The server holding `node`'s tunnel, when it is another one. */
  holderOf(node: string): string | undefined {
    const holder = this.o.holders.get(node);
    return holder && holder !== this.o.self ? holder : undefined;
  }

  /**
   * Records this server as the holder of `node`'s tunnel (its agent just connected here), retrying
   * while `held()`: a failover is exactly when the datastore may be electing a new leader, and a
   * record left pointing at the dead server would send every relay there.
   */
  async claim(node: string, held: () => boolean = () => true): Promise<void> {
    let delay = CLAIM_RETRY_MS;
    while (held()) {
      try {
        await this.o.holders.update(node, (cur) => (cur === this.o.self ? undefined : this.o.self));
        return;
      } catch (err) {
        log.debug({ node, retryMs: delay, err: err instanceof Error ? err.message : String(err) }, 'tunnel holder not recorded yet');
      }
      await new Promise((r) => setTimeout(r, delay).unref());
      delay = Math.min(delay * 2, CLAIM_RETRY_MAX_MS);
    }
  }

  /** Clears the record when it is still this server's (a newer holder's is left alone). */
  async release(node: string): Promise<void> {
    await this.record(node, (cur) => (cur === this.o.self ? null : undefined));
  }

  private async record(node: string, next: (current: string | undefined) => string | null | undefined): Promise<void> {
    try {
      await this.o.holders.update(node, next);
    } catch (err) {
      // Nothing here may fail the tunnel; a stale record is replaced by the next holder's claim.
      log.debug({ node, err: err instanceof Error ? err.message : String(err) }, 'tunnel holder record not cleared');
    }
  }

  /** Opens `req` on `node`'s tunnel through the server `holder`. */
  async open(holder: string, node: string, req: StreamRequest): Promise<TunnelStream> {
    let mux: TunnelMux;
    try {
      mux = await this.link(holder, node);
    } catch (err) {
      throw new ApiError(500, 'InternalError', `error dialing backend: node "${node}" is connected to server ${holder}, which cannot be reached: ${(err as Error).message}`);
    }
    try {
      const stream = await mux.open(req);
      stream.once('close', () => this.closeWhenIdle(mux));
      return stream;
    } catch (err) {
      this.closeWhenIdle(mux);
      if (err instanceof TunnelStreamError) throw new ApiError(err.code, err.code === 404 ? 'NotFound' : err.code === 400 ? 'BadRequest' : 'InternalError', err.message);
      throw err;
    }
  }

  /** A link whose last stream closed is kept a while for the next one (kubectl often comes back), then closed. */
  private closeWhenIdle(mux: TunnelMux): void {
    if (mux.activeStreams > 0) return;
    clearTimeout(this.idle.get(mux));
    const timer = setTimeout(() => {
      this.idle.delete(mux);
      if (mux.activeStreams === 0) mux.close();
    }, LINK_IDLE_MS);
    timer.unref();
    this.idle.set(mux, timer);
  }

  private link(holder: string, node: string): Promise<TunnelMux> {
    const key = `${holder} ${node}`;
    const existing = this.links.get(key);
    if (existing) return existing;
    const p = this.dial(holder, node);
    this.links.set(key, p);
    p.then((mux) => mux.once('close', () => { if (this.links.get(key) === p) this.links.delete(key); }),
      () => { if (this.links.get(key) === p) this.links.delete(key); });
    return p;
  }

  private dial(holder: string, node: string): Promise<TunnelMux> {
    const url = new URL(RELAY_PATH, holder);
    url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
    url.searchParams.set('node', node);
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, {
        ca: this.o.caPem, cert: this.o.certPem, key: this.o.keyPem,
        handshakeTimeout: HANDSHAKE_TIMEOUT_MS, maxPayload: MAX_FRAME_BYTES, perMessageDeflate: false,
      });
      ws.once('unexpected-response', (_req, res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => { body += d; });
        res.on('end', () => { ws.terminate(); reject(new Error(`HTTP ${res.statusCode}: ${messageOf(body)}`)); });
      });
      ws.once('open', () => {
        log.info({ holder, node }, 'relaying to the server holding the tunnel');
        resolve(new TunnelMux(ws, { heartbeatMs: HEARTBEAT_MS }));
      });
      ws.once('error', reject);
    });
  }

  /** Closes every relay connection (server shutdown). */
  close(): void {
    for (const p of this.links.values()) p.then((m) => m.close(true), () => undefined);
    this.links.clear();
  }
}

/**
 * The holder's side: a relay connection for `node` whose every stream is opened on the local tunnel
 * (`openLocal`, never relayed again) and spliced to it.
 */
export function relayedMux(ws: WebSocket, node: string, openLocal: (node: string, req: StreamRequest) => Promise<TunnelStream>): TunnelMux {
  return new TunnelMux(ws, {
    heartbeatMs: HEARTBEAT_MS,
    onOpen: (req, relayed) => {
      openLocal(node, req).then((local) => {
        if (relayed.destroyed) { local.destroy(); return; }
        relayed.accept();
        bridge(local, relayed);
      }, (err: unknown) => {
        const code = err instanceof ApiError ? err.code : err instanceof TunnelStreamError ? err.code : 502;
        relayed.reject({ code, message: err instanceof Error ? err.message : String(err) });
      });
    },
  });
}

/**
 * Joins two tunnel streams: bytes and half-closes both ways, a reset passed on with its reason, and
 * a stream that closes after its end only closes the other once that one sent what it holds.
 */
export function bridge(a: Duplex, b: Duplex): void {
  a.pipe(b);
  b.pipe(a);
  const follow = (from: Duplex, to: Duplex) => {
    from.once('error', (err) => { if (!to.destroyed) to.destroy(err); });
    from.once('close', () => {
      if (to.destroyed) return;
      if (to.writableEnded && !to.writableFinished) to.once('finish', () => to.destroy());
      else to.destroy();
    });
  };
  follow(a, b);
  follow(b, a);
}

function messageOf(body: string): string {
  try {
    return JSON.parse(body).message ?? body.slice(0, 200);
  } catch {
    return body.slice(0, 200);
  }
}
