// `nodes/<node>/proxy/stats/summary` from the server's handler through a real tunnel to the agent's
// stream server, with a fake container runtime and the host's /proc: the Summary comes back as JSON,
// and a missing node, a node without a tunnel, other paths and other methods are Statuses.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { TunnelServer } from '../../src/apiserver/tunnel/registry.js';
import { routeUpgradesAsRequests } from '../../src/apiserver/tunnel/upgrade.js';
import { attachNodeProxy, handleNodeProxy } from '../../src/apiserver/tunnel/node-proxy.js';
import { AgentTunnel, runtimeStreamHandler } from '../../src/agent/tunnel/client.js';
import { parseRequestInfo } from '../../src/apiserver/request-info.js';
import { errors } from '../../src/api/status.js';
import { sendError } from '../../src/apiserver/http.js';
import type { ApiContext } from '../../src/apiserver/context.js';
import type { CriClient } from '../../src/agent/runtime/cri-client.js';

const NODES = new Set(['n1', 'n2']);
const ctx = {
  registry: { lookup: () => ({ group: '', version: 'v1', plural: 'nodes' }) },
  objects: {
    get: (_info: unknown, _ns: unknown, name: string) => {
      if (!NODES.has(name)) throw errors.notFound('nodes', '', name);
      return { obj: { metadata: { name } } };
    },
  },
} as unknown as ApiContext;
const tunnels = new TunnelServer();
attachNodeProxy(ctx, tunnels);

const cri = {
  listPodSandbox: async () => [],
  listContainers: async () => [],
  listContainerStats: async () => [],
  listPodSandboxStats: async () => [],
} as unknown as CriClient;

const sockets = new Set<Socket>();
const http = createServer((req: IncomingMessage, res: ServerResponse) => {
  void (async () => {
    try {
      if (tunnels.handleConnect(req, res, { name: 'system:node:n1', groups: ['system:nodes'] })) return;
      const url = new URL(req.url ?? '/', 'http://x');
      await handleNodeProxy(ctx, req, res, parseRequestInfo(req.method ?? 'GET', url.pathname, url.searchParams));
    } catch (err) {
      sendError(res, err);
    }
  })();
});
routeUpgradesAsRequests(http);
http.on('connection', (s: Socket) => { sockets.add(s); s.once('close', () => sockets.delete(s)); });
await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
const base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
const agent = new AgentTunnel({ serverUrl: base, nodeName: 'n1', caPem: '', certPem: '', keyPem: '', serve: runtimeStreamHandler({ cri }), minBackoffMs: 20 });

after(async () => {
  agent.stop();
  tunnels.close();
  for (const s of sockets) s.destroy();
  await new Promise((r) => http.close(r));
});

async function call(path: string, method = 'GET'): Promise<{ code: number; body: any }> {
  const res = await fetch(base + path, { method });
  return { code: res.status, body: await res.json() };
}

test('the Summary of a connected node comes back as JSON', async () => {
  agent.start();
  await agent.waitConnected(2_000);
  const r = await call('/api/v1/nodes/n1/proxy/stats/summary?only_cpu_and_memory=true');
  assert.equal(r.code, 200);
  assert.equal(r.body.node.nodeName, 'n1');
  assert.ok(r.body.node.memory.usageBytes > 0);
  assert.ok(r.body.node.cpu.usageCoreNanoSeconds > 0);
  assert.deepEqual(r.body.pods, []);
});

test('a node without a tunnel is a 503 Status, an unknown node a 404', async () => {
  const r = await call('/api/v1/nodes/n2/proxy/stats/summary');
  assert.equal(r.code, 503);
  assert.equal(r.body.kind, 'Status');
  assert.equal(r.body.reason, 'ServiceUnavailable');
  assert.match(r.body.message, /node "n2"/);
  const missing = await call('/api/v1/nodes/n3/proxy/stats/summary');
  assert.equal(missing.code, 404);
  assert.equal(missing.body.reason, 'NotFound');
});

test('other paths are 404 and other methods 405', async () => {
  assert.equal((await call('/api/v1/nodes/n1/proxy/configz')).code, 404);
  assert.equal((await call('/api/v1/nodes/n1/proxy/stats/summary', 'POST')).code, 405);
});
