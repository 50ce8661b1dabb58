// Upgrade requests (WebSocket, SPDY) through the ordinary request pipeline. Node hands an upgrade to
// the server's 'upgrade' event with a bare socket and skips the 'request' handler, which is where
// authentication, authorization and routing live. Re-emitting it as a request, with a response bound
// to that socket, lets every check run once, in one place; a handler that wants the connection takes
// the socket (and the bytes already read past the headers) with `upgradeHead`, and any error before
// that goes out as an ordinary Status response.
import { ServerResponse, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex } from 'node:stream';

const heads = new WeakMap<IncomingMessage, Buffer>();

export function routeUpgradesAsRequests(server: HttpServer | HttpsServer): void {
  server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    heads.set(req, head);
    socket.on('error', () => socket.destroy());
    const res = new ServerResponse(req);
    res.shouldKeepAlive = false;
    res.assignSocket(socket as never);
    // Nobody else ends this socket once an error response is written (the HTTP parser let go of it).
    res.on('finish', () => socket.end());
    server.emit('request', req, res);
  });
}

/** The bytes read past an upgrade request's headers, or undefined if `req` is not an upgrade. */
export function upgradeHead(req: IncomingMessage): Buffer | undefined {
  return heads.get(req);
}
