// Address allocation from pools to LoadBalancer Services, as MetalLB's controller decides it: a
// requested address (`spec.loadBalancerIP`, the `loadBalancerIPs` annotation) or, failing that, the
// address the Service already holds, an address shared under the same `allow-shared-ip` key, or the
// first free one of the highest-priority auto-assign pool. Pure functions over a usage table, so the
// rules are unit-tested without a cluster; the control loop (controller.ts) feeds them its caches.
import {
  ANNOTATION, isBuggyIp, ipToNumber, numberToIp, poolAllows, poolContains, serviceAnnotation, type AddressPool,
} from '../../api/address-pools.js';

/** A Service as it holds (or asks for) an address: what sharing needs to know about it. */
export interface Holder {
  key: string;
  sharingKey?: string;
  /** `TCP/53`, `UDP/53`: two Services on one address must not both have one. */
  ports: string[];
  local: boolean;
  selector: string;
}

/** Address (as a number) → the Services holding it. */
export type Usage = Map<number, Holder[]>;

export function holderOf(svc: any): Holder {
  const spec = svc?.spec ?? {};
  return {
    key: `${svc?.metadata?.namespace}/${svc?.metadata?.name}`,
    sharingKey: serviceAnnotation(svc, ANNOTATION.allowSharedIp) || undefined,
    ports: (Array.isArray(spec.ports) ? spec.ports : []).map((p: any) => `${p?.protocol ?? 'TCP'}/${p?.port}`),
    local: spec.externalTrafficPolicy === 'Local',
    selector: JSON.stringify(Object.entries(spec.selector ?? {}).sort()),
  };
}

/** Why `h` may not join the Services already on an address, or undefined when it may (MetalLB's sharing rules). */
export function sharingConflict(h: Holder, others: Holder[]): string | undefined {
  for (const o of others) {
    if (o.key === h.key) continue;
    if (!h.sharingKey || h.sharingKey !== o.sharingKey) {
      return `it is used by ${o.key}, and the two do not have the same metallb.io/allow-shared-ip key`;
    }
    const clash = h.ports.find((p) => o.ports.includes(p));
    if (clash) return `port ${clash} is used there by ${o.key} (shared IPs need distinct ports and protocols)`;
    if (h.local !== o.local) return `${o.key} has another externalTrafficPolicy (a shared IP needs the same)`;
    if (h.local && h.selector !== o.selector) return `${o.key} selects other pods (externalTrafficPolicy Local sharing needs the same selector)`;
  }
  return undefined;
}

export type Allocation =
  | { ok: true; ips: string[]; pool: string }
  | { ok: false; reason: string; message: string };

export interface AllocateInput {
  svc: any;
  /** Every pool (overlaps removed), so a requested address outside the allowed ones can be explained. */
  pools: AddressPool[];
  usage: Usage;
  namespaceLabels: Record<string, string>;
}

/** The Service's requested addresses, or an error message for a malformed request. */
export function requestedIps(svc: any): string[] | string {
  const ann = serviceAnnotation(svc, ANNOTATION.loadBalancerIps);
  const raw = ann !== undefined ? ann.split(',').map((s) => s.trim()).filter(Boolean) : svc?.spec?.loadBalancerIP ? [String(svc.spec.loadBalancerIP)] : [];
  const v4 = raw.filter((ip) => !ip.includes(':'));
  for (const ip of v4) if (ipToNumber(ip) === undefined) return `"${ip}" is not an IP address`;
  if (v4.length > 1) return `${v4.join(', ')}: only one IPv4 address per Service`;
  return v4;
}

function sortPools(pools: AddressPool[]): AddressPool[] {
  // MetalLB: a pool with a serviceAllocation priority goes first, lower numbers before higher; then by name.
  const prio = (p: AddressPool) => p.allocation?.priority ?? Number.POSITIVE_INFINITY;
  return [...pools].sort((a, b) => prio(a) - prio(b) || a.name.localeCompare(b.name));
}

