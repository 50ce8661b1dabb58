// `skiff server`: wires storage, PKI, the API server and the control loops together, in that order,
// and tears them down on SIGTERM. Each piece lives in its own module; this file only composes them.
import { mkdirSync } from 'node:fs';
import { hostname, networkInterfaces } from 'node:os';
import { join, resolve } from 'node:path';
import { openStore, startEventTtl, type DatastoreTls, type EtcdBackend } from '../storage/index.js';
import { startEmbeddedEtcd } from './embedded-etcd.js';
import { handleEtcdJoin } from './embedded-etcd-join.js';
import { isSharedEndpoint, prepareFromEndpoint, rekeyDatastoreBootstrap } from './datastore-bootstrap.js';
import { handleEncryptRoute, SecretsEncryption } from './secrets-encryption.js';
import { createAuditor, type AuditOptions } from '../apiserver/audit/index.js';
import { ApiServerMetrics } from '../apiserver/prometheus.js';
import { withMetricsRegistry } from '../client/metrics-scope.js';
import { listenBacklog } from '../util/listen-backlog.js';
import { AcceptHelper } from './accept-handles.js';
import { directFrontDoor, TlsFront, type FrontDoor, type ListenOptions } from './tls-front.js';
import type { FrontTls } from './tls-front-protocol.js';
import { loopBudgetFromEnv } from '../util/loop-budget.js';
import { TimedBackend } from '../storage/timed-backend.js';
import type { Store } from '../storage/index.js';
import { ensureServerPkiIsolated, issueClientCertIsolated, signCsrIsolated } from '../pki/isolated.js';
import { ensureServerToken } from '../pki/token.js';
import { writeKubeconfig } from '../pki/kubeconfig.js';
import { serveDashboard } from '../dashboard/serve.js';
import { ResourceRegistry } from '../apiserver/registry.js';
import { CrdManager } from '../apiserver/crds.js';
import { Admission } from '../apiserver/admission.js';
import { ServiceAllocator, firstServiceIp } from '../apiserver/allocators.js';
import { ObjectService } from '../apiserver/objects.js';
import { Authenticator } from '../apiserver/authn.js';
import { RbacAuthorizer } from '../apiserver/rbac.js';
import { ServiceAccountTokens, serviceAccountTokenLive } from '../apiserver/serviceaccount-tokens.js';
import { OpenApiV3 } from '../apiserver/openapi.js';
import { loadSchemaSet } from '../api/schema.js';
import { createApiServer, SERVER_TLS_SECURE_OPTIONS } from '../apiserver/server.js';
import { connectionLimits } from '../apiserver/connection-limits.js';
import type https from 'node:https';
import type http from 'node:http';
import type { ApiContext } from '../apiserver/context.js';
import { storeRbacSource } from '../apiserver/rbac-source.js';
import { chainAuthorizer } from '../apiserver/authorizer.js';
import { attachNodeProxy } from '../apiserver/tunnel/node-proxy.js';
import { leaseHolders, TunnelRelay } from '../apiserver/tunnel/relay.js';
import { handleJoin, type JoinDeps } from '../apiserver/node-join.js';
import { handleAgentConfig } from '../apiserver/agent-config.js';
import type { FlannelBackend } from '../api/agent-config.js';
import { NODES_GROUP } from '../apiserver/node-authorizer.js';
import { converterFor } from '../apiserver/conversion.js';
import { TunnelServer } from '../apiserver/tunnel/registry.js';
import { attachTunnels } from '../apiserver/tunnel/pod-streams.js';
import { routeUpgradesAsRequests } from '../apiserver/tunnel/upgrade.js';
import { bootstrapObjects } from './bootstrap.js';
import { startCertRenewal } from './cert-renewal.js';
import { handleTokenRoute } from './token-rotation.js';
import { leaderIdentity, startControllerManager, type ControllerManager, type ControllerStarter } from './controller-manager.js';
import { startApiServerEndpoints } from './kubernetes-endpoints.js';
import { serverId } from './server-id.js';
import { serverHealthChecks } from './health-checks.js';
import { LocalApiServices } from '../apiserver/apiservices.js';
import { Aggregator } from '../apiserver/aggregation/index.js';
import { startApiServiceAvailability } from '../apiserver/aggregation/availability.js';
import { startAuthenticationPublisher } from '../apiserver/aggregation/authentication-configmap.js';
import { AUTH_PROXY_USER } from '../pki/front-proxy.js';
import { startRootCaPublisher } from '../controllers/root-ca-publisher.js';
import { startCsrSigningController } from '../controllers/csr-signing.js';
import { startCsrApprovingController } from '../controllers/csr-approving.js';
import { startPersistentVolumeController } from '../controllers/persistent-volume.js';
import { startManifestDeployer } from '../controllers/manifests.js';
import { startEphemeralVolumeController } from '../controllers/ephemeral-volume.js';
import { startHorizontalPodAutoscaler } from '../controllers/hpa/controller.js';
import { podUsage } from '../apiserver/metrics.js';
import { apiVersionOf } from '../api/kinds.js';
import { removeLocalPath } from '../apiserver/tunnel/local-path.js';
import { startClusterRoleAggregationController } from '../controllers/clusterrole-aggregation.js';
import { startSchedulerController } from '../controllers/scheduler-loop.js';
import { startReplicaSetController } from '../controllers/replicaset/controller.js';
import { startDeploymentController } from '../controllers/deployment/controller.js';
import { garbageCollectorStarter } from '../controllers/garbage-collector.js';
import { startNodeIpamController } from '../controllers/node-ipam.js';
import { startEndpointsController } from '../controllers/endpoints.js';
import { startDisruptionController } from '../controllers/disruption.js';
import { startResourceQuotaController } from '../controllers/resourcequota.js';
import { startDaemonSetController } from '../controllers/daemonset/controller.js';
import { startStatefulSetController } from '../controllers/statefulset/controller.js';
import { startJobController } from '../controllers/job/controller.js';
import { startCronJobController } from '../controllers/cronjob.js';
import { startUpgradeController } from '../controllers/upgrade/controller.js';
import { apiServerPeers, fetchFromPeers, handleReleaseDownload } from '../controllers/upgrade/artifacts.js';
import { startNamespaceController } from '../controllers/namespace.js';
import { startNodeLifecycleController, startTaintEvictionController } from '../controllers/node-lifecycle.js';
import { startLoadBalancerController } from '../controllers/loadbalancer/controller.js';
import { LocalClient } from '../apiserver/local-client.js';
import { upgradeHead } from '../apiserver/tunnel/upgrade.js';
import { FleetManager } from '../fleet/manager.js';
import { fleetPatcher } from './fleet-patcher.js';
import { CLUSTERS, CLUSTERS_GROUP, CLUSTER_USER_PREFIX, FLEET_GROUP } from '../fleet/api.js';
import { errors } from '../api/status.js';
import { FLEET_PROXY_USER, fleetProxyRbac, startSite, type RunningSite } from '../fleet/site.js';
import { VERSION } from '../version.js';
import { startIngressStatusController } from '../controllers/ingress/controller.js';
import { logger } from '../util/log.js';
import { applyProfile, PROFILES } from './profile.js';
import { StartupPriority, startupBoost } from './startup-priority.js';
import { passes } from '../apiserver/health.js';
import { startBackups, type BackupConfig } from './snapshot-service.js';

