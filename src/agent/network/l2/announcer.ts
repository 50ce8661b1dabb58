// Layer-2 announcement of pool addresses (MetalLB's speaker in L2 mode, in the agent). For each
// address this node may announce (desired.ts), nodes compete for one coordination.k8s.io Lease per
// address; the holder puts the address (/32) on the interface, sends gratuitous ARP over the first
// seconds, and the kernel answers ARP for it from then on; the service proxy already DNATs the
// address. A short lease (2 s, renewed every 0.5 s, watched every 0.25 s) moves a dead
// node's addresses within a few seconds, where MetalLB's memberlist takes far longer. A holder that
// cannot renew for a lease duration drops the address itself, so two nodes never both keep it.
//
// Loop shape: informers → queue of addresses → reconcile(address), each reconcile one lease step
// that asks to run again after the renew or watch period; a `@scan` key re-lists everything every
// few seconds, picks up the legacy ConfigMap and removes stray addresses (left by a killed agent).
import type { KObject } from '../../../api/object.js';
import {
  collectPools, ipToNumber, l2AdvertisementFromObject, l2LeaseName, L2_LEASE_NAMESPACE,
  LEGACY_CONFIG_NAME, LEGACY_CONFIG_NAMESPACE, poolContains, METALLB_GROUP,
} from '../../../api/address-pools.js';
import { Informer } from '../../../client/informer.js';
import { isAlreadyExists, isConflict, isNotFound, Resources, type ApiClient, type ResourceRef } from '../../../client/types.js';
import { runController, type RunningController } from '../../../client/controller.js';
import { WorkQueue } from '../../../client/workqueue.js';
import { eventRecorder } from '../../../client/events.js';
import { microTime } from '../../../util/time.js';
import { logger } from '../../../util/log.js';
import { desiredAddresses, type DesiredAddress } from './desired.js';
import { addAddress, announce, interfaceOf, ipv4Addresses, removeAddress } from './links.js';

const log = logger('l2');
const POOLS: ResourceRef = { group: METALLB_GROUP, version: 'v1beta1', resource: 'ipaddresspools' };
const ADS: ResourceRef = { group: METALLB_GROUP, version: 'v1beta1', resource: 'l2advertisements' };
const L2_STATUSES: ResourceRef = { group: METALLB_GROUP, version: 'v1beta1', resource: 'servicel2statuses' };
const SCAN = '@scan';

export interface L2Timing {
  leaseSeconds: number;
  renewMs: number;
  watchMs: number;
  scanMs: number;
}
export const DEFAULT_L2_TIMING: L2Timing = { leaseSeconds: 2, renewMs: 500, watchMs: 250, scanMs: 5_000 };

export interface L2AnnouncerOptions {
  client: ApiClient;
  nodeName: string;
  nodeIp: string;
  /** The agent's shared Services cache (the proxy's). */
  services: Informer<KObject>;
  timing?: Partial<L2Timing>;
}

interface Held { iface: string; lastRenew: number; cancelArp: () => void }
interface Observed { rv: string; at: number }

export interface RunningL2Announcer { stop(): Promise<void> }