export function allocate(input: AllocateInput): Allocation {
  const { svc, pools, usage, namespaceLabels } = input;
  const me = holderOf(svc);
  const fail = (reason: string, message: string): Allocation => ({ ok: false, reason, message });
  const wantPool = serviceAnnotation(svc, ANNOTATION.addressPool);
  let eligible = pools.filter((p) => poolAllows(p, svc, namespaceLabels));
  if (wantPool) {
    if (!pools.some((p) => p.name === wantPool)) return fail('AllocationFailed', `address pool "${wantPool}" (metallb.io/address-pool) does not exist`);
    eligible = eligible.filter((p) => p.name === wantPool);
    if (!eligible.length) return fail('AllocationFailed', `address pool "${wantPool}" does not serve this Service (its serviceAllocation)`);
  }
  const conflictAt = (ip: number) => sharingConflict(me, usage.get(ip) ?? []);

  const requested = requestedIps(svc);
  if (typeof requested === 'string') return fail('AllocationFailed', requested);
  if (requested.length) {
    const ip = ipToNumber(requested[0]!)!;
    const pool = pools.find((p) => poolContains(p, ip));
    if (!pool) return fail('AllocationFailed', `${requested[0]} is outside every address pool`);
    if (!eligible.includes(pool)) {
      return fail('AllocationFailed', `${requested[0]} belongs to pool "${pool.name}", which does not serve this Service${wantPool ? ` (metallb.io/address-pool asks for "${wantPool}")` : ''}`);
    }
    if (pool.avoidBuggyIps && isBuggyIp(ip)) return fail('AllocationFailed', `${requested[0]} ends in .0 or .255 and pool "${pool.name}" has avoidBuggyIPs`);
    const clash = conflictAt(ip);
    if (clash) return fail('AllocationFailed', `${requested[0]} cannot be assigned: ${clash}`);
    return { ok: true, ips: [requested[0]!], pool: pool.name };
  }

  // Keep what the Service holds while it is still valid (no reshuffle on restarts or pool edits elsewhere).
  for (const ing of Array.isArray(svc?.status?.loadBalancer?.ingress) ? svc.status.loadBalancer.ingress : []) {
    const ip = typeof ing?.ip === 'string' ? ipToNumber(ing.ip) : undefined;
    if (ip === undefined) continue;
    const pool = eligible.find((p) => poolContains(p, ip));
    if (pool && !(pool.avoidBuggyIps && isBuggyIp(ip)) && !conflictAt(ip)) return { ok: true, ips: [numberToIp(ip)], pool: pool.name };
  }

  // Join a Service of the same sharing key whose address admits this one.
  if (me.sharingKey) {
    for (const [ip, holders] of [...usage].sort((a, b) => a[0] - b[0])) {
      if (!holders.some((h) => h.key !== me.key && h.sharingKey === me.sharingKey)) continue;
      const pool = eligible.find((p) => poolContains(p, ip));
      if (pool && !conflictAt(ip)) return { ok: true, ips: [numberToIp(ip)], pool: pool.name };
    }
  }

  const auto = sortPools(eligible.filter((p) => p.autoAssign));
  if (!auto.length) {
    return fail('AllocationFailed', eligible.length ? 'no pool serving this Service has autoAssign; request an address (loadBalancerIP or metallb.io/loadBalancerIPs)' : 'no address pool serves this Service');
  }
  for (const pool of auto) {
    for (const r of pool.ranges) {
      for (let ip = r.first; ip <= r.last; ip++) {
        if (pool.avoidBuggyIps && isBuggyIp(ip)) continue;
        const holders = usage.get(ip);
        if (!holders || holders.every((h) => h.key === me.key)) return { ok: true, ips: [numberToIp(ip)], pool: pool.name };
      }
    }
  }
  return fail('AllocationFailed', `no available IPs in ${auto.map((p) => `"${p.name}"`).join(', ')}`);
}

/** Whether the pools, rather than ServiceLB, serve this Service: some pool's serviceAllocation admits it. */
export function servedByPools(svc: any, pools: AddressPool[], namespaceLabels: Record<string, string>): boolean {
  return pools.some((p) => poolAllows(p, svc, namespaceLabels));
}

/** Assigned addresses per pool (for IPAddressPool status). */
export function assignedPerPool(pools: AddressPool[], usage: Usage): Map<string, number> {
  const out = new Map<string, number>(pools.map((p) => [p.name, 0]));
  for (const ip of usage.keys()) {
    const p = pools.find((q) => poolContains(q, ip));
    if (p) out.set(p.name, (out.get(p.name) ?? 0) + 1);
  }
  return out;
}
