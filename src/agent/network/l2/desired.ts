// Which pool addresses this node may announce: every load-balancer ingress address of a Service
// (no loadBalancerClass) that lies in a layer-2 pool (a legacy ConfigMap `layer2` pool, or an
// IPAddressPool selected by an L2Advertisement whose node selectors admit this node), whose Service
// has a ready endpoint (with externalTrafficPolicy Local: a ready endpoint on this node, as MetalLB).
// Several Services sharing one address make it announceable when any one of them is.
import {
  advertisementSelectsNode, advertisementSelectsPool, ipToNumber, poolContains, type AddressPool, type L2Advertisement,
} from '../../../api/address-pools.js';

export interface DesiredAddress {
  ip: string;
  /** Interfaces the advertisements name (empty: the node IP's interface). */
  interfaces: string[];
  pool: string;
  services: any[];
}

export interface DesiredInput {
  nodeName: string;
  nodeLabels: Record<string, string>;
  services: readonly any[];
  pools: AddressPool[];
  advertisements: L2Advertisement[];
  /** ns/name → the nodes of its ready endpoints ('' for an endpoint without nodeName). */
  readyEndpointNodes(key: string): string[];
}

export function desiredAddresses(input: DesiredInput): Map<string, DesiredAddress> {
  const out = new Map<string, DesiredAddress>();
  for (const svc of input.services) {
    if (svc?.spec?.type !== 'LoadBalancer' || svc.spec.loadBalancerClass || svc.metadata?.deletionTimestamp) continue;
    const key = `${svc.metadata.namespace}/${svc.metadata.name}`;
    const ready = input.readyEndpointNodes(key);
    const eligible = svc.spec.externalTrafficPolicy === 'Local' ? ready.includes(input.nodeName) : ready.length > 0;
    if (!eligible) continue;
    for (const ing of Array.isArray(svc.status?.loadBalancer?.ingress) ? svc.status.loadBalancer.ingress : []) {
      const n = typeof ing?.ip === 'string' ? ipToNumber(ing.ip) : undefined;
      if (n === undefined) continue;
      const pool = input.pools.find((p) => poolContains(p, n));
      if (!pool) continue;
      let interfaces: string[] = [];
      if (pool.source === 'crd') {
        const ads = input.advertisements.filter((a) => advertisementSelectsPool(a, pool) && advertisementSelectsNode(a, input.nodeLabels));
        if (!ads.length) continue;
        // An advertisement without interfaces means "the default one"; it wins over a narrower list.
        interfaces = ads.some((a) => !a.interfaces?.length) ? [] : [...new Set(ads.flatMap((a) => a.interfaces!))].sort();
      } else if (pool.protocol !== 'layer2') continue;
      const have = out.get(ing.ip);
      if (have) have.services.push(svc);
      else out.set(ing.ip, { ip: ing.ip, interfaces, pool: pool.name, services: [svc] });
    }
  }
  return out;
}
