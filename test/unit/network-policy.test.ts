// NetworkPolicy as nftables: the model (policyTypes defaults, peers, ports), the fragments, and the
// writer's diff (a pod change is a set-element change, a restart with nothing changed writes nothing).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildPolicyModel, namespaceLabels, nodeDnsPeer, podInfo, policyTypes, SetIndex } from '../../src/agent/network/policy/model.js';
import { dispatchFragment, EGRESS_ISOLATED, exceptSetName, INGRESS_ISOLATED, LOCAL_PODS, podFragment, policyFragment, rulesOf, staticFragment } from '../../src/agent/network/policy/nft-rules.js';
import { PolicyTableWriter } from '../../src/agent/network/policy/writer.js';
import { emptyState, type TableState } from '../../src/agent/network/proxy/nft-diff.js';
import { parseTableJson } from '../../src/agent/network/proxy/nft-state.js';
import { splitElementKey } from '../../src/agent/network/proxy/nft-rules.js';

const np = (name: string, spec: Record<string, any>, namespace = 'shop') => ({ apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy', metadata: { name, namespace }, spec });
const pod = (name: string, labels: Record<string, string>, ip: string, extra: Record<string, any> = {}) => ({
  metadata: { name, namespace: extra.namespace ?? 'shop', uid: `uid-${name}`, labels },
  spec: { nodeName: extra.nodeName ?? 'n1', containers: [{ name: 'c', ports: extra.ports ?? [] }], hostNetwork: extra.hostNetwork },
  status: { phase: extra.phase ?? 'Running', podIP: ip, podIPs: [{ ip }] },
});
const noNs = (ns: string) => namespaceLabels(undefined, ns);
const elements = (f: { elements: Map<string, string> }) => [...f.elements.keys()].map((k) => { const { container, key } = splitElementKey(k); return `${container} ${key}`; }).sort();

test('policyTypes default as the API defaults them: Ingress always, Egress only with egress rules', () => {
  assert.deepEqual(policyTypes({}), { ingress: true, egress: false });
  assert.deepEqual(policyTypes({ egress: [] }), { ingress: true, egress: false });
  assert.deepEqual(policyTypes({ egress: [{}] }), { ingress: true, egress: true });
  assert.deepEqual(policyTypes({ policyTypes: ['Egress'], ingress: [{}] }), { ingress: false, egress: true });
});

test('default deny: selected local pods are isolated and nothing is allowed; other namespaces are not', () => {
  const index = new SetIndex();
  const m = buildPolicyModel(np('deny', { podSelector: {}, policyTypes: ['Ingress', 'Egress'] }) as any, index);
  assert.deepEqual(rulesOf(m, 'ingress'), []);
  assert.deepEqual(rulesOf(m, 'egress'), []);
  const d = dispatchFragment([m]);
  assert.deepEqual(d.chains.get('ingress')!.rules, ['fib saddr type local accept', 'counter drop']);
  assert.deepEqual(d.chains.get('egress')!.rules, ['counter drop']);
  const a = podFragment(podInfo(pod('a', { app: 'a' }, '10.42.0.5'), 'n1')!, index, noNs);
  assert.deepEqual(elements(a), [`${EGRESS_ISOLATED} 10.42.0.5`, `${INGRESS_ISOLATED} 10.42.0.5`, `${LOCAL_PODS} 10.42.0.5`, `${m.selectedSet} 10.42.0.5`].sort());
  const other = podFragment(podInfo(pod('b', {}, '10.42.0.6', { namespace: 'web' }), 'n1')!, index, noNs);
  assert.deepEqual(elements(other), [`${LOCAL_PODS} 10.42.0.6`]);
  // A pod of another node is never isolated here (its own node does that).
  const remote = podFragment(podInfo(pod('c', {}, '10.42.1.6', { nodeName: 'n2' }), 'n1')!, index, noNs);
  assert.deepEqual(elements(remote), []);
});

test('peers: pod selector in the policy namespace, namespace selector, both, ipBlock with except', () => {
  const index = new SetIndex();
  const m = buildPolicyModel(np('allow', {
    podSelector: { matchLabels: { app: 'db' } },
    ingress: [{
      from: [
        { podSelector: { matchLabels: { app: 'api' } } },
        { namespaceSelector: { matchLabels: { team: 'ops' } } },
        { namespaceSelector: { matchLabels: { team: 'ops' } }, podSelector: { matchLabels: { role: 'backup' } } },
        { ipBlock: { cidr: '192.168.7.1/24', except: ['192.168.7.128/25'] } },
        { ipBlock: { cidr: '2001:db8::/64' } },
      ],
      ports: [{ protocol: 'TCP', port: 5432 }, { protocol: 'TCP', port: 6000, endPort: 6010 }, { protocol: 'UDP' }],
    }],
  }) as any, index);
  const rules = rulesOf(m, 'ingress');
  const peers = [...index.sets.values()].filter((s) => s.kind === 'peer').map((s) => s.name);
  assert.equal(peers.length, 3);
  // 4 peers (the IPv6 block does not apply to this IPv4 table) × 3 port matches (two TCP, all of UDP).
  assert.equal(rules.length, 12);
  const except = exceptSetName(['192.168.7.128/25']);
  assert.ok(rules.includes(`ip daddr @${m.selectedSet} ip saddr 192.168.7.0/24 ip saddr != @${except} meta l4proto tcp th dport 6000-6010 accept`), rules.join('\n'));
  assert.ok(rules.includes(`ip daddr @${m.selectedSet} ip saddr 192.168.7.0/24 ip saddr != @${except} meta l4proto tcp th dport 5432 accept`));
  assert.ok(!rules.some((r) => r.includes('{')), 'no anonymous sets');
  assert.deepEqual(elements(policyFragment(m)), [`${except} 192.168.7.128/25`]);
  assert.ok(rules.includes(`ip daddr @${m.selectedSet} ip saddr @${peers[0]} meta l4proto udp accept`));

  const nsLabels = (ns: string) => (ns === 'infra' ? { 'kubernetes.io/metadata.name': 'infra', team: 'ops' } : noNs(ns));
  const set = (p: ReturnType<typeof pod>) => elements(podFragment(podInfo(p, 'n1')!, index, nsLabels));
  // api in shop: the pod-selector peer only.
  assert.deepEqual(set(pod('api', { app: 'api' }, '10.42.0.7', { nodeName: 'n2' })), [`${peers[0]} 10.42.0.7`]);
  // any pod of infra: the namespace peer; a backup pod of infra: both namespace peers.
  assert.deepEqual(set(pod('x', {}, '10.42.1.8', { namespace: 'infra', nodeName: 'n2' })), [`${peers[1]} 10.42.1.8`]);
  assert.deepEqual(set(pod('y', { role: 'backup' }, '10.42.1.9', { namespace: 'infra', nodeName: 'n2' })), [`${peers[1]} 10.42.1.9`, `${peers[2]} 10.42.1.9`].sort());
  // a backup pod in shop: neither namespace peer (the namespace does not match).
  assert.deepEqual(set(pod('z', { role: 'backup' }, '10.42.0.10', { nodeName: 'n2' })), []);
});

test('named ports resolve in the destination pod; egress rules go on to the ingress check', () => {
  const index = new SetIndex();
  const m = buildPolicyModel(np('web', {
    podSelector: {},
    policyTypes: ['Egress'],
    egress: [{ to: [{ podSelector: { matchLabels: { app: 'web' } } }], ports: [{ port: 'http' }] }, { ports: [{ protocol: 'UDP', port: 53 }] }],
  }) as any, index);
  const rules = rulesOf(m, 'egress');
  assert.deepEqual(rules.slice(1), [`ip saddr @${m.selectedSet} meta l4proto udp th dport 53 goto post-egress`]);
  assert.match(rules[0]!, /meta l4proto tcp ip daddr \. meta l4proto \. th dport @port-http goto post-egress$/);
  const f = policyFragment(m);
  assert.equal(f.containers.get('port-http')!.body, 'type ipv4_addr . inet_proto . inet_service;');
  const web = podFragment(podInfo(pod('w', { app: 'web' }, '10.42.0.20', { ports: [{ name: 'http', containerPort: 8080 }, { name: 'metrics', containerPort: 9090 }] }), 'n1')!, index, noNs);
  assert.ok(elements(web).includes('port-http 10.42.0.20 . tcp . 8080'));
  assert.ok(!elements(web).some((e) => e.startsWith('port-metrics')));
  assert.ok(elements(web).includes(`${EGRESS_ISOLATED} 10.42.0.20`));
  assert.ok(!elements(web).includes(`${INGRESS_ISOLATED} 10.42.0.20`));
});

test('the node-local DNS server stands in for the kube-dns pods', () => {
  const index = new SetIndex();
  const m = buildPolicyModel(np('dns', {
    podSelector: {}, policyTypes: ['Egress'],
    egress: [{ to: [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'kube-system' } }, podSelector: { matchLabels: { 'k8s-app': 'kube-dns' } } }], ports: [{ protocol: 'UDP', port: 53 }] }],
  }) as any, index);
  const peer = [...index.sets.values()].find((s) => s.kind === 'peer')!.name;
  assert.deepEqual(elements(podFragment(nodeDnsPeer('10.42.0.1'), index, noNs)), [`${peer} 10.42.0.1`]);
  assert.equal(m.egress!.length, 1);
});

