// The API server's front door: where its port is listened on and its TLS runs.
//
// Two kinds. `directFrontDoor` is Node's HTTPS server on the server's own thread. `TlsFront` moves
// the listening socket and all TLS into a worker thread, which hands each connection to the server's
// thread as plain bytes (tls-front-worker.ts). What that takes off the one
// thread that serves every request (docs/scale.md, "TLS in a worker"):
// - the handshakes: 1.3–1.6 ms of CPU each, 10,000 of them when 5,000 nodes reconnect after a restart;
// - encrypting every response and watch event, and decrypting every request;
// - the full collections of the server's large heap that V8 starts for every ~570 new TLS sockets
//   (each reports ~49 KB held outside V8's heap): those now happen in the worker's small heap.
// Bytes cross between the threads as messages on the worker's port (tls-front-protocol.ts), not
// over local sockets: those would take two more descriptors per connection, and 10,000 connections
// at three each are past the 20,000 a process may hold on machines like the one the benchmarks run on.
//
// The server's thread sees each connection as a FrontSocket (front-socket.ts): a stream that answers
// as the TLS socket it stands for, so authentication, audit and the handlers read it as before. No
// other process can reach that side: it has no address.
import type https from 'node:https';
import type http from 'node:http';
import type { Worker } from 'node:worker_threads';
import { startModuleWorker } from '../util/module-worker.js';
import type { SecureContextOptions } from 'node:tls';
import { logger } from '../util/log.js';
import type { AcceptHelper } from './accept-handles.js';
import { FrontSocket, type FrontLink } from './front-socket.js';
import { MessageBatch, type FromWorker, type FrontControl, type FrontTls, type FrontWorkerData, type ToWorker, type WorkerControl } from './tls-front-protocol.js';

const log = logger('tls-front');

export interface ListenOptions {
  port: number;
  host: string;
  backlog: number;
}

/** Where the API port is listened on and TLS is run, however that is done. */
export interface FrontDoor {
  /** Listens; resolves once the port is open (with its extra accept handles when they could be set up). */
  listen(o: ListenOptions): Promise<void>;
  /** A renewed serving certificate or client CA bundle: new connections get it, open ones keep theirs. */
  setSecureContext(tls: FrontTls): void;
  /** Stops accepting and closes every connection. */
  close(): Promise<void>;
}

/** Node's HTTPS server on this thread, with the accept helper's extra handles. */
export function directFrontDoor(server: https.Server, acceptHelper?: AcceptHelper): FrontDoor {
  let stopExtraAccepts = () => {};
  return {
    async listen(o) {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(o, () => { server.off('error', reject); resolve(); });
      });
      if (acceptHelper) stopExtraAccepts = await acceptHelper.attach(server, o.backlog);
    },
    setSecureContext: (tls) => server.setSecureContext(tls as SecureContextOptions),
    async close() {
      acceptHelper?.kill();
      stopExtraAccepts();
      await new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); });
    },
  };
}

export interface TlsFrontOptions {
  /** Descriptors of the listening socket besides the first (accept-handles.ts), 0 for none. */
  extraAcceptHandles: number;
  /** The TLS handshake must finish within this. */
  handshakeMs: number;
  maxConnectionsPerAddress: number;
}

/**
 * The TLS front: its worker starts at once (as the accept helper does, so that it is ready when the
 * server listens after loading its datastore); `serve` names the HTTP server its connections go to.
 */
export class TlsFront implements FrontDoor {
  private readonly worker: Worker;
  private readonly sockets = new Map<number, FrontSocket>();
  private readonly link: FrontLink;
  private server?: http.Server;
  private tls?: FrontTls;
  private closing = false;
  private boundPort?: number;
  private pending?: (m: WorkerControl) => void;

