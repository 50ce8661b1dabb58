// The service proxy loop of every agent (kube-proxy's job): informers for Services and EndpointSlices
// → a work queue of Service keys → one reconcile per batch of keys, written to the kernel as one
// nftables transaction holding only what those Services changed. A burst of changes (a Deployment
// scaled, 1,000 Services created) becomes a few transactions, not one per event; a single endpoint
// change becomes a transaction of a few lines.
//
// Nothing is programmed before both informers have synced: a restarted agent would otherwise take
// rules away for Services it has not heard of yet. Rules stay in the kernel when the agent stops
// (established and new connections keep working while it is down); at the next start the table is
// read back and only the difference is written.
import { networkInterfaces } from 'node:os';
import { writeFileSync } from 'node:fs';
import type { KObject } from '../../../api/object.js';
import { cidrContains, parseCidr, type Cidr } from '../../../api/cidr.js';
import { Informer } from '../../../client/informer.js';
import { Resources, type ApiClient } from '../../../client/types.js';
import { WorkQueue } from '../../../client/workqueue.js';
import { retryUntilDone, runBatchWorker } from '../../../client/batch-worker.js';
import { logger } from '../../../util/log.js';
import { buildServiceModel, sliceServiceKey, type ServiceModel } from './model.js';
import { DEFAULT_TABLE, NftRuleWriter, type RuleWriter } from './nft-writer.js';
import { deleteTable } from './nft-state.js';
import { recordProxyTable } from './cleanup.js';
import { reservedKeys, type StaticOptions } from './nft-rules.js';
import { HealthCheckServer } from './healthcheck.js';
import { clearFlows, staleUdpFlows } from './conntrack.js';

const log = logger('service-proxy');
const SLICES_BY_SERVICE = 'service-proxy/service';

type Obj = KObject & Record<string, any>;

export interface ServiceProxyOptions {
  client: ApiClient;
  /** A Services informer to share (the agent has one for pods' service variables); started and stopped by its owner. */
  services?: Informer<KObject>;
  nodeName: string;
  /** The pod bridge (`--bridge-name`): traffic entering from it comes from this node's pods. */
  podBridge: string;
  /** `--nodeport-addresses`: CIDRs; NodePorts answer only on this node's addresses inside them. */
  nodePortAddresses?: string[];
  /** Node-local cluster DNS: the cluster DNS Service IP (udp+tcp 53) goes to `address` on every node. */
  localDns?: { clusterIp: string; address: string; port?: number };
  /** nftables table name (default skiff-proxy). */
  table?: string;
  /** The agent's data dir: records where the table is, for `skiff killall`. */
  dataDir?: string;
  /** Another writer (tests). */
  writer?: RuleWriter;
  /** Clear stale UDP conntrack entries (default true). */
  conntrack?: boolean;
}

export interface RunningServiceProxy {
  /** Resolves once the table matches the API for the first time. */
  ready: Promise<void>;
  stop(): Promise<void>;
}

/** This node's IPv4 addresses inside `cidrs` (never loopback: kube-proxy's nftables mode does not serve NodePorts there). */
export function nodePortIps(cidrs: string[]): string[] {
  const nets = cidrs.map((c) => parseCidr(c.trim())).filter((c): c is Cidr => c?.family === 4);
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) {
      if (a.family !== 'IPv4' || a.internal) continue;
      if (nets.some((c) => cidrContains(c, a.address))) out.push(a.address);
    }
  }
  return [...new Set(out)].sort();
}

/** A node forwards service traffic to pods elsewhere; bridged pod traffic must pass netfilter (hairpin, same-node replies). */
function ensureSysctls(): void {
  for (const [path, value] of [['/proc/sys/net/ipv4/ip_forward', '1'], ['/proc/sys/net/bridge/bridge-nf-call-iptables', '1']] as const) {
    try { writeFileSync(path, value); } catch (err) { log.warn({ path, err: (err as Error).message }, 'could not set sysctl; service traffic may not flow'); }
  }
}

