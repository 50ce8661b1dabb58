// The network policy controller against real nftables: a host (network namespace) with a pod bridge,
// three pods and a LAN host as namespaces of their own, the controller fed by the in-process API and
// writing its table into the host's namespace. Connections are real TCP (socat); a blocked one times out.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { startLocalApi } from '../helpers/local-api.js';
import { eventually } from '../helpers/controller-env.js';
import { Resources } from '../../src/client/types.js';
import { NETWORK_POLICIES, startNetworkPolicy } from '../../src/agent/network/policy/controller.js';
import { parseTableJson } from '../../src/agent/network/proxy/nft-state.js';
import { emptyState } from '../../src/agent/network/proxy/nft-diff.js';

const missing = [process.getuid?.() === 0 ? '' : 'root', ...['/usr/sbin/nft', '/usr/bin/socat'].filter((b) => !existsSync(b))].filter(Boolean);
const ID = `np${process.pid % 100000}`;
const HOST = `${ID}h`;
const LAN = `${ID}l`;
const PODS = { a: '10.77.0.2', b: '10.77.0.3', c: '10.77.0.4', d: '10.77.0.5' } as const;
const LAN_IP = '10.78.0.2';

function sh(args: string[], check = true): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: 'utf8' });
  if (check && r.status !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
const inNs = (ns: string, args: string[], check = true) => sh(['ip', 'netns', 'exec', ns, ...args], check);

function topology(t: TestContext): void {
  t.after(() => {
    for (const ns of [HOST, LAN, ...Object.keys(PODS).map((p) => `${ID}${p}`)]) spawnSync('ip', ['netns', 'del', ns]);
  });
  sh(['ip', 'netns', 'add', HOST]);
  inNs(HOST, ['ip', 'link', 'set', 'lo', 'up']);
  inNs(HOST, ['ip', 'link', 'add', 'br0', 'type', 'bridge']);
  inNs(HOST, ['ip', 'addr', 'add', '10.77.0.1/24', 'dev', 'br0']);
  inNs(HOST, ['ip', 'link', 'set', 'br0', 'up']);
  inNs(HOST, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
  for (const [name, ip] of Object.entries(PODS)) {
    const ns = `${ID}${name}`;
    sh(['ip', 'netns', 'add', ns]);
    inNs(HOST, ['ip', 'link', 'add', `v${name}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
    inNs(HOST, ['ip', 'link', 'set', `v${name}`, 'master', 'br0', 'up']);
    inNs(ns, ['ip', 'addr', 'add', `${ip}/24`, 'dev', 'eth0']);
    inNs(ns, ['ip', 'link', 'set', 'eth0', 'up']);
    inNs(ns, ['ip', 'link', 'set', 'lo', 'up']);
    inNs(ns, ['ip', 'route', 'add', 'default', 'via', '10.77.0.1']);
  }
  sh(['ip', 'netns', 'add', LAN]);
  inNs(HOST, ['ip', 'link', 'add', 'lan0', 'type', 'veth', 'peer', 'name', 'eth0', 'netns', LAN]);
  inNs(HOST, ['ip', 'addr', 'add', '10.78.0.1/24', 'dev', 'lan0']);
  inNs(HOST, ['ip', 'link', 'set', 'lan0', 'up']);
  inNs(LAN, ['ip', 'addr', 'add', `${LAN_IP}/24`, 'dev', 'eth0']);
  inNs(LAN, ['ip', 'link', 'set', 'eth0', 'up']);
  inNs(LAN, ['ip', 'route', 'add', 'default', 'via', '10.78.0.1']);
}

function serve(t: TestContext, ns: string, port: number, reply: string): void {
  const p: ChildProcess = spawn('ip', ['netns', 'exec', ns, 'socat', `TCP-LISTEN:${port},fork,reuseaddr`, `SYSTEM:echo ${reply}`], { stdio: 'ignore' });
  t.after(() => { p.kill('SIGKILL'); });
}

/** Whether `from` (a namespace) gets `reply` from ip:port within a second. */
function reaches(from: string, ip: string, port: number, reply: string): boolean {
  const r = spawnSync('ip', ['netns', 'exec', from, 'socat', '-T2', '-', `TCP:${ip}:${port},connect-timeout=1`], { encoding: 'utf8', input: '', timeout: 5000 });
  return r.stdout.includes(reply);
}

const nft = {
  run: (script: string) => new Promise<void>((resolve, reject) => {
    const r = spawnSync('ip', ['netns', 'exec', HOST, 'nft', '-f', '-'], { input: script, encoding: 'utf8' });
    if (r.status === 0) resolve(); else reject(new Error(r.stderr));
  }),
  read: async (family: string, table: string) => {
    const r = spawnSync('ip', ['netns', 'exec', HOST, 'nft', '-j', 'list', 'table', family, table], { encoding: 'utf8', maxBuffer: 1 << 28 });
    return r.status === 0 ? parseTableJson(r.stdout) : emptyState();
  },
};

test('network policy in the kernel: deny, allow by label, namespace and ipBlock, egress, named ports, admission, restart', { skip: missing.length ? `needs ${missing.join(', ')}` : false, timeout: 120_000 }, async (t) => {
  topology(t);
  const api = await startLocalApi(t, { namespaces: ['default', 'kube-system', 'shop', 'ops'] });
  const c = api.client;
  const pod = async (name: string, ns: string, labels: Record<string, string>, ip: string, ports: object[] = []) => {
    await c.create(Resources.pods, ns, { apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns, labels }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox', ports }] } });
    await c.patch(Resources.pods, ns, name, 'merge', { status: { phase: 'Running', podIP: ip, podIPs: [{ ip }] } }, { subresource: 'status' });
  };
  await pod('a', 'shop', { app: 'a' }, PODS.a);
  await pod('b', 'shop', { app: 'b' }, PODS.b, [{ name: 'http-alt', containerPort: 8080 }]);
  await pod('c', 'ops', { app: 'c' }, PODS.c);
  serve(t, `${ID}b`, 80, 'hello-b');
  serve(t, `${ID}b`, 8080, 'alt-b');
  serve(t, LAN, 80, 'hello-lan');
  serve(t, `${ID}d`, 80, 'hello-d');

  const scripts: string[] = [];
  const run = (s: string) => { scripts.push(s); return nft.run(s); };
  const options = { client: c, nodeName: 'n1', table: 'skiff-netpol', podCidr: '10.77.0.0/24', run, read: nft.read };
  let np = startNetworkPolicy(options);
  t.after(() => np.stop());
  await np.ready;
  assert.ok(reaches(`${ID}a`, PODS.b, 80, 'hello-b'), 'no policy: open');
  assert.ok(reaches(`${ID}c`, PODS.b, 80, 'hello-b'));
  // d's address is no pod the controller knows (CNI gave it, the agent has not admitted it): closed.
  assert.ok(!reaches(`${ID}c`, PODS.d, 80, 'hello-d'), 'an address not admitted receives nothing');
  assert.ok(reaches(HOST, PODS.d, 80, 'hello-d'), 'but the node reaches it');

  // Default deny (ingress) in shop: pods of shop receive nothing; the node itself still reaches them.
  const policy = (name: string, ns: string, spec: object) => c.create(NETWORK_POLICIES, ns, { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace: ns }, spec } as any);
  await policy('deny', 'shop', { podSelector: {} });
  await eventually(() => !reaches(`${ID}a`, PODS.b, 80, 'hello-b'), 15_000, 'a → b blocked');
  assert.ok(!reaches(`${ID}c`, PODS.b, 80, 'hello-b'));
  assert.ok(!reaches(LAN, PODS.b, 80, 'hello-b'));
  assert.ok(reaches(HOST, PODS.b, 80, 'hello-b'), 'the node reaches its pods');

  // Allow by pod label: a (app=a) in, c still out.
  await policy('from-a', 'shop', { podSelector: { matchLabels: { app: 'b' } }, ingress: [{ from: [{ podSelector: { matchLabels: { app: 'a' } } }], ports: [{ port: 80 }] }] });
  await eventually(() => reaches(`${ID}a`, PODS.b, 80, 'hello-b'), 15_000, 'a → b allowed by label');
  assert.ok(!reaches(`${ID}c`, PODS.b, 80, 'hello-b'));
  assert.ok(!reaches(`${ID}a`, PODS.b, 8080, 'alt-b'), 'only port 80');

  // Allow by namespace label (c's namespace), on the named port only.
  await c.patch(Resources.namespaces, undefined, 'ops', 'merge', { metadata: { labels: { team: 'ops' } } });
  await policy('from-ops', 'shop', { podSelector: { matchLabels: { app: 'b' } }, ingress: [{ from: [{ namespaceSelector: { matchLabels: { team: 'ops' } } }], ports: [{ port: 'http-alt' }] }] });
  await eventually(() => reaches(`${ID}c`, PODS.b, 8080, 'alt-b'), 15_000, 'c → b:http-alt allowed by namespace');
  assert.ok(!reaches(`${ID}c`, PODS.b, 80, 'hello-b'));

  // Allow by ipBlock, with an except that keeps one address out.
  await policy('from-lan', 'shop', { podSelector: {}, ingress: [{ from: [{ ipBlock: { cidr: '10.78.0.0/16', except: ['10.78.1.0/24', '10.78.2.7/32', '10.78.1.9/32'] } }] }] });
  await eventually(() => reaches(LAN, PODS.b, 80, 'hello-b'), 15_000, 'LAN → b allowed by ipBlock');

  // Egress deny for a: it no longer reaches the LAN host, while b still does (b is not egress-isolated).
  assert.ok(reaches(`${ID}a`, LAN_IP, 80, 'hello-lan'));
  await policy('a-egress', 'shop', { podSelector: { matchLabels: { app: 'a' } }, policyTypes: ['Egress'], egress: [{ to: [{ podSelector: { matchLabels: { app: 'b' } } }] }] });
  await eventually(() => !reaches(`${ID}a`, LAN_IP, 80, 'hello-lan'), 15_000, 'a → LAN blocked by egress');
  assert.ok(reaches(`${ID}a`, PODS.b, 80, 'hello-b'), 'egress to b still allowed (and b admits a)');
  assert.ok(reaches(`${ID}b`, LAN_IP, 80, 'hello-lan'));

  // Admission: a new pod of ops (no policy there; no status IP yet) is open once admit() resolves.
  await c.create(Resources.pods, 'ops', { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'd', namespace: 'ops', labels: { app: 'd' } }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox' }] } });
  const created = await c.get<any>(Resources.pods, 'ops', 'd');
  await np.admit(created, [PODS.d]);
  assert.match(inNs(HOST, ['nft', 'list', 'set', 'ip', 'skiff-netpol', 'local-pods']), /10\.77\.0\.5/);
  assert.ok(reaches(`${ID}c`, PODS.d, 80, 'hello-d'), 'admitted: open');

  // Admissions racing policy changes (full recomputes in flight): each resolves only once its own address is in.
  const racers = await Promise.all(['e1', 'e2', 'e3'].map((n) => c.create<any>(Resources.pods, 'ops', { apiVersion: 'v1', kind: 'Pod', metadata: { name: n, namespace: 'ops' }, spec: { nodeName: 'n1', containers: [{ name: 'c', image: 'busybox' }] } })));
  await Promise.all(racers.map(async (p, i) => {
    await policy(`race-${i}`, 'ops', { podSelector: { matchLabels: { none: 'x' } } });
    await np.admit(p, [`10.77.0.${100 + i}`]);
    assert.match(inNs(HOST, ['nft', 'list', 'set', 'ip', 'skiff-netpol', 'local-pods']), new RegExp(`10\\.77\\.0\\.${100 + i}\\b`));
  }));
  for (const [i, p] of racers.entries()) {
    await c.delete(NETWORK_POLICIES, 'ops', `race-${i}`);
    await c.delete(Resources.pods, 'ops', p.metadata.name, { gracePeriodSeconds: 0 } as any);
  }

  // Then its worker posts the status with the IP (as the agent does once containers run): nothing changes.
  await c.patch(Resources.pods, 'ops', 'd', 'merge', { status: { phase: 'Running', podIP: PODS.d, podIPs: [{ ip: PODS.d }] } }, { subresource: 'status' });

  // Restart: a new controller finds the table as it should be and writes nothing.
  await new Promise((r) => setTimeout(r, 300));
  await np.stop();
  const before = scripts.length;
  np = startNetworkPolicy(options);
  await np.ready;
  assert.equal(scripts.length, before, `restart wrote:\n${scripts.slice(before).join('\n')}`);
  assert.ok(!reaches(`${ID}c`, PODS.b, 80, 'hello-b'));

  // A policy removed: its allowance goes, the others stay.
  await c.delete(NETWORK_POLICIES, 'shop', 'from-lan');
  await eventually(() => !reaches(LAN, PODS.b, 80, 'hello-b'), 15_000, 'LAN → b blocked again');
  assert.ok(reaches(`${ID}a`, PODS.b, 80, 'hello-b'));
});