  constructor(private readonly o: TlsFrontOptions) {
    const workerData: FrontWorkerData = { extraAcceptHandles: o.extraAcceptHandles };
    this.worker = startModuleWorker(import.meta.url, 'tls-front-worker', { workerData });
    this.worker.unref();
    const batch = new MessageBatch<ToWorker>((messages, transfer) => this.worker.postMessage(messages, transfer), queueMicrotask);
    this.link = {
      send: (m, buffer) => batch.push(m, buffer),
      forget: (id) => this.sockets.delete(id),
    };
    this.worker.on('message', (m: FromWorker[] | WorkerControl) => {
      if (Array.isArray(m)) { for (const one of m) this.onConnectionMessage(one); return; }
      const p = this.pending;
      this.pending = undefined;
      p?.(m);
    });
    this.worker.on('error', (err) => log.error({ err: err.message }, 'TLS front failed'));
    this.worker.on('exit', (code) => {
      if (this.closing) return;
      // Nothing can reach the API server without it: end the process, as an uncaught error would,
      // so that its supervisor starts it again.
      log.error({ code }, 'TLS front exited; the server cannot take connections');
      process.exit(1);
    });
  }

  /**
   * Listens before there is a server to serve: connections are taken and their handshakes run while
   * the server's thread loads its datastore, and they wait (bytes and all) until `listen` serves
   * them. After a restart with thousands of nodes, their handshakes (1.3–1.6 ms each) then overlap
   * the load instead of following it (docs/scale.md, item 25).
   */
  async acceptEarly(o: ListenOptions, tls: FrontTls): Promise<void> {
    this.tls = tls;
    await this.bind(o, true);
  }

  /** Connections go to `server` (an HTTP server that never listens itself). */
  serve(server: http.Server, tls: FrontTls): void {
    this.server = server;
    if (this.boundPort !== undefined && tls !== this.tls) this.setSecureContext(tls);
    this.tls = tls;
  }

  /** Listens, or, after `acceptEarly`, passes on the connections it holds and every one after. */
  async listen(o: ListenOptions): Promise<void> {
    if (!this.server || !this.tls) throw new Error('TlsFront: serve() first');
    // Node starts an HTTP server's request and header timers when it listens; this one never does.
    this.server.emit('listening');
    if (this.boundPort === undefined) await this.bind(o, false);
    else this.worker.postMessage({ op: 'serve' } satisfies FrontControl);
  }

  private async bind(o: ListenOptions, hold: boolean): Promise<void> {
    const reply = await this.ask({
      op: 'listen', ...o, tls: this.tls!, handshakeMs: this.o.handshakeMs, maxConnectionsPerAddress: this.o.maxConnectionsPerAddress, hold,
    });
    if (reply.op === 'failed') throw Object.assign(new Error(reply.message), { code: reply.code });
    if (reply.op === 'listening') this.boundPort = reply.port;
  }

  /** The port listened on (the kernel's pick when asked for 0), once listening. */
  get port(): number | undefined {
    return this.boundPort;
  }

  setSecureContext(tls: FrontTls): void {
    this.tls = tls;
    this.worker.postMessage({ op: 'secure-context', tls } satisfies FrontControl);
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    await Promise.race([this.ask({ op: 'close' }), new Promise((r) => setTimeout(r, 5000).unref())]);
    await this.worker.terminate();
    for (const s of this.sockets.values()) s.remoteClosed();
    if (this.server) {
      this.server.closeAllConnections();
      this.server.close();   // stops the timers; says "not running", which it never was
    }
  }

  private ask(m: FrontControl): Promise<WorkerControl> {
    return new Promise((resolve) => { this.pending = resolve; this.worker.postMessage(m); });
  }

  private onConnectionMessage(m: FromWorker): void {
    if (m[0] === 'open') {
      const socket = new FrontSocket(m[1], m[2], this.link);
      this.sockets.set(m[1], socket);
      this.server?.emit('connection', socket);
      return;
    }
    const socket = this.sockets.get(m[1]);
    if (!socket) return;   // destroyed here meanwhile; the worker was told
    switch (m[0]) {
      case 'data': socket.received(m[2], m[3]); break;
      case 'ack': socket.acknowledged(m[2]); break;
      case 'end': socket.receivedEnd(); break;
      case 'close': socket.remoteClosed(); break;
    }
  }
}
