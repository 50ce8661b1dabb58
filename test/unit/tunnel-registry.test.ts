// The server's tunnel registry and the agent's dialler together, on a plain HTTP server that routes
// upgrades through its request handler (as the API server does): who may connect and as which node,
// streams reach the right node, a missing node is a Status, refusals reach the agent with their
// message, and a dropped tunnel is redialled with backoff and replaces the old one.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import WebSocket from 'ws';
import { TunnelServer } from '../../src/apiserver/tunnel/registry.js';
import { AgentTunnel, type StreamHandler } from '../../src/agent/tunnel/client.js';
import { ApiError } from '../../src/api/status.js';
import type { UserInfo } from '../../src/apiserver/authn.js';
import type { LogsRequest } from '../../src/tunnel/protocol.js';
import { serveTunnels } from '../helpers/tunnel-http.js';

const tunnels = new TunnelServer();
/** Stands in for authentication: every caller holds node n1's certificate unless x-test-user says otherwise. */
function userOf(req: IncomingMessage): UserInfo | null {
  const u = req.headers['x-test-user'];
  if (u === 'none') return null;
  if (typeof u === 'string') return { name: u, groups: ['system:authenticated'] };
  return { name: 'system:node:n1', groups: ['system:nodes', 'system:authenticated'] };
}
const { http, url: base, sockets } = await serveTunnels(tunnels, userOf);

const agents: AgentTunnel[] = [];
after(async () => {
  for (const a of agents) a.stop();
  tunnels.close();
  for (const s of sockets) s.destroy();
  await new Promise((r) => http.close(r));
});

const echo: StreamHandler = (req, s) => { s.accept(); s.end(`hello from ${(req as LogsRequest).containerId}`); };

function agent(nodeName: string, serve: StreamHandler = echo): AgentTunnel {
  const a = new AgentTunnel({ serverUrl: base, nodeName, caPem: '', certPem: '', keyPem: '', serve, minBackoffMs: 20, maxBackoffMs: 80 });
  agents.push(a);
  a.start();
  return a;
}

async function read(s: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const c of s) text += c.toString();
  return text;
}

const logsReq: LogsRequest = { op: 'logs', containerId: 'c1', pod: 'ns/p', container: 'c' };

test('a node connects and the server reaches it by name; an unknown node is a Status', async () => {
  const a = agent('n1');
  await a.waitConnected(2_000);
  assert.ok(tunnels.isConnected('n1'));
  assert.equal(await read(await tunnels.open('n1', logsReq)), 'hello from c1');
  await assert.rejects(tunnels.open('n2', logsReq), (e: ApiError) => e.code === 500 && /error dialing backend: node "n2" has no connected agent tunnel/.test(e.message));
});

test('a node claiming another name is refused with 403, and the agent hears why', async () => {
  const a = agent('n2');
  const reason = await new Promise<string>((r) => a.once('disconnected', r));
  assert.match(reason, /^403: forbidden: node "n1" cannot connect a tunnel as node "n2"/);
  a.stop();
  assert.equal(tunnels.isConnected('n2'), false);
});

test('non-node users and anonymous callers cannot connect; errors go out as Status responses', async () => {
  const attempt = (user: string) => new Promise<{ code: number; body: any }>((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/v1-skiff/connect`, { headers: { 'x-test-user': user } });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ code: res.statusCode ?? 0, body: JSON.parse(body) }));
    });
    ws.on('open', () => reject(new Error('connected')));
    ws.on('error', () => undefined);
  });
  const admin = await attempt('admin');
  assert.equal(admin.code, 403);
  assert.equal(admin.body.kind, 'Status');
  assert.match(admin.body.message, /User "admin" is not a node/);
  assert.equal((await attempt('none')).code, 401);
});

test('a dropped tunnel is redialled and replaces the old one; streams work again', async () => {
  const a = agents[0]!;
  const again = new Promise<void>((r) => a.once('connected', () => r()));
  const down = new Promise<string>((r) => a.once('disconnected', r));
  for (const s of sockets) s.destroy();
  assert.equal(await down, 'connection closed');
  await again;
  assert.ok(tunnels.isConnected('n1'));
  assert.deepEqual(tunnels.nodes(), ['n1']);
  assert.equal(await read(await tunnels.open('n1', { ...logsReq, containerId: 'c2' })), 'hello from c2');
});
