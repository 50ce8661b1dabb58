// Load-balancer address pools as MetalLB defines them (metallb.io/v1beta1 IPAddressPool and
// L2Advertisement, plus the legacy `metallb-system/config` ConfigMap), reduced to what both the
// server's allocator and the agents' layer-2 announcers read. One definition here so that the two
// sides agree on which pool an address belongs to and which Services a pool may serve.
import { parse as parseYaml } from 'yaml';
import { compileLabelSelector, type LabelSelector } from './selectors.js';
import { ipToNumber, numberToIp } from './cidr.js';

// The pools' users read addresses as numbers through this module too (one definition, in cidr.ts).
export { ipToNumber, numberToIp };

export const METALLB_GROUP = 'metallb.io';
export const LEGACY_CONFIG_NAMESPACE = 'metallb-system';
export const LEGACY_CONFIG_NAME = 'config';

/** Service annotations, under MetalLB's current prefix; the pre-0.13 `metallb.universe.tf/` one is read too. */
export const ANNOTATION = {
  addressPool: 'address-pool',
  loadBalancerIps: 'loadBalancerIPs',
  allowSharedIp: 'allow-shared-ip',
} as const;

export function serviceAnnotation(svc: { metadata?: { annotations?: Record<string, string> } }, key: string): string | undefined {
  const a = svc.metadata?.annotations ?? {};
  return a[`metallb.io/${key}`] ?? a[`metallb.universe.tf/${key}`];
}

/** One contiguous IPv4 range, both ends included, as unsigned 32-bit numbers. */
export interface IpRange { first: number; last: number }

export interface AddressPool {
  name: string;
  /** 'crd' for an IPAddressPool object, 'configmap' for an entry of the legacy ConfigMap. */
  source: 'crd' | 'configmap';
  ranges: IpRange[];
  autoAssign: boolean;
  avoidBuggyIps: boolean;
  /** Only the legacy ConfigMap names a protocol; CRD pools are layer 2 when an L2Advertisement selects them. */
  protocol?: string;
  labels: Record<string, string>;
  allocation?: {
    priority?: number;
    namespaces?: string[];
    namespaceSelectors?: LabelSelector[];
    serviceSelectors?: LabelSelector[];
  };
  creationTimestamp?: string;
}

/**
 * One `addresses` entry: a CIDR (`10.0.0.0/24`), a range (`10.0.0.50-10.0.0.99`) or a single address.
 * IPv6 entries are skipped (undefined with no error); anything else malformed is an error message.
 */
export function parseAddressEntry(entry: string): IpRange | string | undefined {
  const s = entry.trim();
  if (s.includes(':')) return undefined;
  const dash = s.indexOf('-');
  if (dash >= 0) {
    const a = ipToNumber(s.slice(0, dash).trim()), b = ipToNumber(s.slice(dash + 1).trim());
    if (a === undefined || b === undefined) return `invalid IP range "${entry}"`;
    if (a > b) return `invalid IP range "${entry}": first address after the last`;
    return { first: a, last: b };
  }
  const slash = s.indexOf('/');
  if (slash >= 0) {
    const base = ipToNumber(s.slice(0, slash).trim());
    const bits = Number(s.slice(slash + 1));
    if (base === undefined || !Number.isInteger(bits) || bits < 0 || bits > 32 || s.slice(slash + 1) === '') return `invalid CIDR "${entry}"`;
    const size = 2 ** (32 - bits);
    const first = Math.floor(base / size) * size;
    return { first, last: first + size - 1 };
  }
  const ip = ipToNumber(s);
  return ip === undefined ? `invalid address "${entry}"` : { first: ip, last: ip };
}

/** MetalLB's avoidBuggyIPs: addresses ending in .0 or .255 break some old client stacks. */
export const isBuggyIp = (n: number): boolean => (n & 255) === 0 || (n & 255) === 255;

export function poolContains(pool: AddressPool, ip: number): boolean {
  return pool.ranges.some((r) => ip >= r.first && ip <= r.last);
}

