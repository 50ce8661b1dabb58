// The built-in ingress controller's server half: the one writer of `status.loadBalancer.ingress` of the
// Ingresses skiff's class serves, and of the Warning events about what they name wrongly. The agents
// route (src/agent/network/ingress); this loop only reports, so N nodes never write N statuses or N
// copies of an event.
//
// Status: the addresses of the nodes serving ingress traffic (Ready, and marked by their agent with
// `ingress.skiff.io/proxy` once its listeners are up), ExternalIP before InternalIP as ServiceLB.
// Events: a backend Service or port that does not exist, a TLS Secret missing or unusable; recorded
// when an Ingress's set of problems changes, not at every resync.
import tls from 'node:tls';
import type { KObject } from '../../api/object.js';
import { isServedIngress, PROXY_NODE_ANNOTATION, servedClasses, TLS_SECRET_TYPE } from '../../api/ingress.js';
import { Resources, type ResourceRef } from '../../client/types.js';
import { runController, type RunningController } from '../../client/controller.js';
import { WorkQueue } from '../../client/workqueue.js';
import type { ControllerContext } from '../context.js';
import { isReady, nodeAddresses } from '../loadbalancer/servicelb.js';
import { logger } from '../../util/log.js';

const log = logger('ingress-status');

export const INGRESSES: ResourceRef = Object.freeze({ group: 'networking.k8s.io', version: 'v1', resource: 'ingresses' });
export const INGRESS_CLASSES: ResourceRef = Object.freeze({ group: 'networking.k8s.io', version: 'v1', resource: 'ingressclasses' });

type Obj = KObject & Record<string, any>;

const keyOf = (o: KObject) => `${o.metadata.namespace}/${o.metadata.name}`;
const statusIps = (i: Obj): string[] => (Array.isArray(i.status?.loadBalancer?.ingress) ? i.status.loadBalancer.ingress : [])
  .map((x: any) => x?.ip).filter((ip: unknown): ip is string => typeof ip === 'string');

export interface Problem { reason: string; message: string }

/** What an Ingress names that cannot be served, given lookups of Services and Secrets in its namespace. */
export function ingressProblems(ing: Obj, service: (name: string) => Obj | undefined, secret: (name: string) => Obj | undefined): Problem[] {
  const out: Problem[] = [];
  const seen = new Set<string>();
  const backend = (b: any, where: string) => {
    if (b?.resource) { out.push({ reason: 'UnsupportedBackend', message: `${where}: resource backends are not supported by the skiff ingress controller; answered with 404` }); return; }
    const name = b?.service?.name;
    if (!name) return;
    const port = b.service.port?.number ?? b.service.port?.name;
    const id = `${name}:${port}`;
    if (seen.has(id)) return;
    seen.add(id);
    const svc = service(name);
    if (!svc) { out.push({ reason: 'ServiceNotFound', message: `${where}: service "${name}" not found; answered with 503` }); return; }
    const ports: any[] = Array.isArray(svc.spec?.ports) ? svc.spec.ports : [];
    if (svc.spec?.type !== 'ExternalName' && !ports.some((p) => (typeof port === 'number' ? p?.port === port : p?.name === port) && (p?.protocol ?? 'TCP') === 'TCP')) {
      out.push({ reason: 'ServicePortNotFound', message: `${where}: service "${name}" has no TCP port ${port}; answered with 503` });
    }
    if (svc.spec?.type === 'ExternalName') out.push({ reason: 'UnsupportedBackend', message: `${where}: service "${name}" is of type ExternalName, which the ingress proxy does not route to; answered with 503` });
  };
  const spec = ing.spec ?? {};
  if (spec.defaultBackend) backend(spec.defaultBackend, 'defaultBackend');
  for (const r of Array.isArray(spec.rules) ? spec.rules : []) {
    for (const p of Array.isArray(r?.http?.paths) ? r.http.paths : []) backend(p?.backend, `host "${r.host ?? '*'}" path "${p?.path ?? '/'}"`);
  }
  for (const t of Array.isArray(spec.tls) ? spec.tls : []) {
    const name = t?.secretName;
    if (typeof name !== 'string' || !name) continue;
    const s = secret(name);
    const hosts = Array.isArray(t.hosts) && t.hosts.length ? t.hosts.join(', ') : 'its hosts';
    if (!s) { out.push({ reason: 'SecretNotFound', message: `TLS secret "${name}" not found; ${hosts} get the default certificate` }); continue; }
    const why = tlsSecretProblem(s);
    if (why) out.push({ reason: 'InvalidSecret', message: `TLS secret "${name}" ${why}; ${hosts} get the default certificate` });
  }
  return out;
}

