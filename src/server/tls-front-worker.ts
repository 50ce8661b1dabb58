// The API server's TLS, in a worker thread (tls-front.ts says why). This thread owns the listening
// socket: it accepts, runs every TLS handshake and the per-address connection limit, then passes each
// connection's plain bytes to and from the server's thread over its message port
// (tls-front-protocol.ts), each direction bounded by a window of bytes not yet acknowledged.
import type { AddressInfo } from 'node:net';
import { createServer, type SecureContextOptions, type TLSSocket } from 'node:tls';
import { parentPort, workerData } from 'node:worker_threads';
import { alpnWithoutPooledCopies, limitConnectionsPerAddress } from '../apiserver/connection-limits.js';
import { logger } from '../util/log.js';
import { AcceptHelper } from './accept-handles.js';
import { FRONT_WINDOW_BYTES, MessageBatch, transferable, type FromWorker, type FrontControl, type FrontPeer, type FrontWorkerData, type ToWorker, type WorkerControl } from './tls-front-protocol.js';

const log = logger('tls-front');
const data = workerData as FrontWorkerData;
const port = parentPort!;
const control = (m: WorkerControl) => port.postMessage(m);
const batch = new MessageBatch<FromWorker>((messages, transfer) => port.postMessage(messages, transfer), setImmediate);
/**
 * While the server's thread loads its datastore, connections are taken and their handshakes run,
 * and what they send waits here, in order, until it serves (the window still bounds each one).
 */
let held: [FromWorker, ArrayBuffer | undefined][] | undefined;
const send = (m: FromWorker, buffer?: ArrayBuffer) => {
  if (held) held.push([m, buffer]);
  else batch.push(m, buffer);
};

function serve(): void {
  const waiting = held ?? [];
  held = undefined;
  for (const [m, buffer] of waiting) batch.push(m, buffer);
}

/** How long a connection the server's thread ended may take to flush the rest to its client. */
const FLUSH_MS = 10_000;

// Started at once, as the server's own was (accept-handles.ts): it is ready when the listen comes.
const acceptHelper = data.extraAcceptHandles > 0 ? new AcceptHelper(data.extraAcceptHandles) : undefined;
let server: ReturnType<typeof createServer> | undefined;
let stopExtraAccepts = () => {};

interface Connection {
  socket: TLSSocket;
  /** The server's thread ended it: a destroy then waits for the flush. */
  ended: boolean;
  /** Client → server: bytes sent to the server's thread, and of those, acknowledged as consumed. */
  sent: number;
  acked: number;
  /** The client's socket is paused: the window is full. */
  paused: boolean;
  /** Server → client: bytes from the server's thread, all written to the client's socket. */
  received: number;
  /** An acknowledgement is owed once the client's socket drains. */
  ackOnDrain: boolean;
}
const connections = new Map<number, Connection>();
let lastId = 0;

/** What the server's thread needs of a connection's TLS: the fields skiff's handlers read. */
function peerOf(socket: TLSSocket): FrontPeer {
  const cert = socket.authorized ? socket.getPeerCertificate() : undefined;
  return {
    address: socket.remoteAddress, port: socket.remotePort, family: socket.remoteFamily,
    alpn: socket.alpnProtocol || false,
    authorized: socket.authorized,
    ...(socket.authorizationError ? { authorizationError: String(socket.authorizationError) } : {}),
    ...(cert?.subject ? {
      cert: {
        subject: cert.subject, issuer: cert.issuer, valid_from: cert.valid_from, valid_to: cert.valid_to,
        serialNumber: cert.serialNumber, fingerprint256: cert.fingerprint256,
        ...(cert.ext_key_usage ? { ext_key_usage: cert.ext_key_usage } : {}),
      },
    } : {}),
  };
}

