// Node-local cluster DNS: informers on Services, EndpointSlices, Namespaces and Nodes feed one work
// queue whose reconcile rewrites the records of what changed (one Service, one namespace, one node),
// the skiff-dns ConfigMap is re-read every 15 s (CoreDNS's reload period), the upstream resolv.conf
// every 30 s, and the server listens on the pod bridge's gateway. Nothing here blocks the agent: if
// the address cannot be bound yet (bridge not up, port taken) it is retried with back-off, and with the
// API server away the caches keep answering (records stay as last seen).
//
// Pod records are "pods insecure" (CoreDNS's default and k3s's Corefile): `a-b-c-d.ns.pod.<domain>`
// answers the address it spells without a pod lookup, so the agent needs no cache of every pod in the
// cluster (it only watches its own); "verified" would cost a cluster-wide pod watch on every node.
import type { ApiClient } from '../../client/types.js';
import { Resources } from '../../client/types.js';
import { keyOf, splitKey } from '../../client/informer.js';
import { InformerFactory } from '../../client/informer-factory.js';
import { WorkQueue } from '../../client/workqueue.js';
import { runController, type RunningController } from '../../client/controller.js';
import type { KObject } from '../../api/object.js';
import { logger, type Logger } from '../../util/log.js';
import { ClusterRecords } from './records.js';
import { serviceEntry, SERVICE_NAME_LABEL } from './service-entry.js';
import { DnsCache } from './cache.js';
import { Forwarder, readUpstreams, upstreamResolvConf } from './forwarder.js';
import { DNS_CONFIGMAP, parseDnsConfigMap, type Upstream } from './config.js';
import { DnsServer } from './server.js';

export interface ClusterDnsOptions {
  client: ApiClient;
  clusterDomain: string;
  /** The cluster DNS Service IP (`ns.dns.<domain>`, never used as an upstream). */
  clusterDns: string;
  /** Address to listen on (the pod bridge's gateway). */
  listenAddress: string;
  /** Default 53. */
  port?: number;
  /** `--resolv-conf`: the upstream resolvers' file. */
  resolvConf?: string;
  /** The agent's shared informers; when absent the controller makes and stops its own. */
  informers?: InformerFactory;
  /** Runs before each bind attempt (creates the bridge and its address). */
  prepare?: () => Promise<void>;
  log?: Logger;
  /** Overrides for tests: ConfigMap reload and resolv.conf re-read periods. */
  configReloadMs?: number;
  resolvReloadMs?: number;
}

export interface ClusterDns {
  records: ClusterRecords;
  server: DnsServer;
  forwarder: Forwarder;
  /** Resolves once the server is bound (never, if it never can be; it keeps trying). */
  listening: Promise<{ address: string; port: number }>;
  stop(): Promise<void>;
}

const BIND_RETRY_MIN_MS = 1000;
/** The EndpointSlice index by owning Service (`ns/name`); named for this loop, the informer may be shared. */
const SLICE_INDEX = 'cluster-dns-service';
const BIND_RETRY_MAX_MS = 30_000;

