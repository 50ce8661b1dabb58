// The load-balancer loop: the one writer of `status.loadBalancer` for LoadBalancer Services without a
// loadBalancerClass. Each Service goes one way, decided from the same caches every time: to the
// address pools (MetalLB's allocator) when some pool's serviceAllocation admits it, otherwise to
// ServiceLB (node addresses, k3s's klipper-lb) unless that is disabled. One loop, one decision per
// Service, so a pool and ServiceLB can never both write a Service's status (the k3s/MetalLB fight).
// A queue key `@pools` refreshes IPAddressPool status counts and reports bad pool configuration.
import { isDeepStrictEqual } from 'node:util';
import type { KObject } from '../../api/object.js';
import {
  collectPools, ipToNumber, LEGACY_CONFIG_NAME, LEGACY_CONFIG_NAMESPACE, poolSize, type AddressPool,
} from '../../api/address-pools.js';
import { Resources } from '../../client/types.js';
import { runController, type RunningController } from '../../client/controller.js';
import { WorkQueue } from '../../client/workqueue.js';
import type { ControllerContext } from '../context.js';
import { allocate, assignedPerPool, holderOf, servedByPools, type Usage } from './allocator.js';
import { isReady, serviceLbAddresses } from './servicelb.js';
import { IP_ADDRESS_POOLS } from './crds.js';
import { logger } from '../../util/log.js';

const log = logger('loadbalancer');
const POOLS_KEY = '@pools';

export interface LoadBalancerOptions {
  /** `--disable-servicelb`: Services no pool serves get no address. */
  disableServiceLb?: boolean;
}

const keyOf = (o: KObject) => `${o.metadata.namespace}/${o.metadata.name}`;
const isLb = (s: any) => s?.spec?.type === 'LoadBalancer' && !s.metadata?.deletionTimestamp;
/** As MetalLB and k3s: a Service naming a loadBalancerClass belongs to that class's implementation. */
const ours = (s: any) => isLb(s) && !s.spec?.loadBalancerClass;
const ingressIps = (s: any): string[] => (Array.isArray(s?.status?.loadBalancer?.ingress) ? s.status.loadBalancer.ingress : [])
  .map((i: any) => i?.ip).filter((ip: unknown): ip is string => typeof ip === 'string');