/** A finished handshake: the connection is announced, then its bytes flow. */
function forward(socket: TLSSocket): void {
  const id = ++lastId;
  const c: Connection = { socket, ended: false, sent: 0, acked: 0, paused: false, received: 0, ackOnDrain: false };
  connections.set(id, c);
  send(['open', id, peerOf(socket)]);
  socket.on('data', (chunk: Buffer) => {
    // A socket's read is its own buffer, handed over as it is.
    const bytes = transferable(chunk, true);
    c.sent += bytes.byteLength;
    const inFlight = c.sent - c.acked;
    send(['data', id, bytes, inFlight > FRONT_WINDOW_BYTES / 2], bytes.buffer);
    if (inFlight > FRONT_WINDOW_BYTES && !c.paused) { c.paused = true; socket.pause(); }
  });
  socket.on('end', () => send(['end', id]));
  socket.on('drain', () => { if (c.ackOnDrain) { c.ackOnDrain = false; send(['ack', id, c.received]); } });
  socket.on('error', () => {});   // 'close' follows
  socket.on('close', () => { connections.delete(id); send(['close', id]); });
}

function onConnectionMessage(m: ToWorker): void {
  const c = connections.get(m[1]);
  if (!c) return;   // closed meanwhile; the server's thread hears of it
  switch (m[0]) {
    case 'data':
      c.received += m[2].byteLength;
      c.socket.write(m[2]);
      // Asked for: now if the socket took it, else once it drains (then all received so far is out).
      if (m[3]) {
        if (!c.socket.writableNeedDrain) send(['ack', m[1], c.received]);
        else c.ackOnDrain = true;
      }
      break;
    case 'ack':
      c.acked = m[2];
      if (c.paused && c.sent - c.acked <= FRONT_WINDOW_BYTES) { c.paused = false; c.socket.resume(); }
      break;
    case 'end':
      c.ended = true;
      c.socket.end();
      break;
    case 'destroy':
      // After an end, what was written is still on its way out: destroying now would cut it off.
      if (c.ended) setTimeout(() => c.socket.destroy(), FLUSH_MS).unref();
      else c.socket.destroy();
      break;
  }
}

/** Listens as asked; resolves with the port (the one the kernel picked, for port 0). */
async function listen(m: Extract<FrontControl, { op: 'listen' }>): Promise<number> {
  if (m.hold) held ??= [];
  const s = server = createServer({
    ...m.tls, requestCert: true, rejectUnauthorized: false, ALPNProtocols: ['http/1.1'],
    handshakeTimeout: m.handshakeMs,
    // As Node's HTTP servers: a watch event or a small answer goes out at once, not after an ACK.
    noDelay: true,
  }, forward);
  alpnWithoutPooledCopies(s);
  limitConnectionsPerAddress(s, m.maxConnectionsPerAddress);
  // Failed handshakes (including the handshake timeout): Node leaves the socket to this listener.
  s.on('tlsClientError', (err, socket) => { log.debug({ err: err.message }, 'TLS handshake failed'); socket.destroy(); });
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen({ port: m.port, host: m.host, backlog: m.backlog }, () => { s.off('error', reject); resolve(); });
  });
  s.on('error', (err) => log.error({ err: err.message }, 'listener failed'));
  if (acceptHelper) stopExtraAccepts = await acceptHelper.attach(s, m.backlog);
  return (s.address() as AddressInfo).port;
}

async function close(): Promise<void> {
  acceptHelper?.kill();
  stopExtraAccepts();
  const s = server;
  const closed = s?.listening ? new Promise<void>((resolve) => s.close(() => resolve())) : Promise.resolve();
  for (const c of connections.values()) c.socket.destroy();
  await closed;
}

port.on('message', (m: ToWorker[] | FrontControl) => {
  if (Array.isArray(m)) { for (const one of m) onConnectionMessage(one); return; }
  switch (m.op) {
    case 'listen':
      listen(m).then((bound) => control({ op: 'listening', port: bound }), (err: NodeJS.ErrnoException) => control({ op: 'failed', message: err.message, code: err.code }));
      break;
    case 'serve':
      serve();
      break;
    case 'secure-context':
      server?.setSecureContext(m.tls as SecureContextOptions);
      break;
    case 'close':
      void close().then(() => control({ op: 'closed' }));
      break;
  }
});
