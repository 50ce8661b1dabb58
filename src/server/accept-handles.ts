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
// the listening socket and sends it back `count` times; each copy is a distinct descriptor of the
// same socket, registered with the loop as its own handle, so each turn accepts up to `count + 1`
// connections, all handed to the one HTTPS server. Should any of this fail, the server keeps its one
// handle and says so in the log.
import { spawn } from 'node:child_process';
import type { Server } from 'node:net';
import { logger } from '../util/log.js';

const log = logger('accept-handles');

/** Sends the received handle back `n` times; exits on its own even if the parent never answers. */
const CHILD = (n: number) => `setTimeout(() => process.exit(0), 10000);
process.on('disconnect', () => process.exit(0));
process.on('message', (m, h) => { if (m === 'dup' && h) for (let i = 0; i < ${n}; i++) process.send('dup', h); });`;

/**
 * Adds `count` more handles of `server`'s listening socket. `backlog` is set again at the end (every
 * listen(2) on the socket sets it, Node's handles with 511). Returns what stops them: call it before
 * `server.close()`, or the socket keeps accepting (it also runs when the server closes).
 */
export async function addAcceptHandles(server: Server, count: number, backlog: number): Promise<() => void> {
  const { NODE_OPTIONS: _, ...env } = process.env;
  const child = spawn(process.execPath, ['-e', CHILD(count)], { stdio: ['ignore', 'ignore', 'ignore', 'ipc'], env });
  const extras: Server[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('no handles back within 5 s')), 5000);
      child.once('error', (err) => { clearTimeout(timer); reject(err); });
      child.once('exit', (code) => { clearTimeout(timer); reject(new Error(`helper exited with ${code}`)); });
      child.on('message', (m, h) => {
        if (m !== 'dup' || !h) return;
        const extra = h as Server;
        extras.push(extra);
        extra.on('connection', (socket) => server.emit('connection', socket));
        extra.on('error', (err) => log.warn({ err: String(err) }, 'extra accept handle failed'));
        if (extras.length === count) { clearTimeout(timer); resolve(); }
      });
      child.send('dup', server);
    });
  } catch (err) {
    for (const e of extras) e.close();
    log.warn({ err: String(err) }, 'one accept per event-loop turn: extra accept handles not set up');
    return () => {};
  } finally {
    child.kill();
  }
  const stop = () => { for (const e of extras.splice(0)) e.close(); };
  server.once('close', stop);
  // Node's internal handle: the only way to listen(2) again on the same socket with the real backlog.
  (server as unknown as { _handle?: { listen(backlog: number): number } })._handle?.listen(backlog);
  log.debug({ handles: count + 1 }, 'accepting on several handles');
  return stop;
}
