// `skiff agent`: joins the cluster with a token, starts and supervises containerd, registers the
// Node, renews its Lease, and runs the pods bound to it as real containers. Each concern lives in
// its own module (join, runtime/, pods/, tunnel/); this file only composes them, in the order a node
// comes up: credentials → Node → pod network → runtime → images → pods.
import { join } from 'node:path';
import { mkdirSync } from 'node:fs';
import { parseToken } from '../pki/token.js';
import { credentialsPath, ensureNodeCredentials, fetchAgentConfig, fetchTrustedCaBundle, storedCaBundle } from './join.js';
import { startClientCertRotation } from './client-cert-rotation.js';
import { HttpClient } from '../client/http.js';
import { Resources, isAlreadyExists, isNotFound } from '../client/types.js';
import { Informer } from '../client/informer.js';
import { ContainerdSupervisor } from './runtime/containerd.js';
import { CriClient } from './runtime/cri-client.js';
import { ensurePauseImage, importImageDir } from './runtime/images.js';
import { preparePodNetwork } from './network/pod-network.js';
import { startServiceProxy, removeServiceProxyTable } from './network/proxy/controller.js';
import { startL2Announcer } from './network/l2/announcer.js';
import { startNetworkPolicy } from './network/policy/controller.js';
import { removePolicyTable } from './network/policy/writer.js';
import { startIngressController, unmarkIngressNode } from './network/ingress/controller.js';
import { loadRegistries, useRegistries, writeRegistryHosts } from './runtime/registries.js';
import { PodManager } from './pods/pod-manager.js';
import { startClusterDns } from './dns/controller.js';
import { upstreamResolvConf } from './dns/forwarder.js';
import { ensureBridgeAddress, podGateway } from './dns/listen-address.js';
import { AgentTunnel, runtimeStreamHandler } from './tunnel/client.js';
import { AgentLoadBalancer } from './loadbalancer/balancer.js';
import { followServerEndpoints } from './loadbalancer/follow-endpoints.js';
import { loadServerList } from './loadbalancer/server-list.js';
import { ClientPodApi } from './pods/pod-api.js';
import type { Obj } from './pods/pod-api.js';
import type { KObject } from '../api/object.js';
import { leaseObject, parseLabel, parseTaint, NODE_CONNECT_TIMEOUT_MS, RUNTIME_NOT_READY } from './node-objects.js';
import { microTime, rfc3339 } from '../util/time.js';
import { hostCapacity, nodeObject, nodeStatus, statusDiffers, type NodeIdentity } from './node-status.js';
import { VERSION } from '../version.js';
import { logger } from '../util/log.js';
import { Registry } from 'prom-client';
import { currentMetricsRegistry, withMetricsRegistry } from '../client/metrics-scope.js';
import { AgentMetrics } from './metrics.js';
import { startUpgradeExecutor } from './upgrade-executor.js';

const log = logger('agent');

export interface AgentConfig {
  server: string;
  token: string;
  dataDir: string;
  nodeName: string;
  nodeIp: string;
  nodeExternalIp?: string;
  nodeLabels: string[];
  nodeTaints: string[];
  containerRuntimeEndpoint?: string;
  clusterDns: string;
  clusterDomain: string;
  /** Lease renewal and node status period (the kubelet's 10 s). */
  heartbeatSeconds?: number;
  /** Linux bridge of the pod network (one per network namespace). */
  bridgeName?: string;
  /** `--private-registry`: a k3s-style registries.yaml; default /etc/skiff/registries.yaml when present. */
  privateRegistry?: string;
  /** `--resolv-conf`: upstream resolvers for cluster DNS and for dnsPolicy Default pods. */
  resolvConf?: string;
  /** `--disable-dns`: this node serves no cluster DNS. */
  disableDns?: boolean;
  /** `--disable-kube-proxy`: no service proxy; its table is removed. */
  disableKubeProxy?: boolean;
  /** `--nodeport-addresses`: CIDRs the NodePorts answer on. */
  nodePortAddresses?: string[];
  /** `--flannel-iface`: the interface the pod network backend uses (default: the node IP's). */
  flannelIface?: string;
  /** `--disable-network-policy`: no NetworkPolicy enforcement; its table is removed. */
  disableNetworkPolicy?: boolean;
  /** `--ingress-http-port` / `--ingress-https-port` (default 80 / 443; 0 turns that listener off). */
  ingressHttpPort?: number;
  ingressHttpsPort?: number;
  /** `--ingress-bind-address`: the address the ingress proxy listens on (default every IPv4 address). */
  ingressBindAddress?: string;
}