export function startL2Announcer(o: L2AnnouncerOptions): RunningL2Announcer {
  const t = { ...DEFAULT_L2_TIMING, ...o.timing };
  const { client, nodeName: me } = o;
  const slices = new Informer<KObject>({ client, resource: Resources.endpointSlices });
  const pools = new Informer<KObject>({ client, resource: POOLS });
  const ads = new Informer<KObject>({ client, resource: ADS });
  const node = new Informer<KObject>({ client, resource: Resources.nodes, fieldSelector: `metadata.name=${me}` });
  const events = eventRecorder(client, 'skiff-l2-announcer', me);
  const queue = new WorkQueue<string>();
  const held = new Map<string, Held>();
  const observed = new Map<string, Observed>();
  let legacyConfig: string | undefined;
  let defaultIface: string | undefined;
  let stopping = false;

  const kick = () => queue.add(SCAN);
  for (const inf of [o.services, slices, pools, ads, node]) inf.addHandlers({ onAdd: kick, onUpdate: kick, onDelete: kick });

  const currentPools = () => collectPools(pools.list(), legacyConfig).pools;
  const desired = (): Map<string, DesiredAddress> => desiredAddresses({
    nodeName: me,
    nodeLabels: node.list()[0]?.metadata.labels ?? {},
    services: o.services.list(),
    pools: currentPools(),
    advertisements: ads.list().map(l2AdvertisementFromObject),
    readyEndpointNodes: (key) => {
      const [ns, name] = key.split('/');
      const out: string[] = [];
      for (const s of slices.list()) {
        if (s.metadata.namespace !== ns || s.metadata.labels?.['kubernetes.io/service-name'] !== name) continue;
        for (const e of (s as any).endpoints ?? []) if (e.conditions?.ready !== false) out.push(e.nodeName ?? '');
      }
      return out;
    },
  });

  const chooseIface = async (want: DesiredAddress): Promise<string | undefined> => {
    if (want.interfaces.length) {
      const present = new Set((await ipv4Addresses()).map((a) => a.ifname));
      // Interfaces without an IPv4 address are still fine: ask the kernel which links exist.
      return want.interfaces.find((i) => present.has(i)) ?? want.interfaces[0];
    }
    defaultIface ??= await interfaceOf(o.nodeIp);
    return defaultIface;
  };

  const take = async (ip: string, iface: string, want: DesiredAddress) => {
    await addAddress(iface, ip);
    held.set(ip, { iface, lastRenew: Date.now(), cancelArp: announce(iface, ip) });
    log.info({ ip, iface }, 'announcing');
    for (const svc of want.services) {
      events.record(svc, 'Normal', 'nodeAssigned', `announcing from node "${me}" with protocol "layer2" on ${iface}`);
      void reportStatus(svc, iface).catch((err: unknown) => log.debug({ err: String(err) }, 'ServiceL2Status not written'));
    }
  };
  /** MetalLB's ServiceL2Status `l2-<service>` in the Service's namespace names the announcing node. */
  const reportStatus = async (svc: any, iface: string) => {
    const ns = svc.metadata.namespace, name = `l2-${svc.metadata.name}`;
    const status = { node: me, serviceName: svc.metadata.name, serviceNamespace: ns, interfaces: [{ name: iface }] };
    let obj: any = await client.get(L2_STATUSES, ns, name);
    if (!obj) {
      obj = await client.create(L2_STATUSES, ns, {
        apiVersion: `${METALLB_GROUP}/v1beta1`, kind: 'ServiceL2Status',
        metadata: { name, namespace: ns, labels: { 'metallb.io/node': me, 'metallb.io/service-name': svc.metadata.name, 'metallb.io/service-namespace': ns } },
        spec: {},
      });
    } else if (obj.metadata.labels?.['metallb.io/node'] !== me) {
      obj = await client.update(L2_STATUSES, ns, { ...obj, metadata: { ...obj.metadata, labels: { ...obj.metadata.labels, 'metallb.io/node': me } } });
    }
    await client.updateStatus(L2_STATUSES, ns, { ...obj, status });
  };
  const drop = async (ip: string, why: string) => {
    const h = held.get(ip);
    if (!h) return;
    held.delete(ip);
    h.cancelArp();
    await removeAddress(h.iface, ip).catch((err: unknown) => log.warn({ ip, err: String(err) }, 'address not removed'));
    log.info({ ip, iface: h.iface, why }, 'stopped announcing');
  };
  /** Gives the lease up at once (empty holder) so another node takes over without waiting for expiry. */
  const release = async (ip: string, why: string) => {
    await drop(ip, why);
    const lease: any = await client.get(Resources.leases, L2_LEASE_NAMESPACE, l2LeaseName(ip)).catch(() => undefined);
    if (lease?.spec?.holderIdentity === me) {
      await client.update(Resources.leases, L2_LEASE_NAMESPACE, { ...lease, spec: { ...lease.spec, holderIdentity: '' } }).catch(() => undefined);
    }
  };

  const step = async (ip: string): Promise<number | undefined> => {
    const want = desired().get(ip);
    if (!want || stopping) {
      observed.delete(ip);
      if (held.has(ip)) await release(ip, 'no longer announceable from this node');
      return undefined;
    }
    const iface = await chooseIface(want);
    if (!iface) { log.warn({ ip }, 'no interface to announce on'); return t.scanMs; }
    const name = l2LeaseName(ip);
    const now = Date.now();
    const h = held.get(ip);
    // Fencing: a holder cut off from the API for a whole lease may already have been replaced.
    if (h && now - h.lastRenew > t.leaseSeconds * 1000) await drop(ip, 'lease not renewed in time');
    const lease: any = await client.get(Resources.leases, L2_LEASE_NAMESPACE, name);
    if (!lease) {
      try {
        await client.create(Resources.leases, L2_LEASE_NAMESPACE, {
          apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: L2_LEASE_NAMESPACE },
          spec: { holderIdentity: me, leaseDurationSeconds: t.leaseSeconds, acquireTime: microTime(now), renewTime: microTime(now), leaseTransitions: 0 },
        });
        await take(ip, iface, want);
        return t.renewMs;
      } catch (e) {
        if (isAlreadyExists(e)) return 100;
        throw e;
      }
    }
    const holder = lease.spec?.holderIdentity;
    if (holder === me) {
      const mine = held.get(ip);
      if (mine && mine.iface !== iface) await drop(ip, `interface changed to ${iface}`);
      if (!mine || now - mine.lastRenew >= t.renewMs - 50 || mine.iface !== iface) {
        try {
          await client.update(Resources.leases, L2_LEASE_NAMESPACE, { ...lease, spec: { ...lease.spec, renewTime: microTime(now), leaseDurationSeconds: t.leaseSeconds } });
        } catch (e) {
          if (isConflict(e)) return 50;
          throw e;
        }
        if (held.has(ip)) held.get(ip)!.lastRenew = now;
        else await take(ip, iface, want);
      }
      return t.renewMs;
    }
    if (held.has(ip)) await drop(ip, `lease taken by ${holder || 'nobody'}`);
    const rv = String(lease.metadata.resourceVersion);
    const seen = observed.get(ip);
    if (!seen || seen.rv !== rv) observed.set(ip, { rv, at: now });
    const since = observed.get(ip)!.at;
    const durationMs = (Number(lease.spec?.leaseDurationSeconds) || t.leaseSeconds) * 1000;
    if (holder && now - since <= durationMs) return t.watchMs;
    try {
      await client.update(Resources.leases, L2_LEASE_NAMESPACE, {
        ...lease,
        spec: {
          ...lease.spec, holderIdentity: me, leaseDurationSeconds: t.leaseSeconds, acquireTime: microTime(now), renewTime: microTime(now),
          leaseTransitions: (Number(lease.spec?.leaseTransitions) || 0) + 1,
        },
      });
    } catch (e) {
      if (isConflict(e) || isNotFound(e)) return 50;
      throw e;
    }
    log.info({ ip, from: holder || 'nobody', silentMs: now - since }, 'took over the address');
    await take(ip, iface, want);
    return t.renewMs;
  };

  /** Every address worth a look, the legacy pools refreshed, and /32 pool addresses this node does not hold removed. */
  const scan = async () => {
    const cm: any = await client.get(Resources.configMaps, LEGACY_CONFIG_NAMESPACE, LEGACY_CONFIG_NAME).catch(() => undefined);
    legacyConfig = typeof cm?.data?.config === 'string' ? cm.data.config : undefined;
    const want = desired();
    for (const ip of new Set([...want.keys(), ...held.keys()])) queue.add(ip);
    const all = currentPools();
    for (const a of await ipv4Addresses()) {
      if (a.prefixlen !== 32 || a.local === o.nodeIp || held.get(a.local)?.iface === a.ifname) continue;
      const n = ipToNumber(a.local);
      if (n !== undefined && all.some((p) => poolContains(p, n))) {
        await removeAddress(a.ifname, a.local);
        log.info({ ip: a.local, iface: a.ifname }, 'removed a pool address this node does not hold');
      }
    }
  };

  const loop: RunningController = runController({
    name: 'l2-announcer', queue, informers: [o.services, slices, pools, ads, node],
    async reconcile(key) {
      if (key === SCAN) { await scan(); return { requeueAfterMs: t.scanMs }; }
      try {
        const after = await step(key);
        return after === undefined ? undefined : { requeueAfterMs: after };
      } catch (e) {
        // The API is unreachable or refused: keep the rhythm (fencing needs the next step on time).
        log.debug({ ip: key, err: e instanceof Error ? e.message : String(e) }, 'lease step failed');
        return { requeueAfterMs: held.has(key) ? t.renewMs : t.watchMs };
      }
    },
  });
  for (const inf of [slices, pools, ads, node]) inf.start();
  queue.add(SCAN);

  return {
    async stop() {
      stopping = true;
      await loop.stop();
      await Promise.all([slices.stop(), pools.stop(), ads.stop(), node.stop()]);
      // Hand every address over now rather than after the lease runs out.
      await Promise.all([...held.keys()].map((ip) => release(ip, 'agent stopping').catch(() => undefined)));
    },
  };
}