function tlsSecretProblem(s: Obj): string | undefined {
  if (s.type !== TLS_SECRET_TYPE) return `is of type "${s.type ?? 'Opaque'}", not ${TLS_SECRET_TYPE}`;
  const crt = s.data?.['tls.crt'], key = s.data?.['tls.key'];
  if (!crt || !key) return 'has no tls.crt or tls.key';
  try {
    tls.createSecureContext({ cert: Buffer.from(crt, 'base64'), key: Buffer.from(key, 'base64') });
    return undefined;
  } catch (err) {
    return `holds no usable certificate and key (${(err as Error).message})`;
  }
}

export function startIngressStatusController(ctx: ControllerContext): RunningController {
  const ingresses = ctx.informers.informerFor<Obj>(INGRESSES);
  const classes = ctx.informers.informerFor<Obj>(INGRESS_CLASSES);
  const nodes = ctx.informers.informerFor<Obj>(Resources.nodes);
  const services = ctx.informers.informerFor<Obj>(Resources.services);
  const secrets = ctx.informers.informerFor<Obj>(Resources.secrets);
  const queue = new WorkQueue<string>();
  /** The last problems reported per Ingress (uid|messages), so a resync does not repeat events. */
  const reported = new Map<string, string>();

  const all = () => { for (const i of ingresses.list()) queue.add(keyOf(i)); };
  const inNamespace = (o: KObject) => { for (const i of ingresses.list()) if (i.metadata.namespace === o.metadata.namespace) queue.add(keyOf(i)); };
  ingresses.addHandlers({ onAdd: (i) => queue.add(keyOf(i)), onUpdate: (_o, i) => queue.add(keyOf(i)), onDelete: (i) => reported.delete(keyOf(i)) });
  classes.addHandlers({ onAdd: all, onUpdate: all, onDelete: all });
  // Heartbeats update Nodes every few seconds: only what changes the addresses counts.
  const nodeSig = (n: Obj) => `${isReady(n)}|${n.metadata.annotations?.[PROXY_NODE_ANNOTATION] ?? ''}|${JSON.stringify(n.status?.addresses ?? [])}`;
  nodes.addHandlers({ onAdd: all, onUpdate: (o, n) => { if (nodeSig(o) !== nodeSig(n)) all(); }, onDelete: all });
  for (const inf of [services, secrets]) inf.addHandlers({ onAdd: inNamespace, onUpdate: (_o, n) => inNamespace(n), onDelete: inNamespace });

  const servingAddresses = () => nodeAddresses(nodes.list().filter((n) => isReady(n) && n.metadata.annotations?.[PROXY_NODE_ANNOTATION]));

  const writeStatus = async (ing: Obj, ips: string[]) => {
    const have = statusIps(ing);
    if (have.length === ips.length && have.every((ip, i) => ip === ips[i])) return;
    await ctx.client.patch(INGRESSES, ing.metadata.namespace, ing.metadata.name!, 'merge',
      { status: { loadBalancer: { ingress: ips.length ? ips.map((ip) => ({ ip })) : null } } }, { subresource: 'status' });
    log.info({ ingress: keyOf(ing), ips }, 'ingress addresses set');
  };

  return runController({
    name: 'ingress', queue, informers: [ingresses, classes, nodes, services, secrets],
    async reconcile(key) {
      const [ns = '', name = ''] = key.split('/');
      const ing = ingresses.getByName(ns, name);
      if (!ing || ing.metadata.deletionTimestamp) return;
      if (!isServedIngress(ing, servedClasses(classes.list()))) {
        // Moved to another class: take back node addresses this loop wrote, leave any other controller's.
        const nodeIps = new Set(nodes.list().flatMap((n) => (n.status?.addresses ?? []).map((a: any) => a.address)));
        const have = statusIps(ing);
        if (have.length && have.every((ip) => nodeIps.has(ip))) await writeStatus(ing, []);
        reported.delete(key);
        return;
      }
      const problems = ingressProblems(ing, (n) => services.getByName(ns, n), (n) => secrets.getByName(ns, n));
      const sig = `${ing.metadata.uid}|${problems.map((p) => p.message).join('\n')}`;
      if (reported.get(key) !== sig) {
        for (const p of problems) ctx.events.record(ing, 'Warning', p.reason, p.message);
        reported.set(key, sig);
      }
      await writeStatus(ing, servingAddresses());
    },
  });
}