test('pods policies ignore: host network, finished, no IP yet (unless the worker admitted one)', () => {
  assert.equal(podInfo(pod('h', {}, '192.168.1.2', { hostNetwork: true }), 'n1'), undefined);
  assert.equal(podInfo(pod('d', {}, '10.42.0.3', { phase: 'Succeeded' }), 'n1'), undefined);
  const fresh = { metadata: { name: 'f', namespace: 'shop', uid: 'u' }, spec: { nodeName: 'n1', containers: [] }, status: {} };
  assert.equal(podInfo(fresh, 'n1'), undefined);
  assert.deepEqual(podInfo(fresh, 'n1', ['10.42.0.9'])!.ips, ['10.42.0.9']);
});

/** A fake kernel: applies the writer's scripts to a TableState as nft would. */
function fakeKernel() {
  const state: TableState = emptyState();
  const scripts: string[] = [];
  const run = async (script: string) => {
    scripts.push(script);
    for (const line of script.trim().split('\n')) {
      let m: RegExpExecArray | null;
      if (/^add table /.test(line)) state.exists = true;
      else if ((m = /^add (set|map) ip \S+ (\S+) /.exec(line))) state.containers.set(m[2]!, m[1] as 'set');
      else if ((m = /^add element ip \S+ (\S+) \{ (.*) \}$/.exec(line))) state.elements.set(`${m[1]}\u0000${m[2]}`, '');
      else if ((m = /^delete element ip \S+ (\S+) \{ (.*) \}$/.exec(line))) state.elements.delete(`${m[1]}\u0000${m[2]}`);
      else if ((m = /^add chain ip \S+ (\S+)/.exec(line))) state.chains.set(m[1]!, '0:none');
      else if ((m = /^flush chain ip \S+ (\S+)/.exec(line))) state.chains.set(m[1]!, '0:none');
      else if ((m = /^delete chain ip \S+ (\S+)/.exec(line))) state.chains.delete(m[1]!);
      else if ((m = /^delete set ip \S+ (\S+)/.exec(line))) state.containers.delete(m[1]!);
      else if ((m = /^add rule ip \S+ (\S+) .*?(?:comment "skiff:(\w+)")?$/.exec(line))) {
        const [n, h] = state.chains.get(m[1]!)!.split(':');
        state.chains.set(m[1]!, `${Number(n) + 1}:${m[2] ?? h}`);
      }
    }
  };
  const read = async () => structuredClone(state);
  return { state, scripts, run, read };
}

