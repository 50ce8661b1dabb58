// More than one accept per event-loop iteration on the API server's listening socket.
//
// libuv (since 1.45, Node 20) accepts one connection per readiness of a listening handle, so a
// server accepts at most one connection per turn of its event loop. After a restart at 5,000 nodes
// every turn carries the reconnected nodes' requests and their watch events (tens of ms), so new
// connections came in at 40–150 a second: the kernel's listen queue stayed full for over a minute,
// further connection attempts were dropped, and each dropped client waited out TCP's SYN backoff
// (1, 3, 7, 15, 31 s …) before trying again. Lease renewals were late by up to two minutes, and
// `/readyz` itself could not get in (docs/scale.md).
//
// Node 20 has no SO_REUSEPORT. What it has is handle passing: a short-lived child process receives
// the listening socket's raw handle and sends it back `count` times; each copy is a distinct
// descriptor of the same socket, registered with the loop as its own handle, so each turn accepts up
// to `count + 1` connections, all handed to the one HTTPS server. Should any of this fail, the server
// keeps its one handle and says so in the log.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type Server } from 'node:net';
import { logger } from '../util/log.js';

const log = logger('accept-handles');

/**
 * Sends the received handle back `n` times, then exits (closing its own copy). It never listens on
 * it (a raw handle, not a net.Server), so it accepts nothing meanwhile. If the server dies during
 * the hand-over (a kill -9 right after start), the helper notices its new parent and exits at once:
 * its copy of the socket would otherwise keep the port bound, and a server started again on the
 * same port fails with EADDRINUSE. The server's pid is written into the script rather than read as
 * the helper's ppid when it starts: a server killed while node was still starting the helper would
 * otherwise be "remembered" as the helper's new parent (pid 1), and the helper kept the socket for
 * its full lifetime. Without a handle it waits up to `waitMs` (the server loads its datastore
 * meanwhile); with one, it is gone within 10 s whatever happens.
 */
const CHILD = (n: number, parent: number, waitMs: number) => `const parent = ${parent};
if (process.ppid !== parent) process.exit(0);
setInterval(() => { if (process.ppid !== parent) process.exit(0); }, 20);
let deadline = setTimeout(() => process.exit(0), ${waitMs});
process.on('disconnect', () => process.exit(0));
process.on('message', (m, h) => {
  if (m !== 'dup' || !h) return;
  clearTimeout(deadline);
  deadline = setTimeout(() => process.exit(0), 10000);
  let left = ${n};
  for (let i = 0; i < ${n}; i++) process.send('dup', h, () => { if (--left === 0) process.exit(0); });
});`;

/** How long a helper started ahead of the listen waits for the socket (a slow datastore load). */
const HELPER_WAIT_MS = 300_000;

/** The helper for a server process `parentPid` (this one; another only in tests), with an IPC channel. */
export function spawnAcceptHelper(count: number, parentPid = process.pid, waitMs = 10_000): ChildProcess {
  const { NODE_OPTIONS: _, ...env } = process.env;
  return spawn(process.execPath, ['-e', CHILD(count, parentPid, waitMs)], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env });
}

/**
 * A helper started before the server listens: `attach` then costs a few IPC messages instead of a
 * node start. Started only once the socket exists, the helper came too late exactly when it was
 * needed: after a restart at 5,000 nodes the machine is busy with reconnecting clients, and the
 * helper had not sent its handles back within 5 s, so the server accepted one connection per turn
 * (docs/scale.md).
 */
export class AcceptHelper {
  private readonly child: ChildProcess;
  private used = false;

  constructor(private readonly count: number) {
    this.child = spawnAcceptHelper(count, process.pid, HELPER_WAIT_MS);
    this.child.on('error', () => {});   // reported by attach
    // It must not keep a server that stopped before listening alive; it exits with its parent anyway.
    this.child.unref();
    (this.child.channel as { unref?: () => void } | undefined)?.unref?.();
  }

  /**
   * Adds the helper's `count` handles of `server`'s listening socket, each listening with `backlog`
   * (every listen(2) on the socket sets it again). Resolves with what stops them once they are all
   * in (call it before `server.close()`, or the socket keeps accepting; it also runs when the server
   * closes), or with a no-op after a warning when they are not in within `timeoutMs`: the server
   * keeps its one handle.
   */
  async attach(server: Server, backlog: number, timeoutMs = 30_000): Promise<() => void> {
    if (this.used) throw new Error('an accept helper hands out one socket');
    this.used = true;
    const child = this.child;
    const extras: Server[] = [];
    let failed = false;
    try {
      await new Promise<void>((resolve, reject) => {
        if (child.exitCode !== null || child.signalCode !== null) { reject(new Error(`helper exited with ${child.exitCode ?? child.signalCode}`)); return; }
        const timer = setTimeout(() => reject(new Error(`no handles back within ${timeoutMs / 1000} s`)), timeoutMs);
        child.once('error', (err) => { clearTimeout(timer); reject(err); });
        // Its last messages may still be in the pipe when it exits: judge a moment later.
        child.once('exit', (code) => setTimeout(() => {
          if (extras.length < this.count) { clearTimeout(timer); reject(new Error(`helper exited with ${code}`)); }
        }, 1000).unref());
        child.on('message', (m, h) => {
          if (m !== 'dup' || !h) return;
          // One still in the pipe after giving up: closed at once, or it would keep the port bound.
          if (failed) { (h as { close?: () => void }).close?.(); return; }
          // A raw handle of the listening socket: listening on it here sets the backlog again too.
          const extra = createServer();
          extras.push(extra);
          extra.on('connection', (socket) => server.emit('connection', socket));
          extra.on('error', (err) => log.warn({ err: String(err) }, 'extra accept handle failed'));
          extra.listen(h as unknown as { fd: number }, backlog);
          if (extras.length === this.count) { clearTimeout(timer); resolve(); }
        });
        // The raw handle, not the server: the helper must not listen (and so accept) on its copy.
        const raw = (server as unknown as { _handle?: object })._handle;
        if (!raw) throw new Error('the server is not listening');
        child.send('dup', raw as Parameters<typeof child.send>[1]);
      });
    } catch (err) {
      failed = true;
      for (const e of extras) e.close();
      log.warn({ err: String(err) }, 'one accept per event-loop turn: extra accept handles not set up');
      return () => {};
    } finally {
      child.kill();
    }
    const stop = () => { for (const e of extras.splice(0)) e.close(); };
    // Closed while the handles were on their way: they must not keep the port.
    if (!server.listening) { stop(); return stop; }
    server.once('close', stop);
    log.debug({ handles: this.count + 1 }, 'accepting on several handles');
    return stop;
  }

  /** Stops the helper if `attach` will not be called (the server did not get as far as listening). */
  kill(): void {
    if (!this.used) { this.used = true; this.child.kill(); }
  }
}

/** A helper started now and attached at once (tests, and servers that start quickly). */
export function addAcceptHandles(server: Server, count: number, backlog: number): Promise<() => void> {
  return new AcceptHelper(count).attach(server, backlog, 5000);
}