export function startLoadBalancerController(ctx: ControllerContext, opts: LoadBalancerOptions = {}): RunningController {
  const services = ctx.informers.informerFor(Resources.services);
  const nodes = ctx.informers.informerFor(Resources.nodes);
  const slices = ctx.informers.informerFor(Resources.endpointSlices);
  const namespaces = ctx.informers.informerFor(Resources.namespaces);
  const poolObjs = ctx.informers.informerFor(IP_ADDRESS_POOLS);
  const legacy = ctx.informers.informerFor<KObject & { data?: Record<string, string> }>(Resources.configMaps,
    { namespace: LEGACY_CONFIG_NAMESPACE, fieldSelector: `metadata.name=${LEGACY_CONFIG_NAME}` });
  const queue = new WorkQueue<string>();
  /** Addresses this loop wrote that the cache may not show yet (key → ips), so two Services never get one address. */
  const written = new Map<string, string[]>();

  const enqueueAll = () => {
    for (const s of services.list()) if (isLb(s) || ingressIps(s).length) queue.add(keyOf(s));
    queue.add(POOLS_KEY);
  };
  services.addHandlers({
    onAdd: (s) => { if (isLb(s)) { queue.add(keyOf(s)); queue.add(POOLS_KEY); } },
    onUpdate: (o, n) => {
      queue.add(keyOf(n));
      // Sharing and port conflicts depend on the other Services: a spec change may free or claim something.
      if (o.metadata.generation !== n.metadata.generation || isLb(o) !== isLb(n)) enqueueAll();
    },
    onDelete: (s) => { written.delete(keyOf(s)); if (isLb(s)) enqueueAll(); },
  });
  for (const inf of [namespaces, poolObjs, legacy]) inf.addHandlers({ onAdd: enqueueAll, onUpdate: enqueueAll, onDelete: enqueueAll });
  // Of a Node only its labels, readiness and addresses matter here: its heartbeats and other status
  // writes (thousands a minute in a big cluster) must not re-queue every Service.
  nodes.addHandlers({
    onAdd: enqueueAll, onDelete: enqueueAll,
    onUpdate: (o, n) => { if (!isDeepStrictEqual(lbView(o), lbView(n))) enqueueAll(); },
  });
  const onSlice = (e: KObject) => {
    const svc = e.metadata.labels?.['kubernetes.io/service-name'];
    if (svc) queue.add(`${e.metadata.namespace}/${svc}`);
  };
  slices.addHandlers({ onAdd: onSlice, onUpdate: (_o, n) => onSlice(n), onDelete: onSlice });

  const nsLabels = (s: any) => namespaces.getByName(undefined, s.metadata.namespace)?.metadata.labels ?? {};
  const currentPools = () => collectPools(poolObjs.list(), legacy.getByName(LEGACY_CONFIG_NAMESPACE, LEGACY_CONFIG_NAME)?.data?.config);

  /** Pool addresses in use: every pool-served Service's status, with this loop's unconfirmed writes over it. */
  const usage = (pools: AddressPool[], except?: string): Usage => {
    const u: Usage = new Map();
    for (const s of services.list()) {
      const key = keyOf(s);
      if (key === except || !ours(s)) continue;
      const ips = written.get(key) ?? ingressIps(s);
      for (const ip of ips) {
        const n = ipToNumber(ip);
        if (n === undefined || !pools.some((p) => p.ranges.some((r) => n >= r.first && n <= r.last))) continue;
        const list = u.get(n) ?? [];
        list.push(holderOf(s));
        u.set(n, list);
      }
    }
    return u;
  };

  const readyNodes = (key: string): Set<string> => {
    const [ns, name] = key.split('/');
    const out = new Set<string>();
    for (const sl of slices.list()) {
      if (sl.metadata.namespace !== ns || sl.metadata.labels?.['kubernetes.io/service-name'] !== name) continue;
      for (const e of (sl as any).endpoints ?? []) if (e.conditions?.ready !== false && e.nodeName) out.add(e.nodeName);
    }
    return out;
  };

  const writeStatus = async (svc: any, ips: string[]) => {
    const key = keyOf(svc);
    const have = ingressIps(svc);
    if (have.length === ips.length && have.every((ip, i) => ip === ips[i])) { written.delete(key); return; }
    await ctx.client.patch(Resources.services, svc.metadata.namespace, svc.metadata.name, 'merge',
      { status: { loadBalancer: { ingress: ips.length ? ips.map((ip) => ({ ip, ipMode: 'VIP' })) : null } } }, { subresource: 'status' });
    written.set(key, ips);
    log.info({ service: key, ips }, 'load-balancer addresses set');
  };

  const reconcilePools = async () => {
    const { pools, errors, overlaps } = currentPools();
    const cm = legacy.getByName(LEGACY_CONFIG_NAMESPACE, LEGACY_CONFIG_NAME);
    for (const err of errors) {
      const obj = err.startsWith('metallb-system/config') ? cm : poolObjs.list().find((p) => err.startsWith(`IPAddressPool ${p.metadata.name}:`));
      if (obj) ctx.events.record(obj, 'Warning', 'InvalidConfiguration', err);
    }
    for (const o of overlaps) {
      const obj = o.pool.source === 'crd' ? poolObjs.list().find((p) => p.metadata.name === o.pool.name) : cm;
      if (obj) ctx.events.record(obj, 'Warning', 'OverlappingPools', `pool "${o.pool.name}" overlaps pool "${o.with}"; it is not used until the overlap is removed`);
    }
    const assigned = assignedPerPool(pools, usage(pools));
    for (const p of poolObjs.list()) {
      const pool = pools.find((q) => q.source === 'crd' && q.name === p.metadata.name);
      const a = pool ? assigned.get(pool.name) ?? 0 : 0;
      const want = { assignedIPv4: a, availableIPv4: pool ? Math.max(0, poolSize(pool) - a) : 0, assignedIPv6: 0, availableIPv6: 0 };
      const have = (p as any).status ?? {};
      if (Object.entries(want).every(([k, v]) => have[k] === v)) continue;
      await ctx.client.patch(IP_ADDRESS_POOLS, p.metadata.namespace, p.metadata.name!, 'merge', { status: want }, { subresource: 'status' });
    }
  };

  return runController({
    name: 'loadbalancer', queue, informers: [services, nodes, slices, namespaces, poolObjs, legacy],
    async reconcile(key) {
      if (key === POOLS_KEY) return reconcilePools();
      const [ns = '', name = ''] = key.split('/');
      const svc: any = services.getByName(ns, name);
      if (!svc) { written.delete(key); return; }
      if (!ours(svc)) {
        // No longer a LoadBalancer: withdraw addresses this loop gives (pool or node addresses), nothing else.
        if (svc.spec?.type !== 'LoadBalancer' && ingressIps(svc).length) {
          const { pools } = currentPools();
          const nodeIps = new Set(nodes.list().flatMap((n: any) => (n.status?.addresses ?? []).map((a: any) => a.address)));
          const givenHere = ingressIps(svc).every((ip) => nodeIps.has(ip) || pools.some((p) => p.ranges.some((r) => {
            const n = ipToNumber(ip);
            return n !== undefined && n >= r.first && n <= r.last;
          })));
          if (givenHere) await writeStatus(svc, []);
        }
        return;
      }
      const { pools } = currentPools();
      const labels = nsLabels(svc);
      if (servedByPools(svc, pools, labels)) {
        const a = allocate({ svc, pools, usage: usage(pools, key), namespaceLabels: labels });
        if (!a.ok) {
          ctx.events.record(svc, 'Warning', a.reason, `Failed to allocate IP for "${key}": ${a.message}`);
          await writeStatus(svc, []);
        } else {
          const before = ingressIps(svc).join(',');
          await writeStatus(svc, a.ips);
          if (before !== a.ips.join(',')) ctx.events.record(svc, 'Normal', 'IPAllocated', `Assigned IP ${JSON.stringify(a.ips)} from pool "${a.pool}"`);
        }
        queue.add(POOLS_KEY);
        return;
      }
      if (opts.disableServiceLb) return;
      const lbServices = services.list().filter((s: any) => ours(s) && !servedByPools(s, pools, nsLabels(s)));
      const result = serviceLbAddresses({ services: lbServices, nodes: nodes.list(), readyEndpointNodes: readyNodes }).get(key);
      if (!result) return;
      for (const c of result.conflicts) {
        ctx.events.record(svc, 'Warning', 'PortInUse',
          `ServiceLB: port ${c.port} on node ${c.node} is already used by LoadBalancer Service ${c.holder}; node ${c.node} does not serve this Service`);
      }
      const before = ingressIps(svc).join(',');
      await writeStatus(svc, result.ips);
      if (before !== result.ips.join(',')) {
        ctx.events.record(svc, 'Normal', 'UpdatedIngressIP', `ServiceLB: LoadBalancer ingress ${result.ips.length ? result.ips.join(', ') : 'none (no eligible node)'}`);
      }
    },
  });
}

/** What of a Node the load-balancer loop reads. */
function lbView(n: any): unknown {
  return [n.metadata?.labels ?? {}, isReady(n), n.status?.addresses ?? []];
}
