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
const send = (m: FromWorker, buffer?: ArrayBuffer) => batch.push(m, buffer);

/**
 * Connections taken while the server's thread loads its datastore (`hold`): their handshakes run
 * here meanwhile, and what each sends waits in its `held` list until the server serves. Then the
 * ones that sent nothing yet pass at once, and the rest in arrival order, health probes first, at
 * most RELEASE_WINDOW at a time not yet answered: after a restart with thousands of nodes, their
 * requests all at once would overflow the API server's priority queues (429 to most of them), where
 * handshakes had paced them before.
 */
let holding = false;
const RELEASE_WINDOW = 512;
/** Held connections with a request, waiting for a place in the window; probes go first. */
let backlog: number[] = [];
let probeBacklog: number[] = [];
let next = 0;
let nextProbe = 0;
/** Released from the backlog, their first answer not yet begun. */
let unanswered = 0;
/** A first request the API server exempts from its queues, as Kubernetes' `probes` flow schema does. */
const PROBE = /^GET \/(readyz|livez|healthz)[ ?/]/;

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
  /** Held until the server serves: its messages for the server's thread, in order. */
  held?: [FromWorker, ArrayBuffer | undefined][];
  heldRequest?: boolean;
  probe?: boolean;
  /** In the release window: released with a request not yet answered. */
  unanswered?: boolean;
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
  if (holding) c.held = [];
  connections.set(id, c);
  const to = (m: FromWorker, buffer?: ArrayBuffer) => (c.held ? c.held.push([m, buffer]) : send(m, buffer));
  to(['open', id, peerOf(socket)]);
  socket.on('data', (chunk: Buffer) => {
    if (c.held && !c.heldRequest) {
      c.heldRequest = true;
      c.probe = PROBE.test(chunk.toString('latin1', 0, 16));
    }
    // A socket's read is its own buffer, handed over as it is.
    const bytes = transferable(chunk, true);
    c.sent += bytes.byteLength;
    const inFlight = c.sent - c.acked;
    to(['data', id, bytes, inFlight > FRONT_WINDOW_BYTES / 2], bytes.buffer);
    if (inFlight > FRONT_WINDOW_BYTES && !c.paused) { c.paused = true; socket.pause(); }
  });
  socket.on('end', () => to(['end', id]));
  socket.on('drain', () => { if (c.ackOnDrain) { c.ackOnDrain = false; send(['ack', id, c.received]); } });
  socket.on('error', () => {});   // 'close' follows
  socket.on('close', () => {
    connections.delete(id);
    // Still held: the server's thread never heard of it, and need not.
    if (!c.held) send(['close', id]);
    answered(c);
  });
}

/** The server stops holding: connections without a request pass now, the others through the window. */
function serve(): void {
  holding = false;
  for (const [id, c] of connections) {
    if (!c.held) continue;
    if (!c.heldRequest) release(c);
    else (c.probe ? probeBacklog : backlog).push(id);
  }
  pump();
}

function release(c: Connection): void {
  const held = c.held ?? [];
  c.held = undefined;
  for (const [m, buffer] of held) send(m, buffer);
  if (c.heldRequest) { c.unanswered = true; unanswered++; }
}

/** A released connection got the start of its answer, or is gone: its place in the window frees. */
function answered(c: Connection): void {
  if (!c.unanswered) return;
  c.unanswered = false;
  unanswered--;
  pump();
}

function pump(): void {
  while (unanswered < RELEASE_WINDOW) {
    const id = nextProbe < probeBacklog.length ? probeBacklog[nextProbe++] : backlog[next++];
    if (id === undefined) {
      backlog = [];
      probeBacklog = [];
      next = nextProbe = 0;
      return;
    }
    const c = connections.get(id);
    if (c?.held) release(c);
  }
}

function onConnectionMessage(m: ToWorker): void {
  const c = connections.get(m[1]);
  if (!c) return;   // closed meanwhile; the server's thread hears of it
  switch (m[0]) {
    case 'data':
      answered(c);
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
      answered(c);
      // After an end, what was written is still on its way out: destroying now would cut it off.
      if (c.ended) setTimeout(() => c.socket.destroy(), FLUSH_MS).unref();
      else c.socket.destroy();
      break;
  }
}

/** Listens as asked; resolves with the port (the one the kernel picked, for port 0). */
async function listen(m: Extract<FrontControl, { op: 'listen' }>): Promise<number> {
  if (m.hold) holding = true;
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