export interface RunningAgent {
  nodeName: string;
  stop(): Promise<void>;
}

export function startAgent(c: AgentConfig): Promise<RunningAgent> {
  // Everything this agent starts (its control loops, pod workers) reports to its own registry, apart
  // from the server's when both run in one process.
  return withMetricsRegistry(new Registry(), () => startAgentScoped(c));
}

async function startAgentScoped(c: AgentConfig): Promise<RunningAgent> {
  const t0 = performance.now();
  mkdirSync(join(c.dataDir, 'agent'), { recursive: true, mode: 0o700 });
  const token = parseToken(c.token);
  const credentialsDir = join(c.dataDir, 'agent', 'credentials');
  // Every client below dials the local load balancer, which moves them to another server when theirs
  // dies (see docs/datastores.md, "Agents fail over"); the list it starts from survives restarts.
  const lb = new AgentLoadBalancer({ servers: loadServerList(c.dataDir, c.server) });
  await lb.start();
  const server = lb.url;
  // Errors name the server the balancer reached, not the balancer's own loopback address.
  const named = (err: unknown): never => {
    if (err instanceof Error && lb.currentServer) err.message = err.message.split(server).join(`https://${lb.currentServer}`);
    throw err;
  };
  const caBundle = await fetchTrustedCaBundle(server, token, storedCaBundle(credentialsDir, c.nodeName)).catch(named);
  const creds = await ensureNodeCredentials(c.nodeName, {
    server, credentialsDir, token, caBundle,
  }).catch(named);
  const client = new HttpClient({
    server, caPem: creds.caPem, certPem: creds.certPem, keyPem: creds.keyPem,
    userAgent: `kubelet/${VERSION.gitVersion} (linux) skiff-agent`, connectTimeoutMs: NODE_CONNECT_TIMEOUT_MS,
  });
  const cluster = await fetchAgentConfig(server, caBundle, token.password, creds).catch(named);
  const serverList = followServerEndpoints({ client, balancer: lb, dataDir: c.dataDir, serverUrl: c.server });
  await serverList.refresh();
  log.info({ node: c.nodeName, server: c.server, via: lb.currentServer, servers: lb.servers(), flannelBackend: cluster.flannelBackend, ms: Math.round(performance.now() - t0) }, 'joined');

  // The hosts.toml directory is always configured (empty without a registries.yaml): containerd reads
  // it at every pull, so an adopted containerd picks up a changed registries.yaml too.
  const registries = loadRegistries(c.privateRegistry);
  const registryConfigDir = join(c.dataDir, 'agent', 'etc', 'containerd', 'certs.d');
  writeRegistryHosts(registryConfigDir, registries ?? { mirrors: {}, configs: {} });
  useRegistries(c.dataDir, registries);
  const supervisor = new ContainerdSupervisor({ dataDir: c.dataDir, runtimeEndpoint: c.containerRuntimeEndpoint, registryConfigDir });
  const id: NodeIdentity = {
    name: c.nodeName, internalIp: c.nodeIp, externalIp: c.nodeExternalIp,
    labels: Object.fromEntries(c.nodeLabels.map(parseLabel)), taints: c.nodeTaints.map(parseTaint),
    dataDir: c.dataDir, runtimeVersion: 'containerd://starting',
    // Registered not Ready, as the kubelet: the scheduler must not count on it before containerd runs.
    notReady: RUNTIME_NOT_READY,
  };
  const readySince = new Date();
  await registerNode(client, id, readySince);
  const podCidr = await waitForPodCidr(client, c.nodeName);
  // The pod network: a bridge on this node (CNI) and the cluster's backend to the other nodes' pods.
  const podNetwork = c.containerRuntimeEndpoint ? undefined : await preparePodNetwork({
    backend: cluster.flannelBackend, dataDir: c.dataDir, nodeName: c.nodeName, nodeIp: c.nodeIp, podCidr,
    iface: c.flannelIface, cniConfDir: supervisor.cniConfDir, bridgeName: c.bridgeName ?? 'skiff0',
  });
  // Cluster DNS from this agent's own caches, on the pod bridge's gateway (the proxy sends --cluster-dns
  // there). With `--flannel-backend none` the pods' network is the user's own CNI: no bridge of ours.
  const gw = podGateway(podCidr);
  const dns = c.disableDns || !podNetwork || cluster.flannelBackend === 'none' ? undefined : startClusterDns({
    client, clusterDomain: c.clusterDomain, clusterDns: c.clusterDns, resolvConf: c.resolvConf, listenAddress: gw.address,
    prepare: () => ensureBridgeAddress(c.bridgeName ?? 'skiff0', gw.address, gw.prefix),
  });
  await supervisor.start();
  const cri = new CriClient(supervisor.endpoint);
  const metrics = new AgentMetrics(currentMetricsRegistry()!, cri, c.nodeName);
  const v = await cri.version();
  id.runtimeVersion = `${v.runtimeName}://${v.runtimeVersion}`;
  const imageOpts = { dataDir: c.dataDir, containerdSocket: supervisor.paths.socket, cri };
  await ensurePauseImage(imageOpts);
  const imported = await importImageDir(imageOpts);
  log.info({ files: imported.length, runtime: id.runtimeVersion, podCidr }, 'runtime ready');

  delete id.notReady;
  readySince.setTime(Date.now());
  const heartbeat = startHeartbeat(client, id, readySince, (c.heartbeatSeconds ?? 10) * 1000, () => runtimeNetworkNotReady(cri));
  await heartbeat.beat();
  // Moved to another server (its own died or stopped answering): tell the cluster at once that this
  // node is alive, rather than at the next period.
  lb.on('switched', (from?: string) => { if (from) void heartbeat.beat(); });

  const peers = await podNetwork?.follow(client);

  // Services, for the variables the kubelet gives containers (KUBERNETES_SERVICE_HOST, service links).
  const services = new Informer<KObject>({ client, resource: Resources.services });
  // Services → nftables (kube-proxy's job, sharing the Services cache); the cluster DNS IP goes to this node's own DNS server.
  if (c.disableKubeProxy) await removeServiceProxyTable();
  const proxy = c.disableKubeProxy ? undefined : startServiceProxy({ client, services, nodeName: c.nodeName, podBridge: c.bridgeName ?? 'skiff0', dataDir: c.dataDir,
    nodePortAddresses: c.nodePortAddresses, localDns: { clusterIp: c.clusterDns, address: gw.address } });
  // Pool addresses announced on the LAN (issue 12); only with the proxy, which is what answers on them.
  const l2 = c.disableKubeProxy ? undefined : startL2Announcer({ client, services, nodeName: c.nodeName, nodeIp: c.nodeIp });
  // The built-in ingress controller (issue 12), unless the server turned it off for the whole cluster.
  const ingressPorts = { httpPort: c.ingressHttpPort ?? 80, httpsPort: c.ingressHttpsPort ?? 443 };
  const ingress = cluster.disableIngress || (!ingressPorts.httpPort && !ingressPorts.httpsPort) ? undefined
    : await startIngressController({ client, services, nodeName: c.nodeName, ...ingressPorts, address: c.ingressBindAddress });
  if (!ingress) await unmarkIngressNode(client, c.nodeName);
  services.start();
  await services.waitForSync();
  // NetworkPolicy (k3s's embedded kube-router netpol): new pods wait for their rules before their containers.
  if (c.disableNetworkPolicy) await removePolicyTable();
  const netpol = c.disableNetworkPolicy ? undefined : startNetworkPolicy({ client, nodeName: c.nodeName, dataDir: c.dataDir,
    dnsAddress: dns ? gw.address : undefined, podCidr: podNetwork && cluster.flannelBackend !== 'none' ? podCidr : undefined });
  const pods = new PodManager({
    cri, dataDir: c.dataDir, nodeName: c.nodeName, nodeIp: c.nodeIp,
    clusterDns: c.clusterDns, clusterDomain: c.clusterDomain, api: new ClientPodApi(client, c.nodeName),
    resolvConf: upstreamResolvConf(c.resolvConf),
    services: () => services.list() as Obj[],
    networkReady: netpol ? (pod, ips) => admitWithin(netpol.admit(pod, ips), 30_000) : undefined,
  });
  await pods.adopt();
  const informer = new Informer<KObject>({ client, resource: Resources.pods, fieldSelector: `spec.nodeName=${c.nodeName}` });
  informer.addHandlers({
    onAdd: (p) => pods.sync(p as Obj),
    onUpdate: (_o, p) => pods.sync(p as Obj),
    onDelete: (p) => { void pods.remove(p.metadata.uid!); },
  });
  informer.start();
  await informer.waitForSync();
  await pods.reconcile(informer.list() as Obj[]);
  // logs/exec/attach/port-forward reach this node through one outbound tunnel (no inbound port: NAT-friendly).
  const tunnelOpts = {
    serverUrl: server, nodeName: c.nodeName, caPem: creds.caPem, certPem: creds.certPem, keyPem: creds.keyPem,
    serve: runtimeStreamHandler({ cri, metrics }),
  };
  const tunnel = new AgentTunnel(tunnelOpts);
  tunnel.start();
  // Client certificate renewal (and a rotated CA bundle) without a restart; the tunnel reads its
  // options at each dial, so the next one uses the renewed certificate.
  const certRotation = startClientCertRotation({
    client, server, nodeName: c.nodeName, creds,
    credentialsPath: credentialsPath(credentialsDir, c.nodeName),
    onRotated: (n) => Object.assign(tunnelOpts, { caPem: n.caPem, certPem: n.certPem, keyPem: n.keyPem }),
  });
  log.info({ node: c.nodeName, startupMs: Math.round(performance.now() - t0) }, 'skiff agent ready');
  // Rolling upgrades (src/controllers/upgrade): started once Ready, which is what confirms an upgrade.
  const upgrades = await startUpgradeExecutor({ client, nodeName: c.nodeName, dataDir: c.dataDir, server, creds });

  return {
    nodeName: c.nodeName,
    async stop() {
      await upgrades.stop();
      heartbeat.stop();
      certRotation.stop();
      serverList.stop();
      tunnel.stop();
      await informer.stop();
      await services.stop();
      await dns?.stop();
      await peers?.stop();
      await l2?.stop();   // hands its addresses over to another node at once
      await ingress?.stop();
      await proxy?.stop();   // its rules stay in the kernel: traffic keeps flowing while the agent is down
      await netpol?.stop();   // likewise: isolation holds while the agent is down
      // Containers keep running: a restarted agent adopts them (and containerd keeps running too).
      await pods.stop();
      cri.close();
      client.close();
      await lb.stop();
      useRegistries(c.dataDir, undefined);
    },
  };
}

