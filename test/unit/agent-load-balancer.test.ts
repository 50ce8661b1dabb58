// The agent's server list and its loopback load balancer: addresses read from the `kubernetes`
// Endpoints (one subset per server port, IPv6, junk skipped), the list kept under the data dir only
// for the same --server, and the balancer on plain TCP servers: connections stick to one server, a
// refused dial moves them to the next, a failed health check closes the connections it holds, and a
// server leaving the list loses its connections; the endpoints follower feeds and stores the list.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket, type AddressInfo } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  addressesFromEndpoints, addressOfUrl, loadServerList, mergeAddresses, saveServerList, serverListPath, splitAddress,
} from '../../src/agent/loadbalancer/server-list.js';
import { AgentLoadBalancer } from '../../src/agent/loadbalancer/balancer.js';
import { followServerEndpoints } from '../../src/agent/loadbalancer/follow-endpoints.js';
import { eventually } from '../helpers/wait.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

test('addresses from the kubernetes Endpoints: every subset, its https port, IPv6 in brackets, junk skipped', () => {
  const ep = {
    subsets: [
      { addresses: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }], ports: [{ name: 'https', port: 6443, protocol: 'TCP' }] },
      { addresses: [{ ip: '127.0.0.1' }], ports: [{ name: 'https', port: 7443 }] },
      { addresses: [{ ip: 'fd00::1' }], ports: [{ port: 6443 }] },
      { addresses: [{ ip: 'not-an-ip' }, { hostname: 'x' }], ports: [{ name: 'https', port: 6443 }] },
      { addresses: [{ ip: '10.0.0.9' }], ports: [{ name: 'a', port: 1 }, { name: 'b', port: 2 }] },
      { addresses: [{ ip: '10.0.0.8' }], ports: [{ name: 'https', port: 70000 }] },
      'garbage',
    ],
  };
  assert.deepEqual(addressesFromEndpoints(ep), ['10.0.0.1:6443', '10.0.0.2:6443', '127.0.0.1:7443', '[fd00::1]:6443']);
  assert.deepEqual(addressesFromEndpoints(undefined), []);
  assert.deepEqual(addressesFromEndpoints({ subsets: 'x' }), []);
  assert.equal(addressOfUrl('https://10.0.0.1:6443/'), '10.0.0.1:6443');
  assert.equal(addressOfUrl('https://[fd00::1]:6443'), '[fd00::1]:6443');
  assert.equal(addressOfUrl('https://server.example'), 'server.example:443');
  assert.deepEqual(splitAddress('[fd00::1]:6443'), { host: 'fd00::1', port: 6443 });
  assert.equal(splitAddress('10.0.0.1'), undefined);
  assert.deepEqual(mergeAddresses('b:1', ['c:1', 'b:1', 'a:1', 'c:1']), ['b:1', 'a:1', 'c:1']);
});

test('the list is kept under the data dir, and only used again with the same --server', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-lb-'));
  dirs.push(dir);
  const url = 'https://10.0.0.1:6443';
  assert.deepEqual(loadServerList(dir, url), ['10.0.0.1:6443'], 'nothing stored yet');
  saveServerList(dir, url, ['10.0.0.1:6443', '10.0.0.2:6443', '10.0.0.3:6443']);
  assert.deepEqual(loadServerList(dir, url), ['10.0.0.1:6443', '10.0.0.2:6443', '10.0.0.3:6443']);
  assert.deepEqual(loadServerList(dir, 'https://192.168.1.1:6443'), ['192.168.1.1:6443'], 'a list from another cluster is not used');
  mkdirSync(dirname(serverListPath(dir)), { recursive: true });
  writeFileSync(serverListPath(dir), '{not json');
  assert.deepEqual(loadServerList(dir, url), ['10.0.0.1:6443'], 'a damaged file is the joined server alone');
});

/** A TCP server that answers each line with its own name. */
async function backend(name: string): Promise<{ server: Server; address: string; sockets: Set<Socket>; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.once('close', () => sockets.delete(s));
    s.on('data', () => s.write(`${name}\n`));
    s.on('error', () => undefined);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    server, address, sockets,
    close: () => new Promise<void>((r) => { for (const s of sockets) s.destroy(); server.close(() => r()); }),
  };
}

/** One connection through the balancer: `ask()` answers the backend's name; `closed` settles when it drops. */
async function client(lb: AgentLoadBalancer) {
  const [host, port] = lb.address.split(':');
  const s = connect(Number(port), host);
  s.on('error', () => undefined);
  const closed = new Promise<void>((r) => s.once('close', () => r()));
  await new Promise<void>((r) => s.once('connect', () => r()));
  const ask = () => new Promise<string>((resolve, reject) => {
    s.once('data', (d) => resolve(d.toString().trim()));
    s.once('close', () => reject(new Error('closed')));
    s.write('who\n');
  });
  return { s, ask, closed };
}

