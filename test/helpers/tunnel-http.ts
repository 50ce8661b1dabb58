// A plain-HTTP server that serves only a TunnelServer's routes (agent connects, relays), with the
// caller's stand-in for authentication, for the tunnel unit tests. Tracks its sockets so a test can
// end every connection at once.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { TunnelServer } from '../../src/apiserver/tunnel/registry.js';
import { routeUpgradesAsRequests } from '../../src/apiserver/tunnel/upgrade.js';
import { sendError } from '../../src/apiserver/http.js';
import type { UserInfo } from '../../src/apiserver/authn.js';

export interface TunnelHttp { http: Server; url: string; sockets: Set<Socket> }

export async function serveTunnels(tunnels: TunnelServer, userOf: (req: IncomingMessage) => UserInfo | null): Promise<TunnelHttp> {
  const sockets = new Set<Socket>();
  const http = createServer((req: IncomingMessage, res: ServerResponse) => {
    try {
      if (!tunnels.handleConnect(req, res, userOf(req))) { res.statusCode = 404; res.end(); }
    } catch (err) {
      sendError(res, err);
    }
  });
  routeUpgradesAsRequests(http);
  http.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  return { http, url: `http://127.0.0.1:${(http.address() as AddressInfo).port}`, sockets };
}