const log = logger('server');
/**
 * Descriptors of the listening socket besides the first: connections accepted per event-loop turn,
 * less one (accept-handles.ts). 16 handles unless SKIFF_ACCEPT_HANDLES says otherwise (0 or 1 turns
 * the extra ones off).
 */
const ACCEPT_HANDLES = Number.parseInt(process.env.SKIFF_ACCEPT_HANDLES ?? '', 10);
const EXTRA_ACCEPT_HANDLES = Math.max(0, Math.min(63, (Number.isNaN(ACCEPT_HANDLES) ? 16 : ACCEPT_HANDLES) - 1));

export interface ServerConfig {
  dataDir: string;
  bindAddress: string;
  httpsListenPort: number;
  advertiseAddress?: string;
  tlsSan: string[];
  token?: string;
  writeKubeconfig: string;
  writeKubeconfigMode: number;
  clusterCidr: string;
  /** The pod network backend of every node (`--flannel-backend`; agents read it at start). Default vxlan. */
  flannelBackend?: FlannelBackend;
  serviceCidr: string;
  serviceNodePortRange: string;
  clusterDns: string;
  clusterDomain: string;
  disableAgent: boolean;
  watchCacheSize: number;
  /** The resource profile (src/server/profile.ts); logged with the heap limit it got. */
  profile?: 'small' | 'default';
  /** `--datastore-endpoint`; unset: SQLite under the data dir. */
  datastoreEndpoint?: string;
  /** `--datastore-cafile/-certfile/-keyfile`. */
  datastoreTls?: DatastoreTls;
  /** `--cluster-init`: embedded etcd (embedded-etcd.ts). */
  clusterInit?: boolean;
  /** `--server` on a server: join that server's embedded etcd cluster. */
  joinServer?: string;
  etcdClientPort?: number;
  etcdPeerPort?: number;
  /** `--event-ttl` in seconds (default 1 h; 0: Events never expire). */
  eventTtlSeconds?: number;
  disableScheduler: boolean;
  /** `--leader-elect` (default true): loops run only on the server holding their Lease (controller-manager.ts). */
  leaderElect?: boolean;
  /** `--leader-elect-lease-duration/-renew-deadline/-retry-period` (Kubernetes' 15 s, 10 s, 2 s when unset). */
  leaderElection?: { leaseDurationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  /** Runs no control loop but the namespace lifecycle (API-only tests and debugging). */
  disableControllerManager: boolean;
  /** How often each HPA is evaluated (kube-controller-manager's flag of the same name; 15 s). */
  horizontalPodAutoscalerSyncPeriodSeconds?: number;
  /** No `local-path` StorageClass (k3s: --disable local-storage). */
  disableLocalStorage?: boolean;
  /** No node-address load balancing for Services no pool serves (k3s: --disable servicelb). */
  disableServiceLb?: boolean;
  /** No built-in ingress controller on any node, no `skiff` IngressClass (k3s: --disable traefik). */
  disableIngress?: boolean;
  /** No web dashboard under /dashboard/ (issue 16). */
  disableDashboard?: boolean;
  /** Where local-path volumes live on their nodes; default `<data dir>/storage`, as k3s. */
  defaultLocalStoragePath?: string;
  /** The embedded agent's node flags (unset values take the agent's defaults). */
  node?: {
    nodeName?: string; nodeIp?: string; nodeExternalIp?: string; nodeLabels?: string[]; nodeTaints?: string[];
    containerRuntimeEndpoint?: string; bridgeName?: string; privateRegistry?: string;
    resolvConf?: string; disableDns?: boolean;
    disableKubeProxy?: boolean; nodePortAddresses?: string[];
    flannelIface?: string; disableNetworkPolicy?: boolean;
    ingressHttpPort?: number; ingressHttpsPort?: number; ingressBindAddress?: string;
  };
  nodeMonitorGracePeriodSeconds: number;
  defaultNotReadyTolerationSeconds: number;
  defaultUnreachableTolerationSeconds: number;
  /** Encrypt Secrets at rest (k3s --secrets-encryption); an existing encryption config is always loaded. */
  secretsEncryption?: boolean;
  /** Audit logging (kube-apiserver's --audit-* flags). */
  audit?: AuditOptions;
  /** Scheduled snapshots and continuous backup (snapshot-service.ts). */
  backups?: BackupConfig;
  /** Fleet: this server's side as a manager (`--fleet-offline-grace`), and as a site (`--fleet-server`...). */
  fleet?: {
    offlineGraceSeconds?: number;
    lastSeenIntervalSeconds?: number;
    server?: string;
    token?: string;
    clusterName?: string;
    clusterLabels?: Record<string, string>;
    heartbeatSeconds?: number;
    /** Bundles are applied again this often on a site (drift correction). */
    driftSeconds?: number;
  };
}

/** The control loops `skiff server` runs, by name (names are what --disable-* flags refer to). */
const CONTROLLERS: Record<string, ControllerStarter> = {
  namespace: startNamespaceController,
  scheduler: (ctx) => startSchedulerController(ctx),
  replicaset: (ctx) => startReplicaSetController(ctx),
  deployment: (ctx) => startDeploymentController(ctx),
  'node-lifecycle': startNodeLifecycleController,
  'taint-eviction': startTaintEvictionController,
  daemonset: (ctx) => startDaemonSetController(ctx),
  statefulset: (ctx) => startStatefulSetController(ctx),
  job: (ctx) => startJobController(ctx),
  cronjob: (ctx) => startCronJobController(ctx),
  endpoints: startEndpointsController,
  disruption: startDisruptionController,
  resourcequota: startResourceQuotaController,
  'clusterrole-aggregation': startClusterRoleAggregationController,
  'ephemeral-volume': startEphemeralVolumeController,
};

export interface RunningServer {
  ctx: ApiContext;
  /** The join token (the embedded agent uses it like any other node). */
  token: string;
  url: string;
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig): Promise<RunningServer> {
  // Before the front: a bad SKIFF_STARTUP_BOOST is refused with nothing started.
  const priority = new StartupPriority(log, startupBoost(process.env));
  // Started first, so that it is ready when the server listens (accept-handles.ts says why).
  const front = startFrontDoor(config);
  try {
    return await startServerWith(config, front, priority);
  } catch (err) {
    priority.lower();
    await front.abandon();
    throw err;
  }
}

/**
 * The API port's listener and TLS (tls-front.ts): in a worker thread unless the profile says
 * otherwise or SKIFF_TLS_FRONT=0 (then on this thread, as Node's HTTPS server).
 */
function startFrontDoor(config: ServerConfig): {
  /** The API server is plain HTTP behind the worker. */
  behindFront: boolean;
  /**
   * Takes connections before the API server exists, holding them until it serves (the worker only;
   * Node's HTTPS server cannot hold a connection apart from its handler).
   */
  acceptEarly(o: ListenOptions, tls: FrontTls): Promise<void>;
  /** The door for the API server, once it exists. */
  open(server: https.Server | http.Server, tls: FrontTls): FrontDoor;
  abandon(): Promise<void>;
} {
  const limits = connectionLimits();
  if (PROFILES[config.profile ?? 'default'].tlsInWorker && process.env.SKIFF_TLS_FRONT !== '0') {
    const worker = new TlsFront({
      extraAcceptHandles: EXTRA_ACCEPT_HANDLES, handshakeMs: limits.handshakeMs, maxConnectionsPerAddress: limits.maxConnectionsPerAddress,
    });
    return {
      behindFront: true,
      acceptEarly: (o, tls) => worker.acceptEarly(o, tls),
      open: (server, tls) => { worker.serve(server, tls); return worker; },
      abandon: () => worker.close(),
    };
  }
  const acceptHelper = EXTRA_ACCEPT_HANDLES > 0 ? new AcceptHelper(EXTRA_ACCEPT_HANDLES) : undefined;
  return {
    behindFront: false,
    acceptEarly: async () => {},
    open: (server) => directFrontDoor(server as https.Server, acceptHelper),
    abandon: async () => acceptHelper?.kill(),
  };
}

async function startServerWith(config: ServerConfig, front: ReturnType<typeof startFrontDoor>, priority: StartupPriority): Promise<RunningServer> {
  const t0 = performance.now();
  mkdirSync(join(config.dataDir, 'server'), { recursive: true, mode: 0o700 });

  // Servers sharing an external datastore share their CAs and keys through it (datastore-bootstrap.ts):
  // installed here, before anything below creates or reads them; refused (nothing written) on a wrong token.
  const sharedBootstrap = isSharedEndpoint(config.datastoreEndpoint) ? await prepareFromEndpoint({
    dataDir: config.dataDir, endpoint: config.datastoreEndpoint!, tls: config.datastoreTls, token: config.token,
    log: (msg, fields) => log.info(fields ?? {}, msg),
  }) : undefined;
  const encryption = new SecretsEncryption(config.dataDir, config.secretsEncryption ?? false);
  let opened: Store | undefined;
  const metrics = new ApiServerMetrics({ store: () => opened, kinds: () => registry.all(), lookup: (g, v, r) => registry.lookup(g, v, r) });
  if ((config.clusterInit || config.joinServer) && config.datastoreEndpoint) throw new Error('--cluster-init and --server (embedded etcd) exclude --datastore-endpoint');
  const embeddedEtcd = config.datastoreEndpoint ? undefined : await startEmbeddedEtcd({
    dataDir: config.dataDir, clusterInit: config.clusterInit ?? false, joinServer: config.joinServer, token: config.token,
    nodeName: config.node?.nodeName ?? hostname().toLowerCase(), advertiseIp: config.node?.nodeIp ?? config.advertiseAddress ?? hostIps()[0] ?? '127.0.0.1',
    clientPort: config.etcdClientPort, peerPort: config.etcdPeerPort,
  });
  const ips = hostIps();
  const advertise = config.advertiseAddress ?? (isWildcard(config.bindAddress) ? ips[0] ?? '127.0.0.1' : config.bindAddress);
  const sanIps = new Set<string>(['127.0.0.1', ...ips, advertise]);
  const sanDns = new Set<string>(['localhost', hostname()]);
  for (const s of config.tlsSan) (/^[\d.]+$|:/.test(s) ? sanIps : sanDns).add(s);
  if (!isWildcard(config.bindAddress)) sanIps.add(config.bindAddress);
  const pkiOpts = { dataDir: config.dataDir, sans: { dns: [...sanDns], ips: [...sanIps] } };
  const listenOn = { port: config.httpsListenPort, host: config.bindAddress, backlog: listenBacklog() };
  // The port is open before the datastore loads: its connections wait, handshakes done, until the
  // API server below serves them (tls-front.ts, acceptEarly).
  const { pki, tls } = await (async () => {
    const p = await ensureServerPkiIsolated(pkiOpts);
    const t = { cert: p.servingCertPem, key: p.servingKeyPem, ca: p.clientCaPem, secureOptions: SERVER_TLS_SECURE_OPTIONS };
    await front.acceptEarly(listenOn, t);
    return { pki: p, tls: t };
  })().catch(async (err) => { await embeddedEtcd?.stop(); throw err; });
  // Until /readyz first passes, this thread's work comes before the rest (startup-priority.ts).
  // Raised here, not sooner: the TLS front's and the PKI's worker threads, started above, would inherit it.
  priority.raise();
  const { store, backend } = await openStore(config.dataDir, {
    ringSize: config.watchCacheSize, endpoint: embeddedEtcd?.endpoint ?? config.datastoreEndpoint,
    tls: embeddedEtcd?.tls ?? config.datastoreTls,
    // Four rings' worth of history: with thousands of nodes renewing Leases, one ring's worth of
    // revisions is seconds, shorter than the minute between bookmarks, and every node's pod watch
    // would relist after a restart.
    prefillRevisions: config.watchCacheSize * 4,
    log: (msg, fields) => log.info(fields ?? {}, msg),
    sqliteCheckpointInWorker: PROFILES[config.profile ?? 'default'].sqliteCheckpointInWorker && process.env.SKIFF_SQLITE_CHECKPOINT_WORKER !== '0',
    wrap: (b) => encryption.wrap(new TimedBackend(b, metrics.observeStorage)),
  }).catch(async (err) => { await embeddedEtcd?.stop(); throw err; });
  opened = store;
  encryption.attach(store);
  log.info({ revision: store.revision(), ms: Math.round(performance.now() - t0) }, 'datastore loaded');
  applyProfile(config.profile ?? 'default', config.watchCacheSize);
  const eventTtlMs = (config.eventTtlSeconds ?? 3600) * 1000;

  const caBundlePem = pki.caBundle;
  const token = ensureServerToken(config.dataDir, caBundlePem, config.token);
  // Before anything serves writes: the backup stream must see every change from here on.
  const backups = await startBackups({
    dataDir: config.dataDir, node: config.node?.nodeName ?? hostname().toLowerCase(), backend, config: config.backups ?? {},
    endpoint: embeddedEtcd?.endpoint ?? config.datastoreEndpoint, tls: embeddedEtcd?.tls ?? config.datastoreTls,
    log: (msg, fields) => log.info(fields ?? {}, msg),
  });

  const registry = new ResourceRegistry();
  const crds = new CrdManager(store, registry);
  const admission = new Admission(store, crds, {
    notReadySeconds: config.defaultNotReadyTolerationSeconds, unreachableSeconds: config.defaultUnreachableTolerationSeconds,
  });
  const [lo, hi] = config.serviceNodePortRange.split('-').map(Number);
  const services = new ServiceAllocator(store, { serviceCidr: config.serviceCidr, nodePortRange: [lo, hi] });
  const objects = new ObjectService(store, registry, services, admission, {
    selectableFields: (info) => crds.versionInfo(info)?.selectableFields ?? [],
    compactedRevision: () => backend.compactedRevision(),
  });
  const saTokens = await ServiceAccountTokens.open(config.dataDir);
  // Every shared file exists now: a first server stores the set before it writes any object.
  await sharedBootstrap?.finish(backend, token.password);
  let joinPassword = token.password;
  // Tokens die with their ServiceAccount (or its recreation) and with the pod they are bound to.
  const authn = new Authenticator({ saTokens, validateServiceAccount: (c) => serviceAccountTokenLive((k) => store.get(k)?.obj, c) });
  const authz = chainAuthorizer(store, new RbacAuthorizer(storeRbacSource(store)));
  admission.useAuthorizer(authz);
  const schemas = loadSchemaSet();
  const openapi = new OpenApiV3(() => registry.all(), schemas, (g, v, k) => crds.schemaFor(g, v, k));
  registry.onChange(() => openapi.invalidate());
  crds.start();

  let bootstrapped = false;
  let shuttingDown = false;
  let controllers: ControllerManager | undefined;
  const ctx: ApiContext = {
    store, registry, objects, crds, authn, authz, openapi, saTokens, caBundlePem,
    bookmarks: new Set(),
    compactedRevision: () => backend.compactedRevision(),
    converter: converterFor,
    health: serverHealthChecks({ backend, bootstrapped: () => bootstrapped, controllers: () => controllers, shuttingDown: () => shuttingDown }),
  };

  await bootstrapObjects(objects, {
    kubernetesServiceIp: firstServiceIp(config.serviceCidr), advertiseAddress: advertise, port: config.httpsListenPort,
    localStorageClass: !config.disableLocalStorage,
    ingressClass: !config.disableIngress,
    ...(config.node?.disableDns ? {} : { clusterDns: config.clusterDns }),
  });
  // Every live server in the `kubernetes` Service's endpoints (kube-apiserver's lease reconciler).
  const id = serverId(config.dataDir);
  const apiServerEndpoints = startApiServerEndpoints({
    client: new LocalClient(objects, { user: 'system:apiserver', groups: ['system:masters'], manager: 'kube-apiserver' }),
    serverId: id, hostname: hostname().toLowerCase(), address: { ip: advertise, port: config.httpsListenPort },
  });
  const apiServices = new LocalApiServices(objects, registry);
  await apiServices.sync();
  apiServices.watchRegistry();
  bootstrapped = true;
  const tunnels = new TunnelServer();
  // Webhook and APIService endpoint pods are reached through their node's tunnel (k3s's egress selector).
  const dialer = (node: string, host: string, port: number) => (tunnels.isConnected(node) ? tunnels.open(node, { op: 'dial', host, port }) : undefined);
  admission.dynamic.useDialer(dialer);
  const aggregator = new Aggregator(store, { certPem: pki.proxyClientCertPem, keyPem: pki.proxyClientKeyPem });
  aggregator.useDialer(dialer);
  // kube-aggregator's loops belong to the API server: they run even with --disable-controller-manager.
  const aggregation: Record<string, ControllerStarter> = {
    'apiservice-availability': (c) => startApiServiceAvailability(c, aggregator, () => { void apiServices.sync(); }),
    'cluster-authentication-trust': (c) => startAuthenticationPublisher(c, {
      clientCaPem: pki.clientCaPem, requestHeaderCaPem: pki.requestHeaderCaPem, allowedNames: [AUTH_PROXY_USER],
    }),
  };
  // Rolling upgrades' release dir; with several servers, one lacking a release fetches it from the others.
  const releaseDir = join(config.dataDir, 'server', 'releases');
  const releasePeers = apiServerPeers(new LocalClient(objects, { user: 'system:apiserver', groups: ['system:masters'], manager: 'skiff-releases' }), `${advertise}:${config.httpsListenPort}`, { caPem: pki.serverCaPem, certPem: pki.adminCertPem, keyPem: pki.adminKeyPem });
  // Set once the fleet manager exists (below); its loops start at this server's first term.
  const fleetTerm = { leading: false, start: () => {} };
  // Leader-only like the loops (controller-manager.ts), also with --disable-controller-manager as before:
  // the Event sweeper (one server sweeps, others would race it) and the fleet manager's loops (Cluster
  // status, groups, bundles, GitRepos); its registration and tunnel routes stay on every server.
  const leaderOnly: Record<string, ControllerStarter> = {
    ...(eventTtlMs > 0 ? { 'event-ttl': () => {
      const ttl = startEventTtl(store, { ttlMs: eventTtlMs, log: (msg, fields) => log.info(fields ?? {}, msg) });
      return { name: 'event-ttl', stop: async () => ttl.stop() };
    } } : {}),
    'fleet-manager': () => { fleetTerm.leading = true; fleetTerm.start(); return { name: 'fleet-manager', stop: async () => undefined }; },
  };
  const starters: Record<string, ControllerStarter> = config.disableControllerManager ? { namespace: CONTROLLERS.namespace!, ...aggregation, ...leaderOnly } : {
    ...CONTROLLERS, ...aggregation, ...leaderOnly,
    'garbage-collector': garbageCollectorStarter(registry),
    'node-ipam': (ctx) => startNodeIpamController(ctx, { clusterCidr: config.clusterCidr, nodeMaskSize: 24 }),
    'root-ca-publisher': (ctx) => startRootCaPublisher(ctx, pki.serverCaPem),
    'csr-signing': (ctx) => startCsrSigningController(ctx, (pem, usage, seconds) => signCsrIsolated(pkiOpts, pem, usage, seconds)),
    'csr-approving': startCsrApprovingController,
    // ServiceLB and the address pools' allocator (issue 12): one writer of status.loadBalancer.
    loadbalancer: (ctx) => startLoadBalancerController(ctx, { disableServiceLb: config.disableServiceLb }),
    // The built-in ingress controller's one writer of Ingress status and events (the agents route).
    ...(config.disableIngress ? {} : { ingress: startIngressStatusController }),
    'horizontal-pod-autoscaler': (c) => startHorizontalPodAutoscaler(c, {
      podUsage: (pods) => podUsage(ctx, pods),
      syncPeriodMs: (config.horizontalPodAutoscalerSyncPeriodSeconds ?? 15) * 1000,
    }),
    manifests: (ctx) => startManifestDeployer(ctx, {
      dir: join(config.dataDir, 'server', 'manifests'),
      resolve: (apiVersion, kind) => {
        const info = registry.all().find((k) => k.kind === kind && apiVersionOf(k) === apiVersion && !k.virtual);
        return info && { ref: { group: info.group, version: info.version, resource: info.plural }, namespaced: info.namespaced };
      },
    }),
    // Rolling upgrades of the nodes from the release artifacts in <data-dir>/server/releases (docs/install.md).
    upgrade: (ctx) => startUpgradeController(ctx, { releaseDir, fetchMissing: (file) => fetchFromPeers(releaseDir, file, releasePeers) }),
    persistentvolume: (ctx) => startPersistentVolumeController(ctx, {
      localStoragePath: config.defaultLocalStoragePath ?? join(resolve(config.dataDir), 'storage'),
      removeLocalPath: (node, path) => removeLocalPath(tunnels, node, path),
    }),
  };
  // The control loops' workqueue and scheduler metrics go to this server's registry.
  controllers = withMetricsRegistry(metrics.registry, () => startControllerManager(objects, starters, {
    disabled: config.disableScheduler ? ['scheduler'] : [],
    unelected: Object.keys(aggregation),
    ...(config.leaderElect === false ? {} : { leaderElection: { ...config.leaderElection, identity: leaderIdentity(id) } }),
    nodeMonitorGracePeriodMs: config.nodeMonitorGracePeriodSeconds * 1000,
    defaultNotReadyTolerationSeconds: config.defaultNotReadyTolerationSeconds,
    defaultUnreachableTolerationSeconds: config.defaultUnreachableTolerationSeconds,
    loopBudget: loopBudgetFromEnv(),
  }));

  const joinDeps: JoinDeps = {
    objects, tokenSecret: token.password, serverCaPem: pki.serverCaPem,
    issueNodeCert: (name) => issueClientCertIsolated(pkiOpts, `system:node:${name}`, [NODES_GROUP]),
  };
  const agentConfigDeps = { tokenSecret: token.password, config: { flannelBackend: config.flannelBackend ?? 'vxlan', clusterCidr: config.clusterCidr,
    // Only when set, so an agent predating it reads the same document as before.
    ...(config.disableIngress ? { disableIngress: true } : {}) } };
  // Servers sharing a datastore: a node's tunnel may be on another server, which then relays (issue 13).
  if (embeddedEtcd || config.datastoreEndpoint) {
    tunnels.useRelay(new TunnelRelay({
      holders: leaseHolders(objects), self: `https://${advertise.includes(':') ? `[${advertise}]` : advertise}:${config.httpsListenPort}`,
      caPem: pki.serverCaPem, certPem: pki.adminCertPem, keyPem: pki.adminKeyPem,
    }));
  }
  attachTunnels(ctx, tunnels);
  attachNodeProxy(ctx, tunnels);
  // Every server is a fleet manager: sites register with a token from `skiff fleet token`.
  const fleetClient = new LocalClient(objects, { user: 'system:skiff-fleet-manager', groups: ['system:masters'], manager: 'skiff-fleet-manager' });
  const fleet = new FleetManager({
    client: fleetClient, serverCaPem: pki.serverCaPem, upgradeHead,
    issueClusterCert: (name) => issueClientCertIsolated(pkiOpts, `${CLUSTER_USER_PREFIX}${name}`, [CLUSTERS_GROUP]),
    ...(config.fleet?.offlineGraceSeconds ? { offlineGraceMs: config.fleet.offlineGraceSeconds * 1000 } : {}),
    ...(config.fleet?.lastSeenIntervalSeconds ? { lastSeenResolutionMs: config.fleet.lastSeenIntervalSeconds * 1000 } : {}),
    gitCacheDir: join(config.dataDir, 'server', 'fleet-git'),
  });
  // FleetManager's loops cannot be restarted: started at this server's first term, they run until it
  // stops (a server that loses its Lease without dying keeps them; see docs/ha.md).
  let fleetStarted = false;
  fleetTerm.start = () => { if (!fleetStarted) { fleetStarted = true; fleet.start(); } };
  if (fleetTerm.leading) fleetTerm.start();
  const audit = createAuditor(config.audit ?? {});
  const server = createApiServer(ctx, {
    audit, metrics, aggregator, behindFront: front.behindFront,
    cert: pki.servingCertPem, key: pki.servingKeyPem, clientCa: pki.clientCaPem,
    extraRoutes: (req, res, user) => (!config.disableDashboard && serveDashboard(req, res))
      || tunnels.handleConnect(req, res, user) || handleAgentConfig(agentConfigDeps, req, res, user)
      || handleEncryptRoute(encryption, req, res, user) || fleet.handleRoute(req, res, user)
      || handleEtcdJoin(embeddedEtcd && { dataDir: config.dataDir, tokenSecret: token.password, etcd: () => (backend as EtcdBackend).etcd() }, req, res)
      || handleTokenRoute({ dataDir: config.dataDir, caBundlePem, token, onRotated: (p) => {
        joinDeps.tokenSecret = p; agentConfigDeps.tokenSecret = p;
        // The datastore's bootstrap record follows the token (servers started later give the new one).
        if (sharedBootstrap) void rekeyDatastoreBootstrap(backend, joinPassword, p).catch((err) => log.warn({ err: String(err) }, 'bootstrap data not re-keyed'));
        joinPassword = p;
      } }, req, res, user)
      || handleReleaseDownload(releaseDir, req, res, user, releasePeers)
      || handleJoin(joinDeps, req, res),
    proxySubresource: async (ri, req, res, user) => {
      if (ri.group !== FLEET_GROUP || ri.resource !== 'clusters') return false;
      // A Cluster that does not exist is a 404 for the Cluster, as for nodes/proxy.
      if (!(await fleetClient.get(CLUSTERS, undefined, ri.name))) throw errors.notFound('clusters', FLEET_GROUP, ri.name);
      await fleet.proxy(req, res, ri.name, user);
      return true;
    },
  });
  routeUpgradesAsRequests(server);
  // Written before serving: whoever sees /readyz answer (a restart's supervisor, a test) may read
  // the kubeconfig at once and must find this start's CA and credentials, not the last run's.
  const kubeHost = isWildcard(config.bindAddress) ? '127.0.0.1' : config.bindAddress;
  const writeAdminKubeconfig = (p: typeof pki) => writeKubeconfig(config.writeKubeconfig, {
    server: `https://${kubeHost.includes(':') ? `[${kubeHost}]` : kubeHost}:${config.httpsListenPort}`,
    caPem: p.serverCaPem, certPem: p.adminCertPem, keyPem: p.adminKeyPem, mode: config.writeKubeconfigMode,
  });
  writeAdminKubeconfig(pki);
  const door = front.open(server, tls);
  await door.listen(listenOn);
  priority.lowerWhenReady(() => passes(ctx.health.readyz));

  // Leaves renewed while running, the serving certificate reloaded in place (cert-renewal.ts).
  const certRenewal = startCertRenewal({ pkiOpts, current: pki, door, writeKubeconfig: writeAdminKubeconfig });
  log.info({ address: `${config.bindAddress}:${config.httpsListenPort}`, kubeconfig: config.writeKubeconfig, startupMs: Math.round(performance.now() - t0) }, 'skiff server ready');

  let site: RunningSite | undefined;
  if (config.fleet?.server) {
    // This cluster is a fleet site: its fleet identity may only impersonate (see src/fleet/proxy.ts).
    const rbacClient = fleetClient;
    for (const obj of fleetProxyRbac()) {
      const ref = { group: 'rbac.authorization.k8s.io', version: 'v1', resource: obj.kind === 'ClusterRole' ? 'clusterroles' : 'clusterrolebindings' };
      if (!(await rbacClient.get(ref, undefined, obj.metadata.name!))) await rbacClient.create(ref, undefined, obj).catch(() => undefined);
    }
    const proxyCert = await issueClientCertIsolated(pkiOpts, FLEET_PROXY_USER, []);
    site = startSite({
      managerUrl: config.fleet.server, token: config.fleet.token, name: config.fleet.clusterName ?? hostname().toLowerCase(),
      labels: config.fleet.clusterLabels ?? {}, dataDir: config.dataDir,
      heartbeatMs: (config.fleet.heartbeatSeconds ?? 15) * 1000, version: VERSION.gitVersion,
      client: fleetClient, patcher: fleetPatcher(schemas), bundleResyncMs: (config.fleet.driftSeconds ?? 30) * 1000,
      localApi: { host: kubeHost, port: config.httpsListenPort, caPem: pki.serverCaPem, certPem: proxyCert.certPem, keyPem: proxyCert.keyPem },
    });
  }

  return {
    ctx, token: token.token, url: `https://${kubeHost.includes(':') ? `[${kubeHost}]` : kubeHost}:${config.httpsListenPort}`,
    async close() {
      shuttingDown = true;
      priority.lower();
      certRenewal.stop();
      await apiServerEndpoints.stop();
      await site?.stop();
      await fleet.stop();
      await controllers?.stop();
      tunnels.close();
      aggregator.close();
      await door.close();
      await backups.stop();
      await store.close();
      await embeddedEtcd?.stop();
      await audit?.close();
    },
  };
}

/** Runs until SIGTERM/SIGINT. */
export async function runServer(config: ServerConfig): Promise<void> {
  const running = await startServer(config);
  // `skiff snapshot restore` refuses to replace the datastore of a running server.
  const { markServerRunning } = await import('./snapshot.js');
  const unmark = markServerRunning(config.dataDir);
  let agent: { stop(): Promise<void> } | undefined;
  if (!config.disableAgent) {
    // The embedded agent joins this server like any other node (k3s does the same).
    const { startAgent } = await import('../agent/run.js');
    const { defaultNodeIp, defaultNodeName } = await import('../agent/node-status.js');
    const n = config.node ?? {};
    agent = await startAgent({
      server: running.url, token: running.token, dataDir: config.dataDir,
      nodeName: n.nodeName ?? defaultNodeName(), nodeIp: n.nodeIp ?? defaultNodeIp(), nodeExternalIp: n.nodeExternalIp,
      nodeLabels: ['node-role.kubernetes.io/control-plane=true', 'node-role.kubernetes.io/master=true', ...(n.nodeLabels ?? [])],
      nodeTaints: n.nodeTaints ?? [], containerRuntimeEndpoint: n.containerRuntimeEndpoint,
      clusterDns: config.clusterDns, clusterDomain: config.clusterDomain, bridgeName: n.bridgeName,
      privateRegistry: n.privateRegistry, resolvConf: n.resolvConf, disableDns: n.disableDns,
      disableKubeProxy: n.disableKubeProxy, nodePortAddresses: n.nodePortAddresses,
      flannelIface: n.flannelIface, disableNetworkPolicy: n.disableNetworkPolicy,
      ingressHttpPort: n.ingressHttpPort, ingressHttpsPort: n.ingressHttpsPort, ingressBindAddress: n.ingressBindAddress,
    });
  }
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    const force = setTimeout(() => process.exit(1), 10_000);
    force.unref();
    await agent?.stop();
    await running.close();
    unmark();
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}

function isWildcard(addr: string): boolean {
  return addr === '0.0.0.0' || addr === '::' || addr === '';
}

function hostIps(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') out.push(a.address);
  }
  return out;
}
