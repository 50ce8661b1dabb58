// The nftables objects of NetworkPolicy enforcement, in a table of their own (`ip skiff-netpol`):
//
//   forward (hook forward)   established/related → accept; from an egress-isolated pod → egress;
//                            to an ingress-isolated pod → ingress
//   input   (hook input)     the same for egress (a pod talking to its node: DNS, the API server)
//   egress                   jump to every Egress policy's chain; nothing allowed it → drop
//   <policy egress chain>    `ip saddr @selected <peer> <port> goto post-egress`, one rule per peer and port kind
//   post-egress              the destination may be an isolated pod too → ingress; else accept
//   ingress                  the node itself → accept (probes); jump to every Ingress policy's chain; → drop
//   <policy ingress chain>   `ip daddr @selected <peer> <port> accept`
//
// Forwarded traffic is seen after the service proxy's DNAT (prerouting), so policies apply to pod
// addresses, as Kubernetes requires. Pod IPs sit in named sets (one per selector, see model.ts), the
// isolation sets and the named-port sets; pods own their set elements, policies own chains and sets,
// so nft-diff.ts turns a pod change into element changes only.
import { createHash } from 'node:crypto';
import { elementKey, emptyFragment, type TableFragment } from '../proxy/nft-rules.js';
import { hash, portSetName, type PeerModel, type PodInfo, type PolicyModel, type PortModel, type Protocol, type SetIndex } from './model.js';

export const INGRESS_ISOLATED = 'ingress-isolated';
/** Every pod of this node whose rules are in place (admitted or known from the API). */
export const LOCAL_PODS = 'local-pods';
export const EGRESS_ISOLATED = 'egress-isolated';
const INGRESS = 'ingress';
const EGRESS = 'egress';
const POST_EGRESS = 'post-egress';
const ADDR_SET = 'type ipv4_addr;';
const PORT_SET = 'type ipv4_addr . inet_proto . inet_service;';

/**
 * `podCidr` (this node's pod range on skiff's own bridge): an address in it that is no known pod's
 * receives nothing. CNI gives a sandbox its address before the agent can program the pod's rules; this
 * closes that window, so a pod under a deny policy never sees an unwanted packet.
 */
export function staticFragment(podCidr?: string): TableFragment {
  const f = emptyFragment();
  const base = (hook: string) => `type filter hook ${hook} priority 0; policy accept;`;
  f.chains.set('forward', { base: base('forward'), rules: [
    'ct state established,related accept',
    ...(podCidr ? [`ip daddr ${podCidr} ip daddr != @${LOCAL_PODS} counter drop`] : []),
    `ip saddr @${EGRESS_ISOLATED} goto ${EGRESS}`,
    `ip daddr @${INGRESS_ISOLATED} goto ${INGRESS}`,
  ] });
  f.chains.set('input', { base: base('input'), rules: [
    'ct state established,related accept',
    `ip saddr @${EGRESS_ISOLATED} goto ${EGRESS}`,
  ] });
  f.chains.set(POST_EGRESS, { rules: [`ip daddr @${INGRESS_ISOLATED} goto ${INGRESS}`, 'accept'] });
  f.containers.set(INGRESS_ISOLATED, { kind: 'set', body: ADDR_SET });
  f.containers.set(EGRESS_ISOLATED, { kind: 'set', body: ADDR_SET });
  f.containers.set(LOCAL_PODS, { kind: 'set', body: ADDR_SET });
  return f;
}

function named(prefix: string, key: string): string {
  const out = `${prefix}-${createHash('sha256').update(key).digest('hex').slice(0, 8).toUpperCase()}-${key}`;
  return out.length > 230 ? `${out.slice(0, 227)}...` : out;
}
export const ingressChain = (p: PolicyModel) => named('ingress', p.key);
export const egressChain = (p: PolicyModel) => named('egress', p.key);

/** The dispatch chains: every policy's chain, in key order, then the default deny. */
export function dispatchFragment(policies: Iterable<PolicyModel>): TableFragment {
  const f = emptyFragment();
  const sorted = [...policies].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  // Traffic from the node itself (kubelet probes, host-network pods) always reaches its pods, as with
  // Kubernetes' own plugins; NetworkPolicy cannot block it.
  const ingress = ['fib saddr type local accept'];
  const egress: string[] = [];
  for (const p of sorted) {
    if (p.ingress && rulesOf(p, 'ingress').length) ingress.push(`jump ${ingressChain(p)}`);
    if (p.egress && rulesOf(p, 'egress').length) egress.push(`jump ${egressChain(p)}`);
  }
  ingress.push('counter drop');
  egress.push('counter drop');
  f.chains.set(INGRESS, { rules: ingress });
  f.chains.set(EGRESS, { rules: egress });
  return f;
}

const ruleCache = new WeakMap<PolicyModel, { ingress: string[]; egress: string[] }>();

