// The ingress proxy loop of every agent (what Traefik does in k3s, without its pods): informers for
// Ingresses, IngressClasses, Services and EndpointSlices → one work queue → reconcile, which rebuilds
// the routing table and swaps it into the proxy. TLS Secrets are watched one by one, each narrowed to
// its name (as the kubelet watches the Secrets its pods use): a node may read only the TLS Secrets
// that Ingresses of skiff's class name (node authorizer), never list them all.
//
// Keys: `@table` (any routing input changed; many changes in a burst fold into one rebuild) and
// `secret/<namespace>/<name>` (one certificate changed: only its TLS context is rebuilt).
import tls from 'node:tls';
import type { KObject } from '../../../api/object.js';
import { isServedIngress, PROXY_NODE_ANNOTATION, servedClasses, TLS_SECRET_TYPE } from '../../../api/ingress.js';
import { LABEL_SERVICE_NAME } from '../../../api/endpoint-slices.js';
import { Informer } from '../../../client/informer.js';
import { Resources, type ApiClient, type ResourceRef } from '../../../client/types.js';
import { WorkQueue } from '../../../client/workqueue.js';
import { runController, type RunningController } from '../../../client/controller.js';
import { selfSignedServingCert } from '../../../pki/certs.js';
import { logger } from '../../../util/log.js';
import { IngressProxy } from './proxy.js';
import { buildTable } from './routes.js';

const log = logger('ingress');
const TABLE = '@table';
const SLICES_BY_SERVICE = 'ingress/service';

export const INGRESSES: ResourceRef = Object.freeze({ group: 'networking.k8s.io', version: 'v1', resource: 'ingresses' });
export const INGRESS_CLASSES: ResourceRef = Object.freeze({ group: 'networking.k8s.io', version: 'v1', resource: 'ingressclasses' });

type Obj = KObject & Record<string, any>;

export interface IngressOptions {
  client: ApiClient;
  /** The agent's Services informer, shared; started and stopped by its owner. */
  services: Informer<KObject>;
  nodeName: string;
  /** `--ingress-http-port` (0: no HTTP listener). */
  httpPort: number;
  /** `--ingress-https-port` (0: no HTTPS listener). */
  httpsPort: number;
  /** `--ingress-bind-address` (default: every IPv4 address). */
  address?: string;
}

export interface RunningIngress {
  proxy: IngressProxy;
  stop(): Promise<void>;
}

