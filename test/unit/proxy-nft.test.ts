// The nftables side of the service proxy without a kernel: the objects written for each kind of
// Service, the transaction that takes the table from one state to the next (only what changed, in an
// order where every reference is valid), the state read back from `nft -j` after a restart (no
// rewrite when nothing changed), clashes between Services, and a bad Service not sinking a batch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildServiceModel, type ServiceModel } from '../../src/agent/network/proxy/model.js';
import { DesiredTable, emptyState, plan, stateScope, type TableState } from '../../src/agent/network/proxy/nft-diff.js';
import { reservedKeys, serviceFragment, staticFragment, type StaticOptions } from '../../src/agent/network/proxy/nft-rules.js';
import { parseTableJson } from '../../src/agent/network/proxy/nft-state.js';
import { NftRuleWriter } from '../../src/agent/network/proxy/nft-writer.js';

const opts: StaticOptions = { podBridge: 'skiff0', localDns: { clusterIp: '10.43.0.10', address: '10.42.1.1' } };
const svc = (name: string, spec: any): any => ({ metadata: { namespace: 'ns', name }, spec });
const slice = (svcName: string, ips: string[], node = 'b'): any => ({
  metadata: { namespace: 'ns', name: `${svcName}-x`, labels: { 'kubernetes.io/service-name': svcName } }, addressType: 'IPv4',
  endpoints: ips.map((ip) => ({ addresses: [ip], nodeName: node, conditions: { ready: true } })), ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
});
const model = (name: string, spec: any, ips: string[], node = 'b') =>
  buildServiceModel(svc(name, { clusterIP: '10.43.0.20', ports: [{ name: 'http', port: 80 }], ...spec }), [slice(name, ips, node)], { nodeName: 'a', reserved: reservedKeys(opts) })!;

function tableOf(models: ServiceModel[]): DesiredTable {
  const d = new DesiredTable();
  d.set('', staticFragment(opts));
  for (const m of models) d.set(m.key, serviceFragment(m, opts));
  return d;
}

test('a fresh table: hooks, maps, dispatch by numgen, DNAT per endpoint, cluster DNS to the node', () => {
  const d = tableOf([model('web', { type: 'NodePort', ports: [{ name: 'http', port: 80, nodePort: 30123 }] }, ['10.42.2.5', '10.42.2.6'])]);
  const p = plan('ip', 'skiff-proxy', emptyState(), d, d.scope());
  const s = p.lines.join('\n');
  assert.equal(p.lines[0], 'add table ip skiff-proxy');
  assert.match(s, /add map ip skiff-proxy service-ips \{ type ipv4_addr \. inet_proto \. inet_service : verdict; \}/);
  assert.match(s, /add chain ip skiff-proxy nat-prerouting \{ type nat hook prerouting priority -100; policy accept; \}/);
  assert.match(s, /add chain ip skiff-proxy filter-forward \{ type filter hook forward priority -110; policy accept; \}/);
  assert.match(s, /add element ip skiff-proxy service-ips \{ 10\.43\.0\.20 \. tcp \. 80 : goto service-[0-9A-F]{8}-ns\/web\/tcp\/http \}/);
  assert.match(s, /add element ip skiff-proxy service-nodeports \{ tcp \. 30123 : goto external-[0-9A-F]{8}-ns\/web\/tcp\/http \}/);
  assert.match(s, /numgen random mod 2 vmap \{ 0 : goto endpoint-\S+__10\.42\.2\.5\/8080, 1 : goto endpoint-\S+__10\.42\.2\.6\/8080 \}/);
  assert.match(s, /meta l4proto tcp dnat to 10\.42\.2\.5:8080/);
  assert.match(s, /ip saddr 10\.42\.2\.5 jump mark-for-masquerade/, 'hairpin');
  assert.match(s, /add element ip skiff-proxy service-ips \{ 10\.43\.0\.10 \. udp \. 53 : goto cluster-dns \}/);
  assert.match(s, /dnat to 10\.42\.1\.1:53/);
  assert.match(s, /fib daddr type local ip daddr != 127\.0\.0\.0\/8 meta l4proto \. th dport vmap @service-nodeports/, 'NodePorts on local addresses, not loopback');
  assert.doesNotMatch(s, /flush table|delete table/);
  // Every chain's first rule carries its fingerprint; chains are created before elements point at them.
  const firstElement = p.lines.findIndex((l) => l.startsWith('add element'));
  const lastChain = p.lines.map((l) => l.startsWith('add chain')).lastIndexOf(true);
  assert.ok(lastChain < firstElement);
  // Applied, the same desired table plans nothing.
  const state = emptyState();
  p.commit(state);
  assert.deepEqual(plan('ip', 'skiff-proxy', state, d, stateScope(state, d.scope())).lines, []);
});