test('the writer: a pod joining a selector is one element line; a restart with nothing changed writes nothing', async () => {
  const k = fakeKernel();
  const index = new SetIndex();
  const m = buildPolicyModel(np('deny', { podSelector: { matchLabels: { app: 'a' } } }) as any, index);
  const frags = new Map([['', staticFragment()], ['~dispatch', dispatchFragment([m])], ['policy/shop/deny', policyFragment(m)]]);
  const w = new PolicyTableWriter({ table: 't', run: k.run, read: k.read });
  await w.init(frags);
  assert.ok(k.scripts[0]!.includes('add chain ip t forward { type filter hook forward priority 0; policy accept; }'));
  await w.apply(new Map([['pod/shop/a', podFragment(podInfo(pod('a', { app: 'a' }, '10.42.0.5'), 'n1')!, index, noNs)]]));
  assert.deepEqual(k.scripts[1]!.trim().split('\n').sort(), [`add element ip t ${INGRESS_ISOLATED} { 10.42.0.5 }`, `add element ip t ${LOCAL_PODS} { 10.42.0.5 }`, `add element ip t ${m.selectedSet} { 10.42.0.5 }`].sort());
  // The pod goes: its elements go, nothing else.
  await w.apply(new Map([['pod/shop/a', undefined]]));
  assert.ok(k.scripts[2]!.trim().split('\n').every((l) => l.startsWith('delete element')));
  // Restart: a new writer reads the kernel and writes nothing.
  const again = new PolicyTableWriter({ table: 't', run: k.run, read: k.read });
  const before = k.scripts.length;
  await again.init(frags);
  assert.equal(k.scripts.length, before);
});

test('state read back from nft: named-port elements keep their `ip . proto . port` form', () => {
  const s = parseTableJson(JSON.stringify({ nftables: [{ set: { family: 'ip', name: 'port-http', table: 't', type: ['ipv4_addr', 'inet_proto', 'inet_service'], elem: [{ concat: ['10.0.0.5', 'tcp', 8080] }] } }] }));
  assert.ok(s.elements.has('port-http\u000010.0.0.5 . tcp . 8080'));
});

test('element lines are merged per set within a run (fewer nft commands), order kept around other commands', async () => {
  const { groupElements } = await import('../../src/agent/network/policy/writer.js');
  assert.deepEqual(groupElements([
    'add set ip t a { type ipv4_addr; }',
    'delete element ip t a { 1.1.1.1 }', 'delete element ip t b { 2.2.2.2 }', 'delete element ip t a { 3.3.3.3 }',
    'flush chain ip t c',
    'add element ip t a { 4.4.4.4 }', 'add element ip t p { 5.5.5.5 . tcp . 80 }', 'add element ip t a { 6.6.6.6 }',
  ]), [
    'add set ip t a { type ipv4_addr; }',
    'delete element ip t a { 1.1.1.1, 3.3.3.3 }', 'delete element ip t b { 2.2.2.2 }',
    'flush chain ip t c',
    'add element ip t a { 4.4.4.4, 6.6.6.6 }', 'add element ip t p { 5.5.5.5 . tcp . 80 }',
  ]);
});