export async function startIngressController(o: IngressOptions): Promise<RunningIngress> {
  // RSA: an SNI certificate of either type then wins over it (see selfSignedServingCert).
  const defaultCert = await selfSignedServingCert('skiff-ingress-default', { rsa: true });
  const ingresses = new Informer<Obj>({ client: o.client, resource: INGRESSES });
  const classes = new Informer<Obj>({ client: o.client, resource: INGRESS_CLASSES });
  const services = o.services as Informer<Obj>;
  const slices = new Informer<Obj>({
    client: o.client, resource: Resources.endpointSlices,
    indexers: { [SLICES_BY_SERVICE]: (s) => { const n = s.metadata.labels?.[LABEL_SERVICE_NAME]; return n ? [`${s.metadata.namespace}/${n}`] : []; } },
  });
  const queue = new WorkQueue<string>();
  const secretWatches = new Map<string, Informer<Obj>>();
  /** Services some served Ingress names: only their changes rebuild the table. */
  let referenced = new Set<string>();

  // The Node annotation follows proxy.listening(); writes are serialized so a slower earlier one
  // (only HTTP up) never lands after a later one (both up).
  let annotated = '';
  let annotating: Promise<void> = Promise.resolve();
  const annotate = (): void => {
    annotating = annotating.then(async () => {
      const value = proxy.listening();
      if (value === annotated) return;
      try {
        await o.client.patch(Resources.nodes, undefined, o.nodeName, 'merge', { metadata: { annotations: { [PROXY_NODE_ANNOTATION]: value || null } } });
        annotated = value;
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not mark the node as serving ingress; retrying');
        setTimeout(annotate, 5_000).unref();
      }
    });
  };
  const proxy = new IngressProxy({
    http: o.httpPort ? { port: o.httpPort, address: o.address } : undefined,
    https: o.httpsPort ? { port: o.httpsPort, address: o.address } : undefined,
    defaultCert, onListening: annotate,
  });

  const rebuild = () => queue.add(TABLE);
  for (const inf of [ingresses, classes]) inf.addHandlers({ onAdd: rebuild, onUpdate: rebuild, onDelete: rebuild });
  const serviceChanged = (key: string) => { if (referenced.has(key)) rebuild(); };
  services.addHandlers({
    onAdd: (s) => serviceChanged(`${s.metadata.namespace}/${s.metadata.name}`),
    onUpdate: (_o, s) => serviceChanged(`${s.metadata.namespace}/${s.metadata.name}`),
    onDelete: (s) => serviceChanged(`${s.metadata.namespace}/${s.metadata.name}`),
  });
  const sliceChanged = (s: Obj) => { const n = s.metadata.labels?.[LABEL_SERVICE_NAME]; if (n) serviceChanged(`${s.metadata.namespace}/${n}`); };
  slices.addHandlers({ onAdd: sliceChanged, onUpdate: (_o, s) => sliceChanged(s), onDelete: sliceChanged });

  /** Starts a watch of each newly named Secret, stops those no Ingress names any more. */
  const syncSecretWatches = async (wanted: Set<string>) => {
    for (const [key, inf] of secretWatches) {
      if (wanted.has(key)) continue;
      secretWatches.delete(key);
      proxy.setCertificate(key, undefined);
      await inf.stop();
    }
    for (const key of wanted) {
      if (secretWatches.has(key)) continue;
      const [namespace, name] = key.split('/') as [string, string];
      const inf = new Informer<Obj>({ client: o.client, resource: Resources.secrets, namespace, fieldSelector: `metadata.name=${name}` });
      const changed = () => queue.add(`secret/${key}`);
      inf.addHandlers({ onAdd: changed, onUpdate: changed, onDelete: changed });
      secretWatches.set(key, inf);
      inf.start();
    }
  };

  const reconcileTable = async () => {
    const served = servedClasses(classes.list());
    const mine = ingresses.list().filter((i) => !i.metadata.deletionTimestamp && isServedIngress(i, served));
    const table = buildTable({
      ingresses: mine,
      service: (ns, name) => services.getByName(ns, name),
      slices: (ns, name) => slices.byIndex(SLICES_BY_SERVICE, `${ns}/${name}`),
    });
    referenced = new Set([...table.backends.keys()].map((k) => k.slice(0, k.lastIndexOf(':'))));
    proxy.setTable(table);
    log.debug({ ingresses: mine.length, hosts: table.hosts.size, backends: table.backends.size }, 'routing table swapped');
    await syncSecretWatches(table.secrets);
  };

  const reconcileSecret = (key: string) => {
    const inf = secretWatches.get(key);
    if (!inf) return;
    const [namespace, name] = key.split('/') as [string, string];
    const secret = inf.getByName(namespace, name);
    const data = secret?.data ?? {};
    if (!secret || secret.type !== TLS_SECRET_TYPE || !data['tls.crt'] || !data['tls.key']) {
      // Missing or unusable: the names it would cover get the default certificate (the server's ingress loop records why).
      proxy.setCertificate(key, undefined);
      return;
    }
    try {
      proxy.setCertificate(key, tls.createSecureContext({ cert: Buffer.from(data['tls.crt'], 'base64'), key: Buffer.from(data['tls.key'], 'base64') }));
      log.info({ secret: key, resourceVersion: secret.metadata.resourceVersion }, 'certificate loaded');
    } catch (err) {
      proxy.setCertificate(key, undefined);
      log.warn({ secret: key, err: (err as Error).message }, 'certificate not usable; serving the default one');
    }
  };

  for (const inf of [ingresses, classes, slices]) inf.start();
  const loop: RunningController = runController({
    name: 'ingress', queue, informers: [ingresses, classes, services, slices],
    async reconcile(key) {
      if (key === TABLE) return reconcileTable();
      if (key.startsWith('secret/')) return reconcileSecret(key.slice('secret/'.length));
    },
  });
  rebuild();

  return {
    proxy,
    async stop() {
      await loop.stop();
      await Promise.all([ingresses.stop(), classes.stop(), slices.stop(), ...[...secretWatches.values()].map((i) => i.stop())]);
      await proxy.close();
    },
  };
}

/** `--disable ingress` (cluster-wide) or both ports 0: this node serves no ingress; it says so on its Node. */
export async function unmarkIngressNode(client: ApiClient, nodeName: string): Promise<void> {
  const node = await client.get<any>(Resources.nodes, undefined, nodeName).catch(() => undefined);
  if (node?.metadata?.annotations?.[PROXY_NODE_ANNOTATION] === undefined) return;
  await client.patch(Resources.nodes, undefined, nodeName, 'merge', { metadata: { annotations: { [PROXY_NODE_ANNOTATION]: null } } }).catch(() => undefined);
}