export function startServiceProxy(o: ServiceProxyOptions): RunningServiceProxy {
  const staticOptions: StaticOptions = {
    podBridge: o.podBridge,
    nodePortIps: o.nodePortAddresses?.length ? nodePortIps(o.nodePortAddresses) : undefined,
    localDns: o.localDns,
  };
  const writer = o.writer ?? new NftRuleWriter({ ...staticOptions, table: o.table });
  const modelOptions = { nodeName: o.nodeName, reserved: reservedKeys(staticOptions) };
  const services = (o.services ?? new Informer<KObject>({ client: o.client, resource: Resources.services })) as Informer<Obj>;
  const ownsServices = o.services === undefined;
  const slices = new Informer<Obj>({
    client: o.client, resource: Resources.endpointSlices,
    indexers: { [SLICES_BY_SERVICE]: (s) => { const k = sliceServiceKey(s); return k ? [k] : []; } },
  });
  const queue = new WorkQueue<string>();
  const models = new Map<string, ServiceModel>();
  const health = new HealthCheckServer(staticOptions.nodePortIps);
  /** The Services with a health check port, kept apart so a batch costs what it changed. */
  const healthChecked = new Map<string, ServiceModel>();

  services.addHandlers({ onAdd: (s) => queue.add(key(s)), onUpdate: (_o, s) => queue.add(key(s)), onDelete: (s) => queue.add(key(s)) });
  const sliceChanged = (s: Obj) => { const k = sliceServiceKey(s); if (k) queue.add(k); };
  slices.addHandlers({ onAdd: sliceChanged, onUpdate: (_o, s) => sliceChanged(s), onDelete: sliceChanged });

  const modelOf = (k: string): ServiceModel | undefined => {
    const svc = services.get(k);
    if (!svc) return undefined;
    try {
      return buildServiceModel(svc, slices.byIndex(SLICES_BY_SERVICE, k), modelOptions);
    } catch (err) {
      // Never expected (the model skips what it cannot read), but one Service must not stop the loop.
      log.warn({ service: k, err: (err as Error).message }, 'could not read Service; skipped');
      return undefined;
    }
  };

  const remember = (k: string, m: ServiceModel | undefined) => {
    if (m) models.set(k, m); else models.delete(k);
    if (m?.healthCheckNodePort) healthChecked.set(k, m); else healthChecked.delete(k);
  };
  const syncHealth = () => health.sync([...healthChecked.values()]
    .map((m) => ({ namespace: m.namespace, name: m.name, port: m.healthCheckNodePort!, localEndpoints: m.localReadyEndpoints })));

  const applyBatch = async (keys: string[]): Promise<string[]> => {
    const t0 = performance.now();
    const changes = new Map<string, ServiceModel | undefined>();
    for (const k of keys) changes.set(k, modelOf(k));
    let failed: string[];
    try {
      failed = await writer.apply(changes);
    } catch (err) {
      log.warn({ err: (err as Error).message, services: keys.length }, 'service proxy batch failed; retrying');
      return keys;
    }
    const failedSet = new Set(failed);
    const flows: string[][] = [];
    for (const [k, m] of changes) {
      if (failedSet.has(k)) continue;
      if (o.conntrack !== false) flows.push(...staleUdpFlows(models.get(k), m));
      remember(k, m);
    }
    log.debug({ services: keys.length, failed: failed.length, ms: Math.round(performance.now() - t0) }, 'batch applied');
    syncHealth();
    if (flows.length) await clearFlows(flows);
    return failed;
  };

  let loopDone: Promise<void> | undefined;
  if (ownsServices) services.start();
  slices.start();
  const ready = (async () => {
    ensureSysctls();
    if (o.dataDir && !o.writer) recordProxyTable(o.dataDir, o.table ?? DEFAULT_TABLE);
    await Promise.all([services.waitForSync(), slices.waitForSync()]);
    for (const k of services.keys()) remember(k, modelOf(k));
    // Retried until it works: without the first reconcile nothing else may be written.
    const initialized = await retryUntilDone(() => writer.init(models.values()), () => queue.isShutDown(),
      (err, attempt) => log.warn({ err: (err as Error).message, attempt }, 'service proxy table not reconciled; retrying'));
    if (!initialized) return;
    syncHealth();
    loopDone = runBatchWorker(queue, applyBatch,
      (err, keys) => log.warn({ err: (err as Error).message, services: keys.length }, 'service proxy batch failed; retrying'));
  })();
  ready.catch((err: unknown) => log.error({ err: (err as Error).message }, 'service proxy did not start'));

  return {
    ready,
    async stop() {
      queue.shutDown();
      await Promise.all([ownsServices ? services.stop() : undefined, slices.stop()]);
      await ready.catch(() => undefined);
      await loopDone;
      writer.close?.();
      health.close();
    },
  };
}

function key(o: KObject): string {
  return `${o.metadata.namespace}/${o.metadata.name}`;
}

/** `--disable-kube-proxy`: take away what an earlier run left (k3s leaves stale rules behind). */
export async function removeServiceProxyTable(table = DEFAULT_TABLE): Promise<void> {
  if (await deleteTable('ip', table)) log.info({ table }, 'removed the service proxy table (--disable-kube-proxy)');
}
