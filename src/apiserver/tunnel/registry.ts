// The server end of the agent tunnels: accepts each node's WebSocket at /v1-skiff/connect, proves
// who it is from its client certificate, and keeps one live tunnel per node name. Streams for a pod
// are only ever opened on the tunnel of the pod's own node, so a node can reach nothing but the
// streams the server chose to send it.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocketServer } from 'ws';
import type { UserInfo } from '../authn.js';
import { ApiError, errors } from '../../api/status.js';
import { NODES_GROUP } from '../node-authorizer.js';
import { logger } from '../../util/log.js';
import { TunnelMux, TunnelStream, TunnelStreamError } from '../../tunnel/mux.js';
import { CONNECT_PATH, NODE_NAME_HEADER, type StreamRequest } from '../../tunnel/protocol.js';
import { upgradeHead } from './upgrade.js';
import { RELAY_GROUP, RELAY_PATH, relayedMux, type TunnelRelay } from './relay.js';

const log = logger('tunnel');
const NODE_PREFIX = 'system:node:';
/** k3s pings its tunnels every few seconds; a half-open tunnel must not hide a node for minutes. */
const HEARTBEAT_MS = 15_000;
const MAX_FRAME_BYTES = 1024 * 1024;

export class TunnelServer {
  private readonly tunnels = new Map<string, TunnelMux>();
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: MAX_FRAME_BYTES });
  private relay: TunnelRelay | undefined;

  /** With several servers: records which server holds each tunnel, and relays to the holder. */
  useRelay(relay: TunnelRelay): void {
    this.relay = relay;
  }

  /**
   * The `extraRoutes` hook: serves the connect path (an upgrade from an agent), returns false for
   * any other path. Throws ApiErrors for refused connections (the server answers them as Statuses).
   */
  handleConnect(req: IncomingMessage, _res: ServerResponse, user: UserInfo | null): boolean {
    const path = (req.url ?? '').split('?')[0];
    if (path === RELAY_PATH) return this.handleRelay(req, user);
    if (path !== CONNECT_PATH) return false;
    if (!user) throw errors.unauthorized();
    const node = nodeNameOf(user);
    if (!node) throw new ApiError(403, 'Forbidden', `forbidden: User "${user.name}" is not a node; only node credentials (group ${NODES_GROUP}) may connect a tunnel`);
    const claimed = req.headers[NODE_NAME_HEADER];
    if (claimed !== undefined && claimed !== node) {
      throw new ApiError(403, 'Forbidden', `forbidden: node "${node}" cannot connect a tunnel as node "${String(claimed)}"`);
    }
    const head = upgradeHead(req);
    if (!head || String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') {
      throw errors.badRequest(`${CONNECT_PATH} needs a WebSocket upgrade`);
    }
    this.wss.handleUpgrade(req, req.socket, head, (ws) => this.register(node, new TunnelMux(ws, { heartbeatMs: HEARTBEAT_MS })));
    return true;
  }

  /** Another server's relay for one node: its streams are opened on this server's tunnel to the node. */
  private handleRelay(req: IncomingMessage, user: UserInfo | null): boolean {
    if (!user) throw errors.unauthorized();
    if (!user.groups.includes(RELAY_GROUP)) throw new ApiError(403, 'Forbidden', `forbidden: User "${user.name}" cannot relay tunnel streams; only servers may`);
    const node = new URL(req.url ?? '/', 'https://x').searchParams.get('node');
    if (!node) throw errors.badRequest(`${RELAY_PATH} needs ?node=<name>`);
    const head = upgradeHead(req);
    if (!head || String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') throw errors.badRequest(`${RELAY_PATH} needs a WebSocket upgrade`);
    this.wss.handleUpgrade(req, req.socket, head, (ws) => {
      const mux = relayedMux(ws, node, (n, r) => this.openLocal(n, r));
      mux.on('protocolError', (err: Error) => log.warn({ node, err: err.message }, 'relay protocol error'));
    });
    return true;
  }

  private register(node: string, mux: TunnelMux): void {
    // A reconnecting agent replaces its old tunnel, which may be a dead path the agent gave up on.
    const old = this.tunnels.get(node);
    this.tunnels.set(node, mux);
    old?.close();
    mux.on('protocolError', (err: Error) => log.warn({ node, err: err.message }, 'tunnel protocol error'));
    mux.once('close', () => {
      if (this.tunnels.get(node) === mux) {
        this.tunnels.delete(node);
        void this.relay?.release(node);
      }
      log.info({ node }, 'tunnel disconnected');
    });
    log.info({ node }, 'tunnel connected');
    void this.relay?.claim(node, () => this.tunnels.get(node) === mux && mux.isOpen);
  }

  /** Whether streams to `node` can be opened: its tunnel is here, or another server holds it. */
  isConnected(node: string): boolean {
    return (this.tunnels.get(node)?.isOpen ?? false) || this.relay?.holderOf(node) !== undefined;
  }

  nodes(): string[] {
    return [...this.tunnels.keys()];
  }

  /**
   * Opens a stream to `node`'s agent; the agent's refusal becomes an ApiError with its status code
   * (e.g. 400 for a container that is gone), a missing tunnel a 502 as a kubelet that cannot be dialled.
   */
  async open(node: string, req: StreamRequest): Promise<TunnelStream> {
    const holder = this.tunnels.get(node)?.isOpen ? undefined : this.relay?.holderOf(node);
    if (holder) return this.relay!.open(holder, node, req);
    return this.openLocal(node, req);
  }

  /** A stream on this server's own tunnel to `node` (a relayed request must never be relayed again). */
  private async openLocal(node: string, req: StreamRequest): Promise<TunnelStream> {
    const mux = this.tunnels.get(node);
    // Worded as Kubernetes words an unreachable kubelet ("error dialing backend: ..."), same code.
    if (!mux?.isOpen) throw new ApiError(500, 'InternalError', `error dialing backend: node "${node}" has no connected agent tunnel`);
    try {
      return await mux.open(req);
    } catch (err) {
      if (err instanceof TunnelStreamError) throw new ApiError(err.code, reasonFor(err.code), err.message);
      throw err;
    }
  }

  /** Closes every tunnel (server shutdown). */
  close(): void {
    for (const mux of this.tunnels.values()) mux.close(true);
    this.tunnels.clear();
    this.relay?.close();
    this.wss.close();
  }
}

function nodeNameOf(user: UserInfo): string | undefined {
  if (!user.groups.includes(NODES_GROUP) || !user.name.startsWith(NODE_PREFIX)) return undefined;
  const name = user.name.slice(NODE_PREFIX.length);
  return name || undefined;
}

const REASONS: Record<number, string> = { 400: 'BadRequest', 403: 'Forbidden', 404: 'NotFound', 504: 'Timeout' };

function reasonFor(code: number): string {
  return REASONS[code] ?? 'InternalError';
}

/** Joins a client's upgraded socket to a tunnel stream, and tears both down together. */
export function splice(socket: Duplex, stream: TunnelStream, head?: Buffer): void {
  if (head?.length) stream.write(head);
  socket.pipe(stream);
  stream.pipe(socket);
  const done = () => { socket.destroy(); stream.destroy(); };
  socket.once('close', done);
  stream.once('close', done);
  socket.on('error', done);
}