/** Addresses a pool can hand out (counted, not enumerated: a /8 is fine). */
export function poolSize(pool: AddressPool): number {
  // n in [0, x] with n & 255 === k: floor((x - k) / 256) + 1 when x >= k.
  const upTo = (x: number, k: number) => (x < k ? 0 : Math.floor((x - k) / 256) + 1);
  let n = 0;
  for (const r of pool.ranges) {
    n += r.last - r.first + 1;
    if (pool.avoidBuggyIps) {
      for (const k of [0, 255]) n -= upTo(r.last, k) - (r.first > 0 ? upTo(r.first - 1, k) : 0);
    }
  }
  return n;
}

export interface ParsedPools { pools: AddressPool[]; errors: string[] }

/** An IPAddressPool object as a pool (errors name the object). */
export function poolFromObject(o: any): ParsedPools {
  const name = String(o?.metadata?.name ?? '');
  const spec = o?.spec ?? {};
  const errors: string[] = [];
  const ranges: IpRange[] = [];
  for (const a of Array.isArray(spec.addresses) ? spec.addresses : []) {
    const r = typeof a === 'string' ? parseAddressEntry(a) : `invalid address entry ${JSON.stringify(a)}`;
    if (typeof r === 'string') errors.push(`IPAddressPool ${name}: ${r}`);
    else if (r) ranges.push(r);
  }
  const sa = spec.serviceAllocation;
  const pool: AddressPool = {
    name, source: 'crd', ranges,
    autoAssign: spec.autoAssign !== false, avoidBuggyIps: spec.avoidBuggyIPs === true,
    labels: o?.metadata?.labels ?? {}, creationTimestamp: o?.metadata?.creationTimestamp,
    ...(sa && typeof sa === 'object' ? {
      allocation: {
        priority: typeof sa.priority === 'number' ? sa.priority : undefined,
        namespaces: Array.isArray(sa.namespaces) ? sa.namespaces : undefined,
        namespaceSelectors: Array.isArray(sa.namespaceSelectors) ? sa.namespaceSelectors : undefined,
        serviceSelectors: Array.isArray(sa.serviceSelectors) ? sa.serviceSelectors : undefined,
      },
    } : {}),
  };
  return { pools: errors.length ? [] : [pool], errors };
}

/**
 * The legacy ConfigMap's `config` key (MetalLB before 0.13): `address-pools: [{name, protocol,
 * addresses, auto-assign, avoid-buggy-ips}]`. Only layer-2 pools are returned; BGP ones are reported.
 */
export function poolsFromLegacyConfig(text: string): ParsedPools {
  const errors: string[] = [];
  let doc: any;
  try { doc = parseYaml(text); } catch (e) { return { pools: [], errors: [`metallb-system/config: not YAML: ${e instanceof Error ? e.message : String(e)}`] }; }
  const pools: AddressPool[] = [];
  for (const p of Array.isArray(doc?.['address-pools']) ? doc['address-pools'] : []) {
    const name = String(p?.name ?? '');
    if (!name) { errors.push('metallb-system/config: an address pool without a name'); continue; }
    if (p.protocol !== 'layer2') { errors.push(`metallb-system/config: pool ${name}: protocol "${p.protocol}" is not served (layer2 only)`); continue; }
    const ranges: IpRange[] = [];
    let bad = false;
    for (const a of Array.isArray(p.addresses) ? p.addresses : []) {
      const r = parseAddressEntry(String(a));
      if (typeof r === 'string') { errors.push(`metallb-system/config: pool ${name}: ${r}`); bad = true; } else if (r) ranges.push(r);
    }
    if (bad) continue;
    pools.push({
      name, source: 'configmap', ranges, protocol: 'layer2', labels: {},
      autoAssign: p['auto-assign'] !== false, avoidBuggyIps: p['avoid-buggy-ips'] === true,
    });
  }
  return { pools, errors };
}

/**
 * Pools in a stable order with overlaps removed: a pool sharing addresses with an earlier one (older,
 * then by name) is left out, and the clash reported, so an address belongs to one pool only.
 */
export function withoutOverlaps(pools: AddressPool[]): { pools: AddressPool[]; overlaps: { pool: AddressPool; with: string }[] } {
  const sorted = [...pools].sort((a, b) => (a.creationTimestamp ?? '').localeCompare(b.creationTimestamp ?? '') || a.name.localeCompare(b.name));
  const kept: AddressPool[] = [];
  const overlaps: { pool: AddressPool; with: string }[] = [];
  for (const p of sorted) {
    const other = kept.find((k) => k.ranges.some((r) => p.ranges.some((q) => q.first <= r.last && r.first <= q.last)));
    if (other) overlaps.push({ pool: p, with: other.name });
    else kept.push(p);
  }
  return { pools: kept, overlaps };
}

