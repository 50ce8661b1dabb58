// `skiff server --fleet-server URL --fleet-token T --cluster-name NAME`: the site's end. Reports the
// cluster's nodes (from a node informer on the server's own API) and relays each request the
// manager forwards to the local API port over TLS, as the site's fleet identity: a client
// certificate from the site's own client CA whose only right is to impersonate (fleetProxyRbac),
// so every forwarded request runs as the user the manager names, under the site's RBAC.
import tls from 'node:tls';
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../api/object.js';
import { toMillis, toUnits } from '../api/quantity.js';
import { Resources, type ApiClient } from '../client/types.js';
import { InformerFactory } from '../client/informer-factory.js';
import type { TunnelStream } from '../tunnel/mux.js';
import { SECRET_MODE, writeFileAtomic } from '../pki/pem-files.js';
import { logger } from '../util/log.js';
import { SiteConnection, type IdentityStore, type SiteIdentity } from './site-connection.js';
import type { Report } from './protocol.js';
import { SiteBundles } from './site-bundles.js';
import type { Patcher } from './customize.js';

const log = logger('fleet-site');

/** The site's identity toward its own API when it runs forwarded requests. */
export const FLEET_PROXY_USER = 'skiff:fleet-proxy';

export interface SiteOptions {
  managerUrl: string;
  token?: string;
  name: string;
  labels: Record<string, string>;
  dataDir: string;
  heartbeatMs: number;
  version: string;
  /** In-process client of the site's server (reads nodes). */
  client: ApiClient;
  /** The site's own API on loopback, and the fleet identity's certificate for it. */
  localApi: { host: string; port: number; caPem: string; certPem: string; keyPem: string };
  /** The API server's patch rules, for per-target patches (the server injects them: fleet may not import the API server). */
  patcher?: Patcher;
  /** Drift correction period (default 30 s). */
  bundleResyncMs?: number;
}

/** `<data-dir>/fleet/identity.json`, mode 0600: the identity secret and the certificate the manager issued. */
export function fileIdentityStore(dataDir: string): IdentityStore {
  const dir = join(dataDir, 'fleet');
  const file = join(dir, 'identity.json');
  return {
    load() {
      try { return JSON.parse(readFileSync(file, 'utf8')) as SiteIdentity; } catch { return undefined; }
    },
    save(id) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      writeFileAtomic(file, JSON.stringify(id, null, 2) + '\n', SECRET_MODE);
    },
  };
}

/** The site's nodes summed: ready/total and capacity, as the Cluster object shows them. */
export function nodeReport(nodes: KObject[], version: string, labels: Record<string, string>): Report {
  let ready = 0, cpuMillis = 0, memory = 0, pods = 0;
  for (const n of nodes as (KObject & { status?: any })[]) {
    if (n.status?.conditions?.find((c: any) => c.type === 'Ready')?.status === 'True') ready++;
    const cap = n.status?.capacity ?? {};
    try { if (cap.cpu !== undefined) cpuMillis += toMillis(cap.cpu); } catch { /* a malformed quantity counts as none */ }
    try { if (cap.memory !== undefined) memory += toUnits(cap.memory); } catch { /* same */ }
    try { if (cap.pods !== undefined) pods += toUnits(cap.pods); } catch { /* same */ }
  }
  return {
    version, labels, nodes: { ready, total: nodes.length },
    capacity: { cpu: formatCpu(cpuMillis), memory: formatMemory(memory), pods: String(pods) },
  };
}

export function formatCpu(millis: number): string {
  return millis % 1000 === 0 ? String(millis / 1000) : `${millis}m`;
}

export function formatMemory(bytes: number): string {
  for (const [suffix, size] of [['Gi', 2 ** 30], ['Mi', 2 ** 20], ['Ki', 2 ** 10]] as const) {
    if (bytes >= size && bytes % size === 0) return `${bytes / size}${suffix}`;
  }
  return bytes >= 1024 ? `${Math.round(bytes / 1024)}Ki` : String(bytes);
}

export interface RunningSite {
  connection: SiteConnection;
  stop(): Promise<void>;
}

export function startSite(o: SiteOptions): RunningSite {
  const informers = new InformerFactory(o.client);
  const nodes = informers.informerFor(Resources.nodes);
  informers.start();
  const bundles = new SiteBundles({ client: o.client, dataDir: o.dataDir, patcher: o.patcher, resyncMs: o.bundleResyncMs });
  bundles.start();
  const connection = new SiteConnection({
    managerUrl: o.managerUrl, token: o.token, name: o.name, labels: o.labels,
    store: fileIdentityStore(o.dataDir), heartbeatMs: o.heartbeatMs,
    report: () => nodeReport(nodes.list(), o.version, o.labels),
    serveApi: (stream) => relayToLocalApi(stream, o.localApi),
    serveBundles: (stream) => bundles.serve(stream),
  });
  connection.start();
  log.info({ manager: o.managerUrl, cluster: o.name }, 'fleet site started');
  return {
    connection,
    async stop() {
      connection.stop();
      await bundles.stop();
      await informers.stop();
    },
  };
}

/** Pipes one forwarded request's bytes to the local API over TLS (the stream carries plain HTTP/1.1). */
export function relayToLocalApi(stream: TunnelStream, api: SiteOptions['localApi']): void {
  const socket = tls.connect({ host: api.host, port: api.port, ca: api.caPem, cert: api.certPem, key: api.keyPem, servername: 'localhost' });
  let connected = false;
  socket.once('secureConnect', () => {
    connected = true;
    stream.accept();
    stream.pipe(socket);
    socket.pipe(stream);
  });
  socket.once('error', (err) => {
    if (!connected) stream.reject({ code: 502, message: `the site's API did not answer: ${err.message}` });
    else stream.destroy(err);
  });
  socket.once('close', () => stream.end());
  stream.once('error', () => socket.destroy());
  stream.once('close', () => socket.destroy());
}

/** RBAC on the site for its fleet identity: impersonation only (users, groups, service accounts, extras). */
export function fleetProxyRbac(): KObject[] {
  const name = 'skiff:fleet-proxy';
  return [
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole',
      metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'skiff' } },
      rules: [
        { apiGroups: [''], resources: ['users', 'groups', 'serviceaccounts'], verbs: ['impersonate'] },
        { apiGroups: ['authentication.k8s.io'], resources: ['userextras', 'userextras/*', 'uids'], verbs: ['impersonate'] },
      ],
    },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRoleBinding',
      metadata: { name, labels: { 'app.kubernetes.io/managed-by': 'skiff' } },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name },
      subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: FLEET_PROXY_USER }],
    },
  ];
}
