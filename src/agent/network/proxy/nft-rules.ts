// The nftables objects of the service proxy, laid out as kube-proxy's nftables mode lays out its
// table: base chains on the netfilter hooks, a `services` dispatch chain looking the destination up
// in the `service-ips` verdict map (address . protocol . port) and `service-nodeports` (protocol .
// port, on the node's own addresses), one chain per Service port choosing an endpoint with
// `numgen random mod N vmap`, one chain per endpoint doing the DNAT, and `no-endpoint-services` /
// `no-endpoint-nodeports` consulted by the filter chains so that a Service without endpoints is
// refused at once (TCP reset / ICMP port unreachable) instead of timing out.
//
// Objects are produced as fragments (chains with their rule text, map and set elements) owned by
// one Service each (plus one static fragment); nft-diff.ts turns the difference between what is in
// the kernel and what should be into one transaction.
import { createHash } from 'node:crypto';
import { ipPortKey, reachableEndpoints, type Endpoint, type ServiceModel, type ServicePortModel } from './model.js';

export interface ChainSpec {
  /** Base chains: `type nat hook output priority -100; policy accept;`. */
  base?: string;
  rules: string[];
  /** Set once the chain is in the kernel and its rule text released (nft-diff.ts `release`). */
  fp?: string;
}

/** A container (map or set) declaration, e.g. `type ipv4_addr . inet_proto . inet_service : verdict;`. */
export interface ContainerSpec { kind: 'map' | 'set'; body: string }

export interface TableFragment {
  chains: Map<string, ChainSpec>;
  /** `container \0 key` → value (`goto chain`, `drop`...), or '' for a plain set element. */
  elements: Map<string, string>;
  containers: Map<string, ContainerSpec>;
}

export const emptyFragment = (): TableFragment => ({ chains: new Map(), elements: new Map(), containers: new Map() });

export const elementKey = (container: string, key: string) => `${container}\u0000${key}`;
export const splitElementKey = (k: string) => { const i = k.indexOf('\u0000'); return { container: k.slice(0, i), key: k.slice(i + 1) }; };

// Fixed names, as kube-proxy's.
export const SERVICE_IPS = 'service-ips';
export const SERVICE_NODEPORTS = 'service-nodeports';
export const NO_ENDPOINT_SERVICES = 'no-endpoint-services';
export const NO_ENDPOINT_NODEPORTS = 'no-endpoint-nodeports';
export const NODEPORT_IPS = 'nodeport-ips';
const SERVICES = 'services';
const ENDPOINTS_CHECK = 'endpoints-check';
const REJECT = 'reject-chain';
const MARK_MASQ = 'mark-for-masquerade';
const MASQUERADING = 'masquerading';
const CLUSTER_DNS = 'cluster-dns';
/** kube-proxy's default masquerade bit (14). */
const MASQ_MARK = '0x00004000';

export interface StaticOptions {
  /** The pod bridge: traffic entering from it comes from this node's pods (kube-proxy's BridgeInterface local detection). */
  podBridge: string;
  /** `--nodeport-addresses` resolved to this node's addresses; undefined = every local address but loopback. */
  nodePortIps?: string[];
  /** Cluster DNS: the Service IP answered on every node by the node's own DNS server at `address`. */
  localDns?: { clusterIp: string; address: string; port?: number };
}

/** The `ip . proto . port` keys the static part owns (Services may not claim them). */
export function reservedKeys(o: StaticOptions): Set<string> {
  return new Set(o.localDns ? [ipPortKey(o.localDns.clusterIp, 'udp', 53), ipPortKey(o.localDns.clusterIp, 'tcp', 53)] : []);
}