/** Whether a pool's serviceAllocation lets it serve a Service (namespace labels come from the caller). */
export function poolAllows(pool: AddressPool, svc: any, namespaceLabels: Record<string, string>): boolean {
  const a = pool.allocation;
  if (!a) return true;
  const ns = svc?.metadata?.namespace ?? 'default';
  const nsListed = a.namespaces?.length ? a.namespaces.includes(ns) : undefined;
  const nsSelected = a.namespaceSelectors?.length ? a.namespaceSelectors.some((s) => compileLabelSelector(s)(namespaceLabels)) : undefined;
  // Namespaces and namespace selectors widen each other (either may admit the Service).
  if ((nsListed !== undefined || nsSelected !== undefined) && !nsListed && !nsSelected) return false;
  if (a.serviceSelectors?.length && !a.serviceSelectors.some((s) => compileLabelSelector(s)(svc?.metadata?.labels ?? {}))) return false;
  return true;
}

/** An L2Advertisement as the announcer reads it. */
export interface L2Advertisement {
  name: string;
  ipAddressPools?: string[];
  ipAddressPoolSelectors?: LabelSelector[];
  nodeSelectors?: LabelSelector[];
  interfaces?: string[];
}

export function l2AdvertisementFromObject(o: any): L2Advertisement {
  const s = o?.spec ?? {};
  return {
    name: String(o?.metadata?.name ?? ''),
    ipAddressPools: Array.isArray(s.ipAddressPools) ? s.ipAddressPools : undefined,
    ipAddressPoolSelectors: Array.isArray(s.ipAddressPoolSelectors) ? s.ipAddressPoolSelectors : undefined,
    nodeSelectors: Array.isArray(s.nodeSelectors) ? s.nodeSelectors : undefined,
    interfaces: Array.isArray(s.interfaces) ? s.interfaces : undefined,
  };
}

/** As MetalLB: an advertisement naming no pools and no pool selectors advertises every pool. */
export function advertisementSelectsPool(ad: L2Advertisement, pool: AddressPool): boolean {
  if (!ad.ipAddressPools?.length && !ad.ipAddressPoolSelectors?.length) return true;
  if (ad.ipAddressPools?.includes(pool.name)) return true;
  return (ad.ipAddressPoolSelectors ?? []).some((s) => compileLabelSelector(s)(pool.labels));
}

export function advertisementSelectsNode(ad: L2Advertisement, nodeLabels: Record<string, string>): boolean {
  if (!ad.nodeSelectors?.length) return true;
  return ad.nodeSelectors.some((s) => compileLabelSelector(s)(nodeLabels));
}

/** Every pool of the cluster: IPAddressPool objects and the legacy ConfigMap's layer-2 pools, overlaps removed. */
export function collectPools(poolObjects: readonly any[], legacyConfig: string | undefined): ParsedPools & { overlaps: { pool: AddressPool; with: string }[] } {
  const all: AddressPool[] = [];
  const errors: string[] = [];
  for (const o of poolObjects) {
    if (o?.metadata?.deletionTimestamp) continue;
    const r = poolFromObject(o);
    all.push(...r.pools);
    errors.push(...r.errors);
  }
  if (legacyConfig !== undefined) {
    const r = poolsFromLegacyConfig(legacyConfig);
    all.push(...r.pools);
    errors.push(...r.errors);
  }
  const { pools, overlaps } = withoutOverlaps(all);
  return { pools, errors, overlaps };
}

/**
 * Layer-2 announcement leadership: one coordination.k8s.io Lease per address, `skiff-l2-<a-b-c-d>` in
 * kube-system. Nodes may write only Leases of this shape there (node authorizer and NodeRestriction).
 */
export const L2_LEASE_NAMESPACE = 'kube-system';
export const L2_LEASE_PREFIX = 'skiff-l2-';
export const l2LeaseName = (ip: string): string => `${L2_LEASE_PREFIX}${ip.replace(/\./g, '-')}`;
export const isL2LeaseName = (name: string | undefined): boolean => name !== undefined && /^skiff-l2-\d{1,3}-\d{1,3}-\d{1,3}-\d{1,3}$/.test(name);
