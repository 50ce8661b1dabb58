// ServiceLB's address choice (k3s's klipper-lb, without its DaemonSet): a LoadBalancer Service that no
// pool serves gets the addresses of the nodes that would run its klipper pods. k3s's rules, applied
// here directly: Ready nodes; only nodes labelled `enablelb=true` once any node has that label; only
// nodes of the Service's `lbpool`; with externalTrafficPolicy Local only nodes with a ready endpoint;
// and a node where an older ServiceLB Service already holds one of the ports is skipped (klipper's
// hostPort pod would not schedule there). ExternalIPs are used when any chosen node has one.
import { ipToNumber } from '../../api/address-pools.js';

export const ENABLE_LB_LABEL = 'svccontroller.k3s.cattle.io/enablelb';
export const LB_POOL_LABEL = 'svccontroller.k3s.cattle.io/lbpool';

export interface ServiceLbInput {
  /** Every ServiceLB-served Service, the target among them; ordered here (oldest first wins a port). */
  services: any[];
  nodes: any[];
  /** ns/name → nodes with a ready endpoint of that Service (for externalTrafficPolicy Local). */
  readyEndpointNodes(key: string): Set<string>;
}

export interface ServiceLbResult {
  ips: string[];
  /** Nodes left out because an older Service holds a port there: node → "port by ns/name". */
  conflicts: { node: string; port: string; holder: string }[];
}

const keyOf = (s: any) => `${s.metadata.namespace}/${s.metadata.name}`;
export const isReady = (n: any) => (n?.status?.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True');

function byAge(a: any, b: any): number {
  return String(a.metadata.creationTimestamp ?? '').localeCompare(String(b.metadata.creationTimestamp ?? '')) || keyOf(a).localeCompare(keyOf(b));
}

/** The nodes klipper's DaemonSet would select for a Service, before port conflicts. */
export function candidateNodes(svc: any, nodes: any[], readyEndpointNodes: Set<string>): any[] {
  const allowList = nodes.some((n) => n.metadata?.labels?.[ENABLE_LB_LABEL] === 'true');
  const pool = svc.metadata?.labels?.[LB_POOL_LABEL];
  return nodes.filter((n) => isReady(n)
    && (!allowList || n.metadata?.labels?.[ENABLE_LB_LABEL] === 'true')
    && (pool === undefined || n.metadata?.labels?.[LB_POOL_LABEL] === pool)
    && (svc.spec?.externalTrafficPolicy !== 'Local' || readyEndpointNodes.has(n.metadata.name)));
}

/** Node addresses for every Service of `input.services`, keyed ns/name, in one pass (older first). */
export function serviceLbAddresses(input: ServiceLbInput): Map<string, ServiceLbResult> {
  const claimed = new Map<string, string>();   // node|PROTO/port → holder key
  const out = new Map<string, ServiceLbResult>();
  for (const svc of [...input.services].sort(byAge)) {
    const key = keyOf(svc);
    const ports: string[] = (svc.spec?.ports ?? []).map((p: any) => `${p.protocol ?? 'TCP'}/${p.port}`);
    const conflicts: ServiceLbResult['conflicts'] = [];
    const chosen: any[] = [];
    for (const n of candidateNodes(svc, input.nodes, input.readyEndpointNodes(key))) {
      const clash = ports.find((p) => claimed.has(`${n.metadata.name}|${p}`));
      if (clash) { conflicts.push({ node: n.metadata.name, port: clash, holder: claimed.get(`${n.metadata.name}|${clash}`)! }); continue; }
      chosen.push(n);
      for (const p of ports) claimed.set(`${n.metadata.name}|${p}`, key);
    }
    out.set(key, { ips: nodeAddresses(chosen), conflicts });
  }
  return out;
}

/**
 * The addresses a set of nodes is reached at from outside (also the ingress controller's status):
 * their ExternalIPs when any has one, otherwise their InternalIPs; IPv4, sorted.
 */
export function nodeAddresses(nodes: any[]): string[] {
  const ext = new Set<string>(), int = new Set<string>();
  for (const n of nodes) {
    for (const a of n.status?.addresses ?? []) {
      if (ipToNumber(String(a.address)) === undefined) continue;   // IPv4 only (the proxy's family)
      if (a.type === 'ExternalIP') ext.add(a.address);
      else if (a.type === 'InternalIP') int.add(a.address);
    }
  }
  return [...(ext.size ? ext : int)].sort((a, b) => ipToNumber(a)! - ipToNumber(b)!);
}
