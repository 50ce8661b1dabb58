// exec/attach for WebSocket clients speaking v5.channel.k8s.io (kubectl ≥ 1.30's first choice),
// translated by the API server, as kube-apiserver's stream translator does, to the SPDY protocol
// v4.channel.k8s.io that the container runtime serves. Each WebSocket message is one channel byte
// and data: 0 stdin, 1 stdout, 2 stderr, 3 error (a Status, last), 4 resize (JSON sizes); v5 adds
// [255, channel], which closes that channel's client-to-server direction (stdin EOF). On the SPDY
// side each channel is a stream named by its `streamType` header.
import type { IncomingMessage } from 'node:http';
import { WebSocketServer, type WebSocket, type RawData } from 'ws';
import type { SpdyStream } from 'spdy-transport';
import { logger } from '../../util/log.js';
import type { TunnelStream } from '../../tunnel/mux.js';
import { awaitRuntimeUpgrade, SpdySession } from './runtime-spdy.js';
import { relayBackpressure } from './ws-relay.js';

const log = logger('exec-v5');

export const V5_PROTOCOL = 'v5.channel.k8s.io';
/** What the runtime is asked for: the last SPDY remotecommand version, the one v5 extends. */
export const V4_PROTOCOL = 'v4.channel.k8s.io';

/** How long a status may trail the tunnel stream's close (frames still in the SPDY parser). */
const STATUS_GRACE_MS = 2000;

const Channel = { Stdin: 0, Stdout: 1, Stderr: 2, Error: 3, Resize: 4, Close: 255 } as const;

/** The channels the client asked for; the runtime expects exactly these streams. */
export interface ExecChannels {
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

const wss = new WebSocketServer({
  noServer: true,
  maxPayload: 16 * 1024 * 1024,
  handleProtocols: (protocols) => (protocols.has(V5_PROTOCOL) ? V5_PROTOCOL : false),
});

/** Whether the request is a WebSocket upgrade that offers v5. */
export function offersV5(req: IncomingMessage): boolean {
  if (String(req.headers.upgrade ?? '').toLowerCase() !== 'websocket') return false;
  return String(req.headers['sec-websocket-protocol'] ?? '').split(',').some((p) => p.trim() === V5_PROTOCOL);
}

/**
 * Serves one translated session: `upstream` is a tunnel stream on which the agent replayed a SPDY
 * upgrade (see spdyUpgradeHead) to the runtime's exec/attach URL. Throws (before the client's
 * upgrade is accepted) if the runtime refuses it.
 */
export async function serveExecV5(req: IncomingMessage, head: Buffer, upstream: TunnelStream, ch: ExecChannels): Promise<void> {
  await awaitRuntimeUpgrade(upstream);
  const spdy = new SpdySession(upstream);
  // Created at once, in client-go's order; the runtime waits (up to its stream creation timeout)
  // until every stream it expects is there.
  const error = spdy.open({ streamtype: 'error' });
  const stdin = ch.stdin ? spdy.open({ streamtype: 'stdin' }) : undefined;
  const stdout = ch.stdout ? spdy.open({ streamtype: 'stdout' }) : undefined;
  const stderr = ch.stderr && !ch.tty ? spdy.open({ streamtype: 'stderr' }) : undefined;
  const resize = ch.tty ? spdy.open({ streamtype: 'resize' }) : undefined;

  const ws = await new Promise<WebSocket>((resolve) => wss.handleUpgrade(req, req.socket, head, resolve));
  log.debug({ url: req.url }, 'exec session translated from WebSocket v5 to SPDY');
  const relay = relayBackpressure(ws, upstream);

  // The first message, on the lowest channel the server writes, tells the client the session is up.
  relay.send(Buffer.from([stdout ? Channel.Stdout : stderr ? Channel.Stderr : Channel.Error]));
  const forward = (s: SpdyStream | undefined, channel: number) =>
    s?.on('data', (d: Buffer) => relay.send(Buffer.concat([Buffer.from([channel]), d])));
  forward(stdout, Channel.Stdout);
  forward(stderr, Channel.Stderr);

  ws.on('message', (data: RawData) => {
    const msg = toBuffer(data);
    if (msg.length === 0) return;
    const channel = msg[0]!;
    if (channel === Channel.Close) {
      if (msg[1] === Channel.Stdin) stdin?.end();
      else if (msg[1] === Channel.Resize) resize?.end();
      return;
    }
    const payload = msg.subarray(1);
    if (channel === Channel.Stdin) stdin?.write(payload);
    else if (channel === Channel.Resize) resize?.write(payload);
  });

  // The runtime writes the Status after the command's output, on the same connection, so once it
  // is here all output has been read; it may or may not end the error stream after it.
  let status = Buffer.alloc(0);
  let finished = false;
  const finish = (why: string) => {
    if (finished) return;
    finished = true;
    // Output parsed in the same read as the status is emitted on later ticks.
    setImmediate(() => {
      const body = status.length ? status : Buffer.from(JSON.stringify(internalError(why)));
      relay.send(Buffer.concat([Buffer.from([Channel.Error]), body]));
      // The client closes once it has read everything; until then the tunnel stream is kept.
      ws.close(1000);
    });
  };
  error.on('data', (d: Buffer) => {
    status = Buffer.concat([status, d]);
    if (isJson(status)) finish('');
  });
  error.on('end', () => finish('the container runtime ended the session without a status'));
  // The tunnel stream closes once spdy-transport has been handed every byte, but its parser may
  // not have emitted the last frames yet (seen with 2 MB of output: the status came after 'close').
  // So the connection's end is only the answer if no status follows shortly.
  upstream.once('close', () => {
    setTimeout(() => finish('the connection to the node closed'), STATUS_GRACE_MS).unref();
  });
  ws.once('close', () => upstream.destroy());
}

function isJson(buf: Buffer): boolean {
  try {
    JSON.parse(buf.toString('utf8'));
    return true;
  } catch {
    return false;
  }
}

function internalError(message: string): object {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason: 'InternalError', code: 500 };
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}