test('the balancer keeps to one server, moves on when it refuses or fails its checks, and drops servers that leave', async () => {
  const a = await backend('a');
  const b = await backend('b');
  const c = await backend('c');
  const down = new Set<string>();
  const lb = new AgentLoadBalancer({
    servers: [a.address, b.address, c.address], healthIntervalMs: 50, failuresToDown: 2,
    check: async (addr) => !down.has(addr),
  });
  await lb.start();
  try {
    assert.match(lb.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const one = await client(lb);
    const two = await client(lb);
    assert.equal(await one.ask(), 'a');
    assert.equal(await two.ask(), 'a', 'new connections go where the last went');

    // a dies: its connections drop (the kernel says so), the next dial is refused and lands on b.
    down.add(a.address);   // a dead server fails its checks too
    await a.close();
    await one.closed;
    await two.closed;
    const three = await client(lb);
    assert.equal(await three.ask(), 'b');
    assert.equal(lb.currentServer, b.address);
    assert.equal(lb.healthy(a.address), false);

    // b stops answering its health checks while its socket stays up (a hung process): cut off.
    down.add(b.address);
    await three.closed;
    const four = await client(lb);
    assert.equal(await four.ask(), 'c');

    // b answers again but c is still fine: connections stay with c.
    down.delete(b.address);
    await eventually(async () => lb.healthy(b.address), 'b healthy again', 5_000);
    assert.equal(await (await client(lb)).ask(), 'c');

    // c leaves the cluster (no longer in the endpoints): its connections are closed, b takes over.
    lb.setServers([a.address, b.address]);
    await four.closed;
    assert.equal(await (await client(lb)).ask(), 'b');
  } finally {
    await lb.stop();
    await b.close();
    await c.close();
  }
});

test('with every server down a connection is dropped, and the first to come back takes the next', async () => {
  const a = await backend('a');
  const addr = a.address;
  await a.close();
  const lb = new AgentLoadBalancer({ servers: [addr], healthIntervalMs: 60_000, check: async () => true });
  await lb.start();
  try {
    const c = await client(lb);
    await c.closed;
    const [host, port] = addr.split(':');
    const again = createServer((s) => { s.on('data', () => s.write('a2\n')); s.on('error', () => undefined); });
    await new Promise<void>((r) => again.listen(Number(port), host, r));
    try {
      assert.equal(await (await client(lb)).ask(), 'a2');
    } finally {
      await lb.stop();
      await new Promise((r) => again.close(r));
    }
  } finally {
    await lb.stop();
  }
});

test('the endpoints follower hands new lists to the balancer and stores them; empty or unreadable ones change nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-lb-'));
  dirs.push(dir);
  const serverUrl = 'https://10.0.0.1:6443';
  const lb = new AgentLoadBalancer({ servers: loadServerList(dir, serverUrl), check: async () => true });
  let answer: unknown = { subsets: [{ addresses: [{ ip: '10.0.0.3' }, { ip: '10.0.0.2' }], ports: [{ name: 'https', port: 6443 }] }] };
  const client = { get: async () => { if (answer instanceof Error) throw answer; return answer as any; } };
  const f = followServerEndpoints({ client, balancer: lb, dataDir: dir, serverUrl, periodMs: 60_000 });
  try {
    await f.refresh();
    assert.deepEqual(lb.servers(), ['10.0.0.1:6443', '10.0.0.2:6443', '10.0.0.3:6443'], 'the joined server first, then the rest');
    assert.deepEqual(loadServerList(dir, serverUrl), lb.servers(), 'stored for the next start');
    answer = { subsets: [] };
    await f.refresh();
    answer = new Error('connection reset');
    await f.refresh();
    assert.deepEqual(lb.servers(), ['10.0.0.1:6443', '10.0.0.2:6443', '10.0.0.3:6443'], 'kept');
    answer = { subsets: [{ addresses: [{ ip: '10.0.0.2' }], ports: [{ name: 'https', port: 6443 }] }] };
    await f.refresh();
    assert.deepEqual(lb.servers(), ['10.0.0.1:6443', '10.0.0.2:6443'], 'a server gone from the endpoints leaves the list');
    assert.deepEqual(loadServerList(dir, serverUrl), ['10.0.0.1:6443', '10.0.0.2:6443']);
  } finally {
    f.stop();
    await lb.stop();
  }
});
