// Upgrade requests (WebSocket, SPDY) through the ordinary request pipeline. Node hands an upgrade to
// the server's 'upgrade' event with a bare socket and skips the 'request' handler, which is where
// authentication, authorization and routing live. Re-emitting it as a request, with a response bound
// to that socket, lets every check run once, in one place; a handler that wants the connection takes
// the socket (and the bytes already read past the headers) with `upgradeHead`, and any error before
// that goes out as an ordinary Status response.
import { ServerResponse, type IncomingMessage, type Server as HttpServer } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Duplex, Readable } from 'node:stream';

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

/** The head of an HTTP response read off a raw stream (the runtime's answer to a replayed upgrade). */
export interface ResponseHead {
  status: number;
  /** Lower-cased names; a repeated header keeps its last value. */
  headers: Record<string, string>;
}

const MAX_RESPONSE_HEAD_BYTES = 64 * 1024;

/**
 * Reads one HTTP/1.1 response head off `stream` and leaves every byte after it unread, so the
 * upgraded protocol's first frames reach whoever reads the stream next.
 */
export function readResponseHead(stream: Readable): Promise<ResponseHead> {
  return new Promise((resolve, reject) => {
    let buf = Buffer.alloc(0);
    const cleanup = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('close', onEnd);
      stream.off('error', onError);
    };
    const onError = (err: Error) => { cleanup(); reject(err); };
    const onEnd = () => { cleanup(); reject(new Error('the container runtime closed the connection before answering')); };
    const onData = (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      const end = buf.indexOf('\r\n\r\n');
      if (end < 0) {
        if (buf.length > MAX_RESPONSE_HEAD_BYTES) onError(new Error('the container runtime sent an oversized response head'));
        return;
      }
      cleanup();
      stream.pause();
      const rest = buf.subarray(end + 4);
      if (rest.length) stream.unshift(rest);
      const [statusLine = '', ...lines] = buf.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
      if (!status) return reject(new Error(`the container runtime sent a malformed status line: ${JSON.stringify(statusLine.slice(0, 100))}`));
      const headers: Record<string, string> = {};
      for (const line of lines) {
        const i = line.indexOf(':');
        if (i > 0) headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
      }
      resolve({ status, headers });
    };
    stream.on('data', onData);
    stream.once('end', onEnd);
    stream.once('close', onEnd);
    stream.once('error', onError);
  });
}