/** The pod worker retries later (its containers keep waiting) when the rules take longer than this. */
function admitWithin(p: Promise<void>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_r, reject) => { timer = setTimeout(() => reject(new Error(`network policy rules not programmed within ${ms / 1000} s`)), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

async function registerNode(client: HttpClient, id: NodeIdentity, readySince: Date): Promise<void> {
  const node = nodeObject(id, readySince);
  try {
    await client.create(Resources.nodes, undefined, node);
    log.info({ node: id.name }, 'registered node');
  } catch (e) {
    if (!isAlreadyExists(e)) throw e;
    // Labels and taints are applied at first registration only (k3s habit); status is refreshed.
    await client.patch(Resources.nodes, undefined, id.name, 'merge', { status: node.status }, { subresource: 'status' });
  }
}

/** The node IPAM controller gives every node a /24; without a controller manager, fall back to one. */
async function waitForPodCidr(client: HttpClient, name: string): Promise<string> {
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    const n = await client.get<any>(Resources.nodes, undefined, name);
    if (n?.spec?.podCIDR) return n.spec.podCIDR;
    await new Promise((r) => setTimeout(r, 200));
  }
  log.warn({ node: name }, 'no podCIDR assigned within 15 s; using 10.42.0.0/24');
  return '10.42.0.0/24';
}

/** Node status is posted at least this often even when nothing changed (the kubelet's nodeStatusReportFrequency). */
const NODE_STATUS_REPORT_MS = 5 * 60_000;

/** Lease renewal and node status, as the kubelet does them; failures are logged and retried next beat. */
function startHeartbeat(client: HttpClient, id: NodeIdentity, readySince: Date, periodMs: number, notReady?: () => Promise<string | undefined>) {
  let timer: NodeJS.Timeout | undefined;
  let leaseRv: string | undefined;
  let stopped = false;
  let lastStatusPost: number | undefined;
  const beat = async () => {
    const now = new Date();
    // A runtime that cannot be asked this time keeps the last answer.
    const why = notReady ? await notReady().catch(() => id.notReady) : id.notReady;
    if (why !== id.notReady) {
      if (why) id.notReady = why; else delete id.notReady;
      readySince.setTime(now.getTime());
    }
    try {
      if (leaseRv === undefined) {
        const existing = await client.get<any>(Resources.leases, 'kube-node-lease', id.name);
        if (existing) leaseRv = existing.metadata.resourceVersion;
      }
      if (leaseRv === undefined) {
        const node = await client.get<any>(Resources.nodes, undefined, id.name);
        const created = await client.create<any>(Resources.leases, 'kube-node-lease', leaseObject(id.name, node?.metadata.uid, now));
        leaseRv = created.metadata.resourceVersion;
      } else {
        const updated = await client.patch<any>(Resources.leases, 'kube-node-lease', id.name, 'merge', { spec: { renewTime: microTime(now), holderIdentity: id.name } });
        leaseRv = updated.metadata.resourceVersion;
      }
      // Node status only when it differs from what the server holds, or once per report period
      // (the kubelet's nodeStatusReportFrequency): the Lease is the heartbeat. A status write goes
      // to every Node watcher of the cluster (each agent's overlay), a GET to nobody.
      const status = nodeStatus(id, hostCapacity(id.dataDir), readySince, rfc3339(now));
      const due = lastStatusPost === undefined || now.getTime() - lastStatusPost >= NODE_STATUS_REPORT_MS;
      const server = due ? undefined : await client.get<any>(Resources.nodes, undefined, id.name);
      if (due || !server || statusDiffers(server.status, status)) {
        await client.patch(Resources.nodes, undefined, id.name, 'merge', { status }, { subresource: 'status' });
        lastStatusPost = now.getTime();
      }
      return true;
    } catch (err) {
      if (isNotFound(err)) {
        // The Node was deleted from the API: register again (as the kubelet does).
        leaseRv = undefined;
        await registerNode(client, id, readySince).catch(() => undefined);
      }
      log.warn({ err: err instanceof Error ? err.message : String(err) }, 'heartbeat failed; retrying');
      return false;
    }
  };
  // A failed beat is retried soon (1 s, doubling up to the period), as the kubelet's lease controller
  // retries: a beat lost to a server that just died must not cost the node a whole period.
  let retryMs = 0;
  const loop = (ok = true) => {
    if (stopped) return;
    retryMs = ok ? 0 : Math.min(periodMs, retryMs ? retryMs * 2 : 1000);
    timer = setTimeout(() => { void beat().then(loop); }, ok ? periodMs : retryMs);
  };
  loop();
  return { beat, stop() { stopped = true; if (timer) clearTimeout(timer); } };
}

/**
 * The kubelet's network readiness: the node is not Ready while the runtime says its network is not
 * (no CNI config yet, e.g. `--flannel-backend none` before the user installs a CNI), with the
 * kubelet's message.
 */
async function runtimeNetworkNotReady(cri: CriClient): Promise<string | undefined> {
  const net = (await cri.status()).status?.conditions.find((x) => x.type === 'NetworkReady');
  if (!net || net.status) return undefined;
  return `container runtime network not ready: NetworkReady=false reason:${net.reason} message:${net.message}`;
}
