// port-forward for clients that tunnel SPDY through a WebSocket (kubectl ≥ 1.30's first choice,
// subprotocol `SPDY/3.1+portforward.k8s.io`), as kube-apiserver's tunnelling handler serves it: the
// client speaks SPDY port-forwarding end to end with the runtime, and the server only moves the
// bytes between WebSocket binary messages and the runtime's upgraded SPDY connection. What the
// server does itself is the upgrade on each side: SPDY toward the runtime, WebSocket toward the
// client, with the protocol the runtime chose reported back under the tunnelling prefix.
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import { logger } from '../../util/log.js';
import type { TunnelStream } from '../../tunnel/mux.js';
import { awaitRuntimeUpgrade, PROTOCOL_VERSION_HEADER } from './runtime-spdy.js';
import { relayBackpressure } from './ws-relay.js';

const log = logger('portforward-ws');

const TUNNEL_PREFIX = 'SPDY/3.1+';
const K8S_SUFFIX = '.k8s.io';

/** The protocols chosen per request, added to the handshake's response headers below. */
const chosen = new WeakMap<IncomingMessage, string>();

const wss = new WebSocketServer({ noServer: true, maxPayload: 16 * 1024 * 1024 });
wss.on('headers', (headers: string[], req: IncomingMessage) => {
  const p = chosen.get(req);
  if (p) headers.push(`Sec-WebSocket-Protocol: ${p}`);
});

/** The SPDY protocols a WebSocket upgrade offers to tunnel (`SPDY/3.1+X.k8s.io` → `X.k8s.io`). */
export function tunnelledSpdyProtocols(req: IncomingMessage): string[] {
  if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return [];
  return String(req.headers['sec-websocket-protocol'] ?? '').split(',').map((p) => p.trim())
    .filter((p) => p.startsWith(TUNNEL_PREFIX) && p.endsWith(K8S_SUFFIX))
    .map((p) => p.slice(TUNNEL_PREFIX.length));
}

/**
 * Serves one tunnelled session: `upstream` is a tunnel stream on which the agent replayed a SPDY
 * upgrade to the runtime's port-forward URL. Throws (before the client's upgrade is accepted) if
 * the runtime refuses it.
 */
export async function servePortForwardTunnel(req: IncomingMessage, head: Buffer, upstream: TunnelStream): Promise<void> {
  const answer = await awaitRuntimeUpgrade(upstream);
  const protocol = answer.headers[PROTOCOL_VERSION_HEADER.toLowerCase()];
  if (protocol) chosen.set(req, TUNNEL_PREFIX + protocol);
  // `ws` refuses `/` and `+` in subprotocol tokens, which these names contain: it must not see the
  // offer, and the answer is added as a plain header ('headers' above).
  delete req.headers['sec-websocket-protocol'];
  const ws = await new Promise<WebSocket>((resolve) => wss.handleUpgrade(req, req.socket, head, resolve));
  log.debug({ url: req.url, protocol }, 'port-forward tunnelled through WebSocket');

  const relay = relayBackpressure(ws, upstream);
  upstream.on('data', (d: Buffer) => relay.send(d));
  upstream.resume();
  ws.on('message', (data: RawData) => {
    upstream.write(Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data));
  });
  upstream.once('end', () => ws.close(1000));
  upstream.once('close', () => ws.close(1000));
  ws.once('close', () => upstream.destroy());
}