export function staticFragment(o: StaticOptions): TableFragment {
  const f = emptyFragment();
  const base = (type: string, hook: string, priority: number) => `type ${type} hook ${hook} priority ${priority}; policy accept;`;
  // Filter chains see the destination before DNAT (priority dstnat - 10); reject is only valid on
  // input/forward/output, so the endpoints check hangs there.
  for (const hook of ['input', 'forward', 'output']) f.chains.set(`filter-${hook}`, { base: base('filter', hook, -110), rules: [`ct state new jump ${ENDPOINTS_CHECK}`] });
  f.chains.set('nat-prerouting', { base: base('nat', 'prerouting', -100), rules: [`jump ${SERVICES}`] });
  f.chains.set('nat-output', { base: base('nat', 'output', -100), rules: [`jump ${SERVICES}`] });
  f.chains.set('nat-postrouting', { base: base('nat', 'postrouting', 100), rules: [`jump ${MASQUERADING}`] });
  const nodePortMatch = o.nodePortIps ? `ip daddr @${NODEPORT_IPS}` : 'fib daddr type local ip daddr != 127.0.0.0/8';
  f.chains.set(ENDPOINTS_CHECK, { rules: [
    `ip daddr . meta l4proto . th dport vmap @${NO_ENDPOINT_SERVICES}`,
    `${nodePortMatch} meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS}`,
  ] });
  f.chains.set(SERVICES, { rules: [
    `ip daddr . meta l4proto . th dport vmap @${SERVICE_IPS}`,
    `${nodePortMatch} meta l4proto . th dport vmap @${SERVICE_NODEPORTS}`,
  ] });
  f.chains.set(REJECT, { rules: ['reject'] });
  f.chains.set(MARK_MASQ, { rules: [`mark set mark or ${MASQ_MARK}`] });
  f.chains.set(MASQUERADING, { rules: [
    `mark and ${MASQ_MARK} == 0 return`,
    `mark set mark xor ${MASQ_MARK}`,
    'masquerade fully-random',
  ] });
  const addrMap = 'type ipv4_addr . inet_proto . inet_service : verdict;';
  const portMap = 'type inet_proto . inet_service : verdict;';
  f.containers.set(SERVICE_IPS, { kind: 'map', body: addrMap });
  f.containers.set(SERVICE_NODEPORTS, { kind: 'map', body: portMap });
  f.containers.set(NO_ENDPOINT_SERVICES, { kind: 'map', body: addrMap });
  f.containers.set(NO_ENDPOINT_NODEPORTS, { kind: 'map', body: portMap });
  if (o.nodePortIps) {
    f.containers.set(NODEPORT_IPS, { kind: 'set', body: 'type ipv4_addr;' });
    for (const ip of o.nodePortIps) f.elements.set(elementKey(NODEPORT_IPS, ip), '');
  }
  if (o.localDns) {
    // Every node answers the cluster DNS IP itself: lookups never cross the network and keep
    // working while the node is cut off from the server.
    const { clusterIp, address, port = 53 } = o.localDns;
    f.chains.set(CLUSTER_DNS, { rules: [`meta l4proto { tcp, udp } dnat to ${address}:${port}`] });
    for (const proto of ['udp', 'tcp'] as const) f.elements.set(elementKey(SERVICE_IPS, ipPortKey(clusterIp, proto, 53)), `goto ${CLUSTER_DNS}`);
  }
  return f;
}

/** kube-proxy's chain-name scheme: a short hash first (names that differ in one digit stay distinct at a glance). */
function hashed(name: string): string {
  const out = `${createHash('sha256').update(name).digest('hex').slice(0, 8).toUpperCase()}-${name}`;
  // nftables names stop at 255 bytes; the hash keeps a truncated name unique.
  return out.length > 230 ? `${out.slice(0, 227)}...` : out;
}
export const serviceChain = (p: ServicePortModel) => `service-${hashed(p.name)}`;
export const localChain = (p: ServicePortModel) => `local-${hashed(p.name)}`;
export const externalChain = (p: ServicePortModel) => `external-${hashed(p.name)}`;
const endpointBase = (p: ServicePortModel, e: Endpoint) => hashed(`${p.name}__${e.ip}/${e.port}`);
export const endpointChain = (p: ServicePortModel, e: Endpoint) => `endpoint-${endpointBase(p, e)}`;
export const affinitySet = (p: ServicePortModel, e: Endpoint) => `affinity-${endpointBase(p, e)}`;

/** The objects of one Service. */
export function serviceFragment(s: ServiceModel, o: StaticOptions): TableFragment {
  const f = emptyFragment();
  for (const p of s.ports) addPort(f, p, o);
  return f;
}