test('--nodeport-addresses: NodePorts only on the listed addresses (a set), not every local address', () => {
  const d = new DesiredTable();
  d.set('', staticFragment({ podBridge: 'skiff0', nodePortIps: ['192.168.5.10', '10.0.0.3'] }));
  const s = plan('ip', 't', emptyState(), d, d.scope()).lines.join('\n');
  assert.match(s, /add set ip t nodeport-ips \{ type ipv4_addr; \}/);
  assert.match(s, /add element ip t nodeport-ips \{ 192\.168\.5\.10 \}/);
  assert.match(s, /add rule ip t services ip daddr @nodeport-ips meta l4proto \. th dport vmap @service-nodeports/);
  assert.doesNotMatch(s, /fib daddr type local/);
  assert.doesNotMatch(s, /cluster-dns/, 'no DNS redirect unless asked');
});

test('no endpoints: refused (reject); externalTrafficPolicy Local without a local endpoint: dropped', () => {
  const d = tableOf([
    model('empty', { clusterIP: '10.43.0.21' }, []),
    model('loc', { clusterIP: '10.43.0.22', type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ name: 'http', port: 80, nodePort: 30200 }] }, ['10.42.2.5']),
  ]);
  const s = plan('ip', 't', emptyState(), d, d.scope()).lines.join('\n');
  assert.match(s, /add element ip t no-endpoint-services \{ 10\.43\.0\.21 \. tcp \. 80 : goto reject-chain \}/);
  assert.match(s, /add element ip t no-endpoint-nodeports \{ tcp \. 30200 : drop \}/);
  assert.match(s, /add rule ip t reject-chain reject/);
  // Pods and the node itself still reach it (short-circuit to the cluster chain); nothing masquerades outsiders.
  assert.match(s, /external-\S+ iifname "skiff0" goto service-/);
  assert.doesNotMatch(s, /add rule ip t external-\S+ jump mark-for-masquerade/);
});

