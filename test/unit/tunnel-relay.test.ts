// Streams to a node whose tunnel another server holds: two servers (plain HTTP, upgrades routed
// through the request handler as the API server does) share one record of tunnel holders. The
// server an agent connects to records itself; the other relays logs and two-way streams (large
// ones too, so credit flows across the bridge), passes the agent's refusals on with their codes,
// follows the agent when it moves, never clears a newer holder's record, fails clearly when the
// holder is gone, and refuses relay connections from anyone but a server. The record itself is a
// Lease in kube-system owned by the Node, on a real ObjectService.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import WebSocket from 'ws';
import { TunnelServer } from '../../src/apiserver/tunnel/registry.js';
import { TunnelRelay, RELAY_PATH, TUNNEL_LEASE_NAMESPACE, leaseHolders, tunnelLeaseName, type TunnelHolders } from '../../src/apiserver/tunnel/relay.js';
import { startLocalApi } from '../helpers/local-api.js';
import { Resources } from '../../src/client/types.js';
import { AgentTunnel, type StreamHandler } from '../../src/agent/tunnel/client.js';
import { ApiError } from '../../src/api/status.js';
import type { UserInfo } from '../../src/apiserver/authn.js';
import type { ExecRequest, LogsRequest } from '../../src/tunnel/protocol.js';
import { eventually } from '../helpers/wait.js';
import { serveTunnels } from '../helpers/tunnel-http.js';

const record = new Map<string, string>();
const holders: TunnelHolders = {
  get: (node) => record.get(node),
  update: async (node, next) => {
    const v = next(record.get(node));
    if (v === null) record.delete(node);
    else if (v !== undefined) record.set(node, v);
  },
};

/** Agents hold node certificates; relay connections a server's (system:masters) unless x-test-user says otherwise. */
function userOf(req: IncomingMessage): UserInfo | null {
  const u = req.headers['x-test-user'];
  if (typeof u === 'string') return { name: u, groups: ['system:authenticated'] };
  if ((req.url ?? '').startsWith(RELAY_PATH)) return { name: 'system:admin', groups: ['system:masters', 'system:authenticated'] };
  const node = req.headers['x-skiff-node-name'];
  return { name: `system:node:${String(node)}`, groups: ['system:nodes', 'system:authenticated'] };
}

interface TestServer { tunnels: TunnelServer; http: Server; url: string; sockets: Set<Socket> }

async function server(): Promise<TestServer> {
  const tunnels = new TunnelServer();
  const { http, url, sockets } = await serveTunnels(tunnels, userOf);
  tunnels.useRelay(new TunnelRelay({ holders, self: url, caPem: '', certPem: '', keyPem: '' }));
  return { tunnels, http, url, sockets };
}

const one = await server();
const two = await server();
const agents: AgentTunnel[] = [];
after(async () => {
  for (const a of agents) a.stop();
  for (const s of [one, two]) {
    s.tunnels.close();
    for (const so of s.sockets) so.destroy();
    await new Promise((r) => s.http.close(r));
  }
});

/** logs: a greeting; exec: the input upper-cased; a container named `gone` is refused with 404. */
const serve: StreamHandler = (req, s) => {
  if (req.op === 'logs') {
    if (req.containerId === 'gone') return s.reject({ code: 404, message: 'container "gone" not found' });
    s.accept();
    s.end(`hello from ${req.containerId}`);
    return;
  }
  s.accept();
  s.on('data', (c: Buffer) => s.write(Buffer.from(c.toString('latin1').toUpperCase(), 'latin1')));
  s.on('end', () => s.end());
};

function agent(nodeName: string, to: TestServer): AgentTunnel {
  const a = new AgentTunnel({ serverUrl: to.url, nodeName, caPem: '', certPem: '', keyPem: '', serve, minBackoffMs: 20, maxBackoffMs: 80 });
  agents.push(a);
  a.start();
  return a;
}

async function read(s: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const c of s) text += c.toString('latin1');
  return text;
}

const logsReq: LogsRequest = { op: 'logs', containerId: 'c1', pod: 'ns/p', container: 'c' };
const execReq: ExecRequest = { op: 'exec', containerId: 'c1', cmd: ['cat'], stdin: true, stdout: true, stderr: false, tty: false, head: { method: 'POST', rawHeaders: [] } };

test('the server an agent connects to records itself; the other relays logs and two-way streams to it', async () => {
  const a = agent('n1', one);
  await a.waitConnected(2_000);
  await eventually(async () => record.get('n1') === one.url, 'n1 recorded on server one');
  assert.ok(two.tunnels.isConnected('n1'), 'server two can reach n1 (through one)');
  assert.equal(await read(await two.tunnels.open('n1', logsReq)), 'hello from c1');

  const s = await two.tunnels.open('n1', execReq);
  const big = 'abcdefgh'.repeat(128 * 1024);   // 1 MiB: several windows of credit in each direction
  const answer = read(s);
  s.end(big);
  assert.equal(await answer, big.toUpperCase());
});