function addPort(f: TableFragment, p: ServicePortModel, o: StaticOptions): void {
  const notFromPods = `iifname != "${o.podBridge}"`;
  const fromPods = `iifname "${o.podBridge}"`;
  const externallyAccessible = p.nodePort > 0 || p.externalIps.length > 0 || p.loadBalancerIps.length > 0;
  // (kube-proxy's chain choices.) The cluster chain serves "Cluster" internal traffic, "Cluster"
  // external traffic, and the pods' and node's own traffic to external addresses under "Local".
  const usesClusterChain = p.clusterEndpoints.length > 0 && (!p.internalPolicyLocal || externallyAccessible);
  const usesLocalChain = p.localEndpoints.length > 0 && (p.internalPolicyLocal || p.externalPolicyLocal);
  const clusterChain = serviceChain(p);
  const lChain = localChain(p);
  const extChain = externalChain(p);
  const internalChain = p.internalPolicyLocal ? lChain : clusterChain;
  const hasInternal = p.internalPolicyLocal ? p.localEndpoints.length > 0 : p.clusterEndpoints.length > 0;
  const hasExternal = p.externalPolicyLocal ? p.localEndpoints.length > 0 : p.clusterEndpoints.length > 0;
  // No endpoints at all: refuse; endpoints, but none this policy may use: drop (as kube-proxy).
  const internalVerdict = p.hasEndpoints ? 'drop' : `goto ${REJECT}`;
  const externalVerdict = p.hasEndpoints ? 'drop' : `goto ${REJECT}`;
  const usesExtChain = p.hasEndpoints && externallyAccessible;

  const reachable = new Set<string>();
  const reach = (eps: Endpoint[]) => { for (const e of eps) reachable.add(`${e.ip}:${e.port}`); };
  if (usesClusterChain) reach(p.clusterEndpoints);
  if (usesLocalChain) reach(p.localEndpoints);

  const ipKey = (ip: string) => ipPortKey(ip, p.protocol, p.port);
  // The ClusterIP.
  if (hasInternal) f.elements.set(elementKey(SERVICE_IPS, ipKey(p.clusterIp)), `goto ${internalChain}`);
  else f.elements.set(elementKey(NO_ENDPOINT_SERVICES, ipKey(p.clusterIp)), internalVerdict);
  // externalIPs and load-balancer IPs.
  for (const ip of [...p.externalIps, ...p.loadBalancerIps]) {
    if (ip === p.clusterIp) continue;
    if (usesExtChain) f.elements.set(elementKey(SERVICE_IPS, ipKey(ip)), `goto ${extChain}`);
    if (!hasExternal) f.elements.set(elementKey(NO_ENDPOINT_SERVICES, ipKey(ip)), externalVerdict);
  }
  // The NodePort.
  if (p.nodePort) {
    const k = `${p.protocol} . ${p.nodePort}`;
    if (usesExtChain) f.elements.set(elementKey(SERVICE_NODEPORTS, k), `goto ${extChain}`);
    if (!hasExternal) f.elements.set(elementKey(NO_ENDPOINT_NODEPORTS, k), externalVerdict);
  }

  // Traffic to the ClusterIP from outside this node's pods (the node itself, a host routing the
  // service range here) may cross to another node: masquerade it so the reply comes back this way.
  const internalRules = hasInternal ? [`ip daddr ${p.clusterIp} ${p.protocol} dport ${p.port} ${notFromPods} jump ${MARK_MASQ}`] : [];
  if (usesClusterChain) {
    f.chains.set(clusterChain, { rules: [...(internalChain === clusterChain ? internalRules : []), ...dispatchRules(p, p.clusterEndpoints)] });
  }
  if (usesLocalChain) {
    f.chains.set(lChain, { rules: [...(internalChain === lChain ? internalRules : []), ...dispatchRules(p, p.localEndpoints)] });
  }
  if (usesExtChain) {
    const rules: string[] = [];
    if (!p.externalPolicyLocal) {
      // Any node may answer: masquerade so the reply returns through this node.
      rules.push(`jump ${MARK_MASQ}`);
    } else {
      // Local policy keeps the client's address. Pods and the node itself are not "external":
      // they go to any endpoint (as if out to a load balancer and back); the node's own traffic is
      // masqueraded since its source is one of the captured addresses.
      if (usesClusterChain) rules.push(`${fromPods} goto ${clusterChain}`);
      rules.push(`fib saddr type local jump ${MARK_MASQ}`);
      if (usesClusterChain) rules.push(`fib saddr type local goto ${clusterChain}`);
    }
    if (hasExternal) rules.push(`goto ${p.externalPolicyLocal ? lChain : clusterChain}`);
    f.chains.set(extChain, { rules });
  }

  for (const e of reachableEndpoints(p)) {
    if (!reachable.has(`${e.ip}:${e.port}`)) continue;
    const rules = [`ip saddr ${e.ip} jump ${MARK_MASQ}`];   // hairpin: a pod reaching its own Service
    if (p.affinitySeconds !== undefined) {
      const set = affinitySet(p, e);
      f.containers.set(set, { kind: 'set', body: 'type ipv4_addr; flags dynamic,timeout;' });
      // The timeout rides on each update, so a changed timeoutSeconds is a chain change, never a set redefinition.
      rules.push(`update @${set} { ip saddr timeout ${p.affinitySeconds}s }`);
    }
    rules.push(`meta l4proto ${p.protocol} dnat to ${e.ip}:${e.port}`);
    f.chains.set(endpointChain(p, e), { rules });
  }
}

/** Session affinity first (a known client goes back to its endpoint), then a random pick. */
function dispatchRules(p: ServicePortModel, eps: Endpoint[]): string[] {
  const rules: string[] = [];
  if (p.affinitySeconds !== undefined) for (const e of eps) rules.push(`ip saddr @${affinitySet(p, e)} goto ${endpointChain(p, e)}`);
  rules.push(`numgen random mod ${eps.length} vmap { ${eps.map((e, i) => `${i} : goto ${endpointChain(p, e)}`).join(', ')} }`);
  return rules;
}