test('an endpoint change rewrites only that Service\'s chains and elements', () => {
  const others = Array.from({ length: 50 }, (_, i) => model(`s${i}`, { clusterIP: `10.43.1.${i + 1}` }, [`10.42.3.${i + 1}`]));
  const d = tableOf([...others, model('web', {}, ['10.42.2.5'])]);
  const state = emptyState();
  plan('ip', 'skiff-proxy', state, d, d.scope()).commit(state);
  const { scope } = d.set('ns/web', serviceFragment(model('web', {}, ['10.42.2.5', '10.42.2.6']), opts));
  const p = plan('ip', 'skiff-proxy', state, d, scope);
  const s = p.lines.join('\n');
  assert.ok(p.lines.length <= 10, `small transaction:\n${s}`);
  assert.doesNotMatch(s, /\/s\d+\//, 'no other Service touched');
  assert.match(s, /flush chain ip skiff-proxy service-\S+\/web\//);
  assert.match(s, /add chain ip skiff-proxy endpoint-\S+__10\.42\.2\.6\/8080/);
  assert.doesNotMatch(s, /flush chain ip skiff-proxy endpoint-\S+__10\.42\.2\.5/, 'the unchanged endpoint chain stays');
  p.commit(state);

  // Removing the Service: its element goes before its chains are emptied, and chains are emptied before deletion.
  const r = d.set('ns/web', undefined);
  const del = plan('ip', 'skiff-proxy', state, d, r.scope).lines;
  const iElem = del.findIndex((l) => l.startsWith('delete element ip skiff-proxy service-ips { 10.43.0.20 . tcp . 80 }'));
  const iFlush = del.findIndex((l) => l.startsWith('flush chain') && l.includes('/web/'));
  const iDelete = del.findIndex((l) => l.startsWith('delete chain') && l.includes('/web/'));
  assert.ok(iElem >= 0 && iElem < iFlush && iFlush < iDelete, del.join('\n'));
  assert.equal(del.filter((l) => l.startsWith('delete chain')).length, 3, 'service chain and two endpoint chains');
});

test('two Services claiming one address and port: the smaller key wins, the other takes over when it goes', () => {
  const a = model('a', { clusterIP: '10.43.0.31', externalIPs: ['192.0.2.7'] }, ['10.42.2.5']);
  const b = model('b', { clusterIP: '10.43.0.32', externalIPs: ['192.0.2.7'] }, ['10.42.2.6']);
  const d = tableOf([b, a]);
  const state = emptyState();
  const first = plan('ip', 't', state, d, d.scope());
  const claims = first.lines.filter((l) => l.includes('{ 192.0.2.7 . tcp . 80'));
  assert.equal(claims.length, 1);
  assert.match(claims[0]!, /\/a\/tcp\/http/);
  first.commit(state);
  const { scope } = d.set('ns/a', undefined);
  const next = plan('ip', 't', state, d, scope).lines;
  const i = next.findIndex((l) => l.startsWith('delete element ip t service-ips { 192.0.2.7'));
  const j = next.findIndex((l) => l.startsWith('add element ip t service-ips { 192.0.2.7') && l.includes('/b/'));
  assert.ok(i >= 0 && j > i, next.join('\n'));
});

test('session affinity: a timeout set per endpoint, checked before the random pick', () => {
  const d = tableOf([model('web', { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }, ['10.42.2.5', '10.42.2.6'])]);
  const lines = plan('ip', 't', emptyState(), d, d.scope()).lines;
  const s = lines.join('\n');
  assert.match(s, /add set ip t affinity-\S+__10\.42\.2\.5\/8080 \{ type ipv4_addr; flags dynamic,timeout; \}/);
  assert.match(s, /update @affinity-\S+__10\.42\.2\.5\/8080 \{ ip saddr timeout 60s \}/);
  const svcRules = lines.filter((l) => /add rule ip t service-/.test(l));
  assert.match(svcRules[1]!, /ip saddr @affinity-\S+ goto endpoint-/);
  assert.match(svcRules.at(-1)!, /numgen random mod 2/);
});

test('state read back from `nft -j list table`: an unchanged table plans nothing; a changed chain is rewritten', () => {
  const d = tableOf([model('web', {}, ['10.42.2.5'])]);
  const state = emptyState();
  const p = plan('ip', 'skiff-proxy', state, d, d.scope());
  p.commit(state);
  const json = toNftJson(p.lines);
  const read = parseTableJson(json);
  assert.deepEqual([...read.chains].sort(), [...state.chains].sort());
  assert.deepEqual([...read.elements].sort(), [...state.elements].sort());
  assert.deepEqual(plan('ip', 'skiff-proxy', read, d, stateScope(read, d.scope())).lines, []);
  // An endpoint added while the agent was down: only that Service is rewritten; a stray chain goes.
  const read2 = parseTableJson(json.replace('"nftables":[', '"nftables":[{"chain": {"family": "ip", "table": "skiff-proxy", "name": "stray"}},'));
  d.set('ns/web', serviceFragment(model('web', {}, ['10.42.2.5', '10.42.2.6']), opts));
  const after = plan('ip', 'skiff-proxy', read2, d, stateScope(read2, d.scope())).lines;
  assert.ok(after.includes('delete chain ip skiff-proxy stray'), after.join('\n'));
  assert.ok(after.some((l) => l.includes('10.42.2.6')));
  assert.ok(!after.some((l) => l.includes('add chain ip skiff-proxy nat-')), 'static chains untouched');
});

test('the writer: one transaction per batch; a Service the kernel refuses does not sink the others', async () => {
  const scripts: string[] = [];
  const w = new NftRuleWriter({
    ...opts, table: 't',
    read: async () => emptyState(),
    run: async (s) => { if (s.includes('/bad/')) throw new Error('Error: Could not process rule'); scripts.push(s); },
  });
  await w.init([model('web', {}, ['10.42.2.5'])]);
  assert.equal(scripts.length, 1);
  const failed = await w.apply(new Map<string, ServiceModel | undefined>([
    ['ns/bad', model('bad', { clusterIP: '10.43.0.50' }, ['10.42.2.9'])],
    ['ns/ok', model('ok', { clusterIP: '10.43.0.51' }, ['10.42.2.8'])],
  ]));
  assert.deepEqual(failed, ['ns/bad']);
  assert.equal(scripts.length, 2);
  assert.match(scripts[1]!, /\/ok\//);
  // Once in the kernel, a fragment keeps fingerprints only (its rule text is released).
  assert.ok([...(w as any).desired.get('ns/ok').chains.values()].every((c: any) => c.rules.length === 0 && c.fp));
  // Nothing to do: no transaction at all.
  assert.deepEqual(await w.apply(new Map([['ns/ok', model('ok', { clusterIP: '10.43.0.51' }, ['10.42.2.8'])]])), []);
  assert.equal(scripts.length, 2);
});

/** What `nft -j list table` would print for a table built by `lines` (enough of its shape for the reader). */
function toNftJson(lines: string[]): string {
  const items: any[] = [{ metainfo: { version: '1.0.6' } }, { table: { family: 'ip', name: 'skiff-proxy' } }];
  const maps = new Map<string, any>();
  for (const l of lines) {
    let m: RegExpMatchArray | null;
    if ((m = l.match(/^add (map|set) ip skiff-proxy (\S+) \{ (.*) \}$/))) {
      const o = { family: 'ip', name: m[2], table: 'skiff-proxy', elem: [] as any[], ...(m[3]!.includes('timeout') ? { flags: ['timeout'] } : {}) };
      maps.set(m[2]!, { kind: m[1], o });
      items.push({ [m[1]!]: o });
    } else if ((m = l.match(/^add chain ip skiff-proxy (\S+)/))) {
      items.push({ chain: { family: 'ip', table: 'skiff-proxy', name: m[1] } });
    } else if ((m = l.match(/^add rule ip skiff-proxy (\S+) (.*?)(?: comment "(.*)")?$/))) {
      items.push({ rule: { family: 'ip', table: 'skiff-proxy', chain: m[1], ...(m[3] ? { comment: m[3] } : {}), expr: [] } });
    } else if ((m = l.match(/^add element ip skiff-proxy (\S+) \{ (.*?)(?: : (.*))? \}$/))) {
      const parts = m[2]!.split(' . ').map((x) => (/^\d+$/.test(x) ? Number(x) : x));
      const key = parts.length > 1 ? { concat: parts } : parts[0];
      const v = m[3];
      const val = v === undefined ? undefined : v.startsWith('goto ') ? { goto: { target: v.slice(5) } } : { [v]: null };
      maps.get(m[1]!).o.elem.push(val === undefined ? key : [key, val]);
    }
  }
  return JSON.stringify({ nftables: items });
}

void (undefined as unknown as TableState);