/** The rules of a policy's chain for one direction (empty: the chain is not made). */
export function rulesOf(p: PolicyModel, dir: 'ingress' | 'egress'): string[] {
  let c = ruleCache.get(p);
  if (!c) {
    c = { ingress: directionRules(p, 'ingress'), egress: directionRules(p, 'egress') };
    ruleCache.set(p, c);
  }
  return c[dir];
}

function directionRules(p: PolicyModel, dir: 'ingress' | 'egress'): string[] {
  const rules = p[dir];
  if (!rules) return [];
  const self = dir === 'ingress' ? `ip daddr @${p.selectedSet}` : `ip saddr @${p.selectedSet}`;
  const peerAddr = dir === 'ingress' ? 'saddr' : 'daddr';
  const verdict = dir === 'ingress' ? 'accept' : `goto ${POST_EGRESS}`;
  const out: string[] = [];
  for (const r of rules) {
    const peers = r.peers === undefined ? [''] : r.peers.map((x) => peerMatch(x, peerAddr));
    const ports = r.ports === undefined ? [''] : portMatches(r.ports);
    for (const pm of peers) for (const po of ports) out.push([self, pm, po, verdict].filter(Boolean).join(' '));
  }
  return [...new Set(out)];
}

function peerMatch(peer: PeerModel, addr: 'saddr' | 'daddr'): string {
  if (peer.kind === 'pods') return `ip ${addr} @${peer.set}`;
  // The excepts in a named interval set (see portMatches on anonymous sets).
  return `ip ${addr} ${peer.cidr}${peer.except.length ? ` ip ${addr} != @${exceptSetName(peer.except)}` : ''}`;
}

export const exceptSetName = (except: string[]) => `except-${hash(except.join(','))}`;

/** An except set's elements as nft lists them: a /32 as a plain address. */
const intervalKey = (cidr: string) => cidr.endsWith('/32') ? cidr.slice(0, -3) : cidr;

/**
 * One match per port entry. No anonymous sets (`{ 80, 443 }`): nft reads every rule's anonymous sets
 * back before each transaction, which would make a pod's one-element change cost O(rules).
 */
function portMatches(ports: PortModel[]): string[] {
  const whole = new Set(ports.filter((p) => !p.name && p.port === undefined).map((p) => p.protocol));
  const out: string[] = [];
  for (const p of ports) {
    if (p.name) {
      // The destination pod's own port of that name: its address, protocol and number are in the set.
      out.push(`meta l4proto ${p.protocol} ip daddr . meta l4proto . th dport @${portSetName(p.name)}`);
    } else if (p.port === undefined) {
      out.push(`meta l4proto ${p.protocol}`);
    } else if (!whole.has(p.protocol)) {
      out.push(`meta l4proto ${p.protocol} th dport ${p.endPort !== undefined ? `${p.port}-${p.endPort}` : p.port}`);
    }
  }
  return [...new Set(out)];
}

/** A policy's chains and the sets its rules name (sets shared by several policies are declared by each). */
export function policyFragment(p: PolicyModel): TableFragment {
  const f = emptyFragment();
  const ingress = rulesOf(p, 'ingress');
  const egress = rulesOf(p, 'egress');
  if (ingress.length) f.chains.set(ingressChain(p), { rules: ingress });
  if (egress.length) f.chains.set(egressChain(p), { rules: egress });
  f.containers.set(p.selectedSet, { kind: 'set', body: ADDR_SET });
  for (const r of [...(p.ingress ?? []), ...(p.egress ?? [])]) {
    for (const peer of r.peers ?? []) {
      if (peer.kind === 'pods') f.containers.set(peer.set, { kind: 'set', body: ADDR_SET });
      else if (peer.except.length) {
        const name = exceptSetName(peer.except);
        f.containers.set(name, { kind: 'set', body: 'type ipv4_addr; flags interval;' });
        for (const e of peer.except) f.elements.set(elementKey(name, intervalKey(e)), '');
      }
    }
    for (const port of r.ports ?? []) if (port.name) f.containers.set(portSetName(port.name), { kind: 'set', body: PORT_SET });
  }
  return f;
}

/** A pod's set elements: the selector sets it is in, its isolation, its named ports. */
export function podFragment(pod: PodInfo, index: SetIndex, namespaceLabels: (ns: string) => Record<string, string>): TableFragment {
  const f = emptyFragment();
  let ingress = false;
  let egress = false;
  for (const s of index.setsOf(pod, namespaceLabels)) {
    for (const ip of pod.ips) f.elements.set(elementKey(s.name, ip), '');
    if (s.ingress) ingress = true;
    if (s.egress) egress = true;
  }
  for (const ip of pod.ips) {
    if (pod.local) f.elements.set(elementKey(LOCAL_PODS, ip), '');
    if (ingress) f.elements.set(elementKey(INGRESS_ISOLATED, ip), '');
    if (egress) f.elements.set(elementKey(EGRESS_ISOLATED, ip), '');
  }
  for (const port of pod.ports) {
    if (!index.portNames.has(port.name)) continue;
    for (const ip of pod.ips) f.elements.set(elementKey(portSetName(port.name), `${ip} . ${port.protocol} . ${port.port}`), '');
  }
  return f;
}