test('the agent\'s refusal reaches the caller with its code; a stream for a node nobody holds is a Status', async () => {
  await assert.rejects(two.tunnels.open('n1', { ...logsReq, containerId: 'gone' }),
    (e: ApiError) => e.code === 404 && /container "gone" not found/.test(e.message));
  await assert.rejects(two.tunnels.open('n9', logsReq), (e: ApiError) => e.code === 500 && /has no connected agent tunnel/.test(e.message));
});

test('an agent that moves is followed, and the old server never clears the new holder\'s record', async () => {
  const old = agents.find((a) => a.connected)!;
  // The new tunnel comes up on server two before server one sees the old one go (a dead path).
  const moved = agent('n1', two);
  await moved.waitConnected(2_000);
  await eventually(async () => record.get('n1') === two.url, 'n1 recorded on server two');
  old.stop();
  await eventually(async () => !one.tunnels.nodes().includes('n1'), 'server one dropped its tunnel');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(record.get('n1'), two.url, 'server one left server two\'s record alone');
  assert.equal(await read(await one.tunnels.open('n1', logsReq)), 'hello from c1', 'server one relays to two now');
  assert.equal(await read(await two.tunnels.open('n1', logsReq)), 'hello from c1');
  // The agent leaves two for good: its record goes with it.
  moved.stop();
  await eventually(async () => !record.has('n1'), 'the record cleared by its holder');
});

test('a holder that cannot be reached is a clear error; only servers may open a relay', async () => {
  record.set('n2', 'http://127.0.0.1:1');
  await assert.rejects(one.tunnels.open('n2', logsReq),
    (e: ApiError) => e.code === 500 && /node "n2" is connected to server http:\/\/127\.0\.0\.1:1, which cannot be reached/.test(e.message));
  record.delete('n2');

  const ws = new WebSocket(`${one.url.replace('http', 'ws')}${RELAY_PATH}?node=n1`, { headers: { 'x-test-user': 'alice' } });
  const status = await new Promise<number>((resolve) => {
    ws.once('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    ws.once('open', () => resolve(101));
    ws.once('error', () => undefined);
  });
  ws.terminate();
  assert.equal(status, 403);
});

test('the holder record is a Lease in kube-system owned by the Node: claimed, left alone by others, cleared by its holder', async (t) => {
  const api = await startLocalApi(t);
  const node = await api.client.create(Resources.nodes, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' } });
  const leases = leaseHolders(api.objects);
  const relayOf = (self: string) => new TunnelRelay({ holders: leases, self, caPem: '', certPem: '', keyPem: '' });
  const a = relayOf('https://a:6443');
  const b = relayOf('https://b:6443');

  await a.claim('n1');
  assert.equal(leases.get('n1'), 'https://a:6443');
  const lease = await api.client.get<any>(Resources.leases, TUNNEL_LEASE_NAMESPACE, tunnelLeaseName('n1'));
  assert.equal(lease.spec.holderIdentity, 'https://a:6443');
  assert.deepEqual(lease.metadata.ownerReferences.map((o: any) => [o.kind, o.name, o.uid]), [['Node', 'n1', node.metadata.uid]]);
  assert.equal(b.holderOf('n1'), 'https://a:6443', 'b relays to a');
  assert.equal(a.holderOf('n1'), undefined, 'a holds it itself');

  await b.release('n1');
  assert.equal(leases.get('n1'), 'https://a:6443', 'only the holder clears its record');
  await b.claim('n1');
  await a.release('n1');
  assert.equal(leases.get('n1'), 'https://b:6443', 'a newer holder\'s record survives the old one\'s release');
  await b.release('n1');
  assert.equal(leases.get('n1'), undefined);

  // A claim that cannot be written (no such Node yet, a datastore election) is retried while the tunnel is up.
  let up = true;
  const pending = a.claim('n2', () => up);
  await new Promise((r) => setTimeout(r, 700));
  assert.equal(leases.get('n2'), undefined);
  await api.client.create(Resources.nodes, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n2' } });
  await eventually(async () => leases.get('n2') === 'https://a:6443', 'the claim retried once the Node exists', 10_000);
  await pending;
  up = false;
  await a.claim('no-such-node', () => up);   // the tunnel is gone: no retries, never thrown
  assert.equal(leases.get('no-such-node'), undefined);
  const long = 'n'.repeat(250);
  assert.ok(tunnelLeaseName(long).length <= 253 && tunnelLeaseName(long).startsWith('skiff-tunnel-'));
});