export function startClusterDns(o: ClusterDnsOptions): ClusterDns {
  const log = o.log ?? logger('dns');
  const records = new ClusterRecords({ clusterDomain: o.clusterDomain, clusterDns: o.clusterDns });
  const own = [o.listenAddress, o.clusterDns];
  const resolvPath = upstreamResolvConf(o.resolvConf);
  const forwarder = new Forwarder({ upstreams: readUpstreams(resolvPath, own), cache: new DnsCache() });
  let stubDomains = new Map<string, Upstream[]>();
  const server = new DnsServer({ records, forwarder, stubDomains: () => stubDomains, log });
  log.info({ resolvConf: resolvPath, upstreams: forwarder.upstreamCount }, forwarder.upstreamCount ? 'forwarding non-cluster names' : 'no upstream resolver: non-cluster names get SERVFAIL');

  // Shared with the agent's other loops (the service proxy follows the same Services and slices) when
  // the agent gives its factory; otherwise this controller owns its informers.
  const ownFactory = o.informers === undefined;
  const factory = o.informers ?? new InformerFactory(o.client);
  const services = factory.informerFor<KObject>(Resources.services);
  const slices = factory.informerFor<KObject>(Resources.endpointSlices, { indexers: { [SLICE_INDEX]: (s) => {
    const svc = s.metadata.labels?.[SERVICE_NAME_LABEL];
    return svc ? [`${s.metadata.namespace}/${svc}`] : [];
  } } });
  const namespaces = factory.informerFor<KObject>(Resources.namespaces);
  // Node names answer with their InternalIPs (k3s's NodeHosts): every Node is kept, so only that.
  const nodes = factory.informerFor<KObject>(Resources.nodes, { view: { name: 'internal-ips', transform: internalIpView } });

  // Keys: `svc:<ns>/<name>`, `ns:<name>`, `node:<name>`.
  const queue = new WorkQueue<string>();
  const on = (prefix: string, keyFn: (obj: KObject) => string | undefined) => ({
    onAdd: (obj: KObject) => { const k = keyFn(obj); if (k) queue.add(prefix + k); },
    onUpdate: (_old: KObject, obj: KObject) => { const k = keyFn(obj); if (k) queue.add(prefix + k); },
    onDelete: (obj: KObject) => { const k = keyFn(obj); if (k) queue.add(prefix + k); },
  });
  services.addHandlers(on('svc:', keyOf));
  slices.addHandlers(on('svc:', (s) => {
    const svc = s.metadata.labels?.[SERVICE_NAME_LABEL];
    return svc ? `${s.metadata.namespace}/${svc}` : undefined;
  }));
  namespaces.addHandlers(on('ns:', keyOf));
  nodes.addHandlers(on('node:', keyOf));

  const reconcile = async (key: string): Promise<void> => {
    const colon = key.indexOf(':');
    const kind = key.slice(0, colon);
    const rest = key.slice(colon + 1);
    if (kind === 'svc') {
      const { namespace, name } = splitKey(rest);
      const svc = services.get(rest);
      if (!svc) records.deleteService(namespace!, name);
      else records.setService(serviceEntry(svc, slices.byIndex(SLICE_INDEX, rest)));
    } else if (kind === 'ns') {
      const ns = namespaces.get(rest);
      if (ns && ns.metadata.deletionTimestamp === undefined) records.addNamespace(rest);
      else if (!ns) records.deleteNamespace(rest);
    } else if (kind === 'node') {
      const node = nodes.get(rest) as Record<string, any> | undefined;
      if (!node) records.deleteNode(rest);
      else records.setNode(rest, (node.status?.addresses ?? []).filter((a: any) => a.type === 'InternalIP').map((a: any) => String(a.address)));
    }
  };
  const controller: RunningController = runController({ name: 'cluster-dns', queue, reconcile, workers: 1 });
  if (ownFactory) factory.start();

  // The skiff-dns ConfigMap: polled (a node may read this one object; see the node authorizer).
  let lastConfig = '';
  let configUpstreams: Upstream[] | undefined;
  // The ConfigMap's upstreamNameservers, else the resolv.conf's nameservers (re-read: DHCP may change them).
  const upstreams = () => configUpstreams ?? readUpstreams(upstreamResolvConf(o.resolvConf), own);
  const loadConfig = async () => {
    try {
      const cm = await o.client.get<KObject & { data?: Record<string, string> }>(Resources.configMaps, DNS_CONFIGMAP.namespace, DNS_CONFIGMAP.name);
      const sig = JSON.stringify(cm?.data ?? null);
      if (sig === lastConfig) return;
      lastConfig = sig;
      const parsed = parseDnsConfigMap(cm?.data);
      records.setExtraHosts(parsed.hosts);
      stubDomains = parsed.stubDomains;
      configUpstreams = parsed.upstreamNameservers;
      forwarder.setUpstreams(upstreams());
      if (parsed.problems.length) log.warn({ configMap: `${DNS_CONFIGMAP.namespace}/${DNS_CONFIGMAP.name}`, problems: parsed.problems }, 'ignored bad DNS settings');
      log.info({ hosts: parsed.hosts.size, stubDomains: [...parsed.stubDomains.keys()], upstreams: forwarder.upstreamCount }, 'DNS settings loaded');
    } catch (err) {
      log.debug({ err: (err as Error).message }, 'DNS ConfigMap not read; keeping the last settings');
    }
  };
  void loadConfig();
  const configTimer = setInterval(() => void loadConfig(), o.configReloadMs ?? 15_000);
  const resolvTimer = setInterval(() => forwarder.setUpstreams(upstreams()), o.resolvReloadMs ?? 30_000);
  configTimer.unref();
  resolvTimer.unref();

  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  const listening = new Promise<{ address: string; port: number }>((resolve) => {
    let delay = BIND_RETRY_MIN_MS;
    const attempt = async () => {
      if (stopped) return;
      try {
        await o.prepare?.();
        const { port } = await server.listen(o.listenAddress, o.port ?? 53);
        log.info({ address: o.listenAddress, port }, 'cluster DNS listening');
        resolve({ address: o.listenAddress, port });
      } catch (err) {
        log.warn({ address: o.listenAddress, port: o.port ?? 53, err: (err as Error).message, retryMs: delay }, 'cluster DNS cannot listen yet; retrying');
        retryTimer = setTimeout(() => void attempt(), delay);
        delay = Math.min(delay * 2, BIND_RETRY_MAX_MS);
      }
    };
    // Answer with synced caches when the API is there (CoreDNS waits too), and once the records are
    // built from them (a restarted agent must not answer NXDOMAIN for a name it is about to learn), but
    // never wait long for either.
    const deadline = Date.now() + 5_000;
    const synced = Promise.all([services, slices, namespaces, nodes].map((i) => i.waitForSync(5_000).catch(() => undefined)));
    const built = async () => { while (queue.len() > 0 && Date.now() < deadline && !stopped) await new Promise((r) => setTimeout(r, 20)); };
    void synced.then(built).then(attempt);
  });

  return {
    records, server, forwarder, listening,
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      clearInterval(configTimer);
      clearInterval(resolvTimer);
      await controller.stop();
      if (ownFactory) await factory.stop();
      await server.close();
    },
  };
}

/** A Node reduced to its name and InternalIP addresses: all the cluster DNS reads of it. */
export function internalIpView(n: KObject): KObject {
  const addresses = ((n as { status?: { addresses?: { type?: string; address?: string }[] } }).status?.addresses ?? [])
    .filter((a) => a.type === 'InternalIP').map((a) => ({ type: 'InternalIP', address: String(a.address) }));
  return { apiVersion: 'v1', kind: 'Node', metadata: { name: n.metadata.name, resourceVersion: n.metadata.resourceVersion }, status: { addresses } } as KObject;
}
