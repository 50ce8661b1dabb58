// Endpoints for Services, as three kube-controller-manager loops keep them, folded into one work
// queue keyed by Service:
//  - EndpointSlices (discovery.k8s.io/v1) for Services with a selector: one endpoint per selected pod
//    with an IP, with ready/serving/terminating conditions, nodeName, zone and hostname; pods grouped
//    by the ports they resolve to (a named targetPort is looked up in each pod's container ports),
//    at most 100 endpoints per slice, an empty placeholder slice when no pod is selected;
//  - Endpoints (core/v1) for the same Services: ready and not-ready addresses, subsets grouped by port set;
//  - mirroring: for a Service without a selector, the slices mirror the Endpoints its owner wrote
//    (unless labelled `endpointslice.kubernetes.io/skip-mirror`). The `default/kubernetes` Endpoints,
//    which the API server maintains with skip-mirror, gets the one `kubernetes` slice the API server
//    would write itself.
// Slice names are derived from the Service and the slice's contents key, not random, so a restarted
// or lagging loop finds the slice it made instead of making a second one.
import { createHash } from 'node:crypto';
import type { KObject } from '../api/object.js';
import { isPodReady } from '../api/pod.js';
import { matchLabelSet, selectingIndexKeys, selectorIndexKeys } from '../api/selectors.js';
import { isAlreadyExists, isNotFound, Resources } from '../client/types.js';
import type { ControllerContext } from './context.js';
import { enqueueOnChange, runController, type RunningController } from '../client/controller.js';
import { keyOf, splitKey } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';

export { LABEL_SERVICE_NAME } from '../api/endpoint-slices.js';
import { LABEL_SERVICE_NAME } from '../api/endpoint-slices.js';
export const LABEL_MANAGED_BY = 'endpointslice.kubernetes.io/managed-by';
export const MANAGED_BY_CONTROLLER = 'endpointslice-controller.k8s.io';
export const MANAGED_BY_MIRRORING = 'endpointslicemirroring-controller.k8s.io';
const LABEL_SKIP_MIRROR = 'endpointslice.kubernetes.io/skip-mirror';
const LABEL_HEADLESS = 'service.kubernetes.io/headless';
const LABEL_ZONE = 'topology.kubernetes.io/zone';
export const MAX_ENDPOINTS_PER_SLICE = 100;

const BY_NAMESPACE = 'endpoints-controller/namespace';
const SLICES_BY_SERVICE = 'endpoints-controller/service';
/** Services by `selectorIndexKeys` (api/selectors.ts): a pod's event looks up only those that may select it. */
const SERVICES_BY_SELECTOR = 'endpoints-controller/selector';

type Obj = KObject & Record<string, any>;

interface SlicePort { name: string; port: number; protocol: string; appProtocol?: string }
interface SliceEndpoint {
  addresses: string[];
  conditions: { ready?: boolean; serving?: boolean; terminating?: boolean };
  hostname?: string;
  targetRef?: { kind: string; namespace: string; name: string; uid: string };
  nodeName?: string;
  zone?: string;
}
interface DesiredSlice { name: string; addressType: string; endpoints: SliceEndpoint[]; ports: SlicePort[] | undefined; labels: Record<string, string>; owned: boolean }

export function startEndpointsController(ctx: ControllerContext): RunningController {
  const byNamespace = { [BY_NAMESPACE]: (o: KObject) => [o.metadata.namespace ?? ''] };
  const services = ctx.informers.informerFor<Obj>(Resources.services, {
    indexers: {
      [SERVICES_BY_SELECTOR]: (svc) => {
        const sel = selectorOf(svc);
        return sel ? selectorIndexKeys(svc.metadata.namespace ?? '', { matchLabels: sel }) : [];
      },
    },
  });
  const pods = ctx.informers.informerFor<Obj>(Resources.pods, { indexers: byNamespace });
  const nodes = ctx.informers.informerFor<Obj>(Resources.nodes);
  const endpoints = ctx.informers.informerFor<Obj>(Resources.endpoints);
  const slices = ctx.informers.informerFor<Obj>(Resources.endpointSlices, {
    indexers: {
      [SLICES_BY_SERVICE]: (o) => {
        const svc = o.metadata.labels?.[LABEL_SERVICE_NAME];
        return svc ? [`${o.metadata.namespace}/${svc}`] : [];
      },
    },
  });
  const queue = new WorkQueue<string>();

  const podChanged = (pod: Obj) => {
    for (const key of selectingIndexKeys(pod.metadata.namespace ?? '', pod.metadata.labels)) {
      for (const svc of services.byIndex(SERVICES_BY_SELECTOR, key)) {
        const sel = selectorOf(svc);
        if (sel && matchLabelSet(sel, pod.metadata.labels)) queue.add(keyOf(svc));
      }
    }
  };
  services.addHandlers(enqueueOnChange(queue));
  pods.addHandlers({
    onAdd: podChanged,
    onUpdate: (old, pod) => { podChanged(pod); if (old.metadata.labels !== pod.metadata.labels) podChanged(old); },
    onDelete: podChanged,
  });
  // Endpoints written before their Service (a common way to point a Service elsewhere) are left alone
  // until the Service exists; only a Service's deletion removes them.
  const endpointsChanged = (e: Obj) => { if (services.get(keyOf(e))) queue.add(keyOf(e)); };
  endpoints.addHandlers({ onAdd: endpointsChanged, onUpdate: (_o, e) => endpointsChanged(e), onDelete: endpointsChanged });
  const sliceChanged = (s: Obj) => {
    const svc = s.metadata.labels?.[LABEL_SERVICE_NAME];
    if (svc) queue.add(`${s.metadata.namespace}/${svc}`);
  };
  slices.addHandlers({ onAdd: sliceChanged, onUpdate: (_o, s) => sliceChanged(s), onDelete: sliceChanged });

  const reconcile = async (key: string): Promise<void> => {
    const { namespace, name } = splitKey(key);
    const ns = namespace!;
    const svc = services.get(key);
    const existing = slices.byIndex(SLICES_BY_SERVICE, key);
    if (!svc || svc.spec?.type === 'ExternalName') {
      await syncSlices(ctx, ns, existing, []);
      if (!svc) await deleteIgnoringMissing(() => ctx.client.delete(Resources.endpoints, ns, name));
      return;
    }
    const sel = selectorOf(svc);
    if (!sel) {
      const ep = endpoints.get(key);
      await syncSlices(ctx, ns, existing, ep ? mirroredSlices(svc, ep) : [], svc);
      return;
    }
    const selected = pods.byIndex(BY_NAMESPACE, ns).filter((p) => matchLabelSet(sel, p.metadata.labels));
    const zoneOf = (node: string | undefined) => (node ? nodes.get(node)?.metadata.labels?.[LABEL_ZONE] : undefined);
    await syncSlices(ctx, ns, existing, desiredSlices(svc, selected, zoneOf), svc);
    await syncEndpoints(ctx, svc, endpoints.get(key), desiredSubsets(svc, selected));
  };

  return runController({ name: 'endpoints-controller', queue, workers: 2, informers: [services, pods, nodes, endpoints, slices], reconcile });
}

// ---- what the Service selects --------------------------------------------------------------------

/** A Service's selector, or undefined when it has none (its endpoints are written by someone else). */
function selectorOf(svc: Obj): Record<string, string> | undefined {
  const sel = svc.spec?.selector as Record<string, string> | undefined;
  return sel && Object.keys(sel).length ? sel : undefined;
}

/** Whether a pod has a place among a Service's endpoints (it has an IP and will not be restarted into a new one). */
export function podInEndpoints(pod: Obj, includeTerminating: boolean): boolean {
  if (!pod.status?.podIP && !pod.status?.podIPs?.length) return false;
  if (!includeTerminating && pod.metadata.deletionTimestamp) return false;
  const phase = pod.status?.phase;
  if (pod.spec?.restartPolicy === 'Never') return phase !== 'Failed' && phase !== 'Succeeded';
  if (pod.spec?.restartPolicy === 'OnFailure') return phase !== 'Succeeded';
  return true;
}

/** The container port a Service port reaches on this pod: a number as is, a name by the pod's container ports. */
export function findPort(pod: Obj, servicePort: any): number | undefined {
  const target = servicePort.targetPort ?? servicePort.port;
  if (typeof target === 'number') return target;
  const protocol = servicePort.protocol ?? 'TCP';
  for (const c of pod.spec?.containers ?? []) {
    for (const p of c.ports ?? []) {
      if (p.name === target && (p.protocol ?? 'TCP') === protocol) return p.containerPort;
    }
  }
  return undefined;
}

function familyOf(ip: string): 'IPv4' | 'IPv6' {
  return ip.includes(':') ? 'IPv6' : 'IPv4';
}

function podIpsOf(pod: Obj): string[] {
  const ips: string[] = (pod.status?.podIPs ?? []).map((p: any) => p.ip).filter(Boolean);
  if (!ips.length && pod.status?.podIP) ips.push(pod.status.podIP);
  return ips;
}

function serviceFamilies(svc: Obj): ('IPv4' | 'IPv6')[] {
  const fams = svc.spec?.ipFamilies as ('IPv4' | 'IPv6')[] | undefined;
  if (fams?.length) return fams;
  const ip = svc.spec?.clusterIP;
  return [ip && ip !== 'None' && familyOf(ip) === 'IPv6' ? 'IPv6' : 'IPv4'];
}

function portsOf(svc: Obj, pod: Obj): SlicePort[] {
  const out: SlicePort[] = [];
  for (const sp of svc.spec?.ports ?? []) {
    const port = findPort(pod, sp);
    if (port === undefined) continue;
    out.push({ name: sp.name ?? '', port, protocol: sp.protocol ?? 'TCP', ...(sp.appProtocol ? { appProtocol: sp.appProtocol } : {}) });
  }
  return out;
}

// ---- EndpointSlices --------------------------------------------------------------------------------

const NAME_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

/** `<service>-<5 chars>` as generateName would give, but the same for the same Service and slot. */
function sliceName(svc: Obj, slot: string): string {
  const digest = createHash('sha256').update(`${svc.metadata.uid}|${slot}`).digest();
  let suffix = '';
  for (let i = 0; i < 5; i++) suffix += NAME_ALPHABET[digest[i]! % NAME_ALPHABET.length];
  return `${`${svc.metadata.name}-`.slice(0, 58)}${suffix}`;
}

function sliceLabels(svc: Obj, managedBy: string, extra: Record<string, string> = {}): Record<string, string> {
  const labels: Record<string, string> = { ...extra };
  delete labels[LABEL_MANAGED_BY];
  delete labels[LABEL_SKIP_MIRROR];
  labels[LABEL_SERVICE_NAME] = svc.metadata.name!;
  labels[LABEL_MANAGED_BY] = managedBy;
  if (svc.spec?.clusterIP === 'None') labels[LABEL_HEADLESS] = '';
  return labels;
}

export function desiredSlices(svc: Obj, pods: Obj[], zoneOf: (node: string | undefined) => string | undefined): DesiredSlice[] {
  const labels = sliceLabels(svc, MANAGED_BY_CONTROLLER, svc.metadata.labels);
  const publishNotReady = svc.spec?.publishNotReadyAddresses === true;
  const out: DesiredSlice[] = [];
  const sorted = [...pods].sort((a, b) => (a.metadata.name! < b.metadata.name! ? -1 : 1));
  for (const family of serviceFamilies(svc)) {
    // Pods whose ports resolve alike share slices; each group is cut into slices of at most 100.
    const groups = new Map<string, { ports: SlicePort[]; endpoints: SliceEndpoint[] }>();
    for (const pod of sorted) {
      if (!podInEndpoints(pod, true)) continue;
      const ip = podIpsOf(pod).find((a) => familyOf(a) === family);
      if (!ip) continue;
      const ports = portsOf(svc, pod);
      const key = JSON.stringify(ports);
      let g = groups.get(key);
      if (!g) groups.set(key, g = { ports, endpoints: [] });
      const serving = publishNotReady || isPodReady(pod);
      const terminating = Boolean(pod.metadata.deletionTimestamp);
      const ep: SliceEndpoint = {
        addresses: [ip],
        conditions: { ready: publishNotReady || (serving && !terminating), serving, terminating },
        targetRef: { kind: 'Pod', namespace: pod.metadata.namespace!, name: pod.metadata.name!, uid: pod.metadata.uid! },
      };
      if (pod.spec?.hostname && pod.spec?.subdomain === svc.metadata.name) ep.hostname = pod.spec.hostname;
      if (pod.spec?.nodeName) ep.nodeName = pod.spec.nodeName;
      const zone = zoneOf(pod.spec?.nodeName);
      if (zone) ep.zone = zone;
      g.endpoints.push(ep);
    }
    for (const [key, g] of groups) {
      for (let i = 0; i < g.endpoints.length; i += MAX_ENDPOINTS_PER_SLICE) {
        out.push({
          name: sliceName(svc, `${family}|${key}|${i / MAX_ENDPOINTS_PER_SLICE}`), addressType: family,
          endpoints: g.endpoints.slice(i, i + MAX_ENDPOINTS_PER_SLICE), ports: g.ports, labels, owned: true,
        });
      }
    }
  }
  // A Service that selects nothing still has one slice, with neither endpoints nor ports.
  if (out.length === 0) {
    const family = serviceFamilies(svc)[0]!;
    out.push({ name: sliceName(svc, `${family}|placeholder`), addressType: family, endpoints: [], ports: undefined, labels, owned: true });
  }
  return out;
}

/** Slices mirroring the Endpoints of a Service without a selector: one per subset and address family. */
export function mirroredSlices(svc: Obj, ep: Obj): DesiredSlice[] {
  const isApiServer = svc.metadata.namespace === 'default' && svc.metadata.name === 'kubernetes';
  if (ep.metadata.labels?.[LABEL_SKIP_MIRROR] === 'true' && !isApiServer) return [];
  const out: DesiredSlice[] = [];
  (ep.subsets ?? []).forEach((subset: any, i: number) => {
    const ports: SlicePort[] = (subset.ports ?? []).map((p: any) => ({
      name: p.name ?? '', port: p.port, protocol: p.protocol ?? 'TCP', ...(p.appProtocol ? { appProtocol: p.appProtocol } : {}),
    }));
    const byFamily = new Map<string, SliceEndpoint[]>();
    const add = (a: any, ready: boolean) => {
      const fam = familyOf(a.ip);
      const list = byFamily.get(fam) ?? [];
      byFamily.set(fam, list);
      const e: SliceEndpoint = { addresses: [a.ip], conditions: { ready } };
      if (a.hostname) e.hostname = a.hostname;
      if (a.nodeName) e.nodeName = a.nodeName;
      if (a.targetRef) e.targetRef = a.targetRef;
      list.push(e);
    };
    for (const a of subset.addresses ?? []) add(a, true);
    for (const a of subset.notReadyAddresses ?? []) add(a, false);
    for (const [family, eps] of byFamily) {
      for (let j = 0; j < eps.length; j += MAX_ENDPOINTS_PER_SLICE) {
        out.push({
          name: sliceName(svc, `mirror|${family}|${i}|${j}`), addressType: family, endpoints: eps.slice(j, j + MAX_ENDPOINTS_PER_SLICE), ports,
          labels: sliceLabels(svc, MANAGED_BY_MIRRORING, ep.metadata.labels), owned: true,
        });
      }
    }
  });
  if (isApiServer) {
    // The API server's own slice: one, named after the Service, as kube-apiserver writes it.
    const first = out[0];
    if (!first) return [];
    return [{ ...first, name: 'kubernetes', labels: { [LABEL_SERVICE_NAME]: 'kubernetes' }, owned: false }];
  }
  return out;
}

/** Whether this loop wrote the slice (and may change or delete it). */
function ours(slice: Obj): boolean {
  const by = slice.metadata.labels?.[LABEL_MANAGED_BY];
  if (by === MANAGED_BY_CONTROLLER || by === MANAGED_BY_MIRRORING) return true;
  return slice.metadata.namespace === 'default' && slice.metadata.name === 'kubernetes' && slice.metadata.labels?.[LABEL_SERVICE_NAME] === 'kubernetes';
}

async function syncSlices(ctx: ControllerContext, ns: string, existing: Obj[], desired: DesiredSlice[], svc?: Obj): Promise<void> {
  const mine = existing.filter(ours);
  const wanted = new Set(desired.map((d) => d.name));
  for (const d of desired) {
    const cur = mine.find((s) => s.metadata.name === d.name);
    const body = sliceObject(ns, d, svc);
    if (cur && cur.addressType === d.addressType) {
      if (sameSlice(cur, body)) continue;
      const next = structuredClone(cur) as Obj;
      next.metadata.labels = body.metadata.labels;
      if (body.metadata.ownerReferences) next.metadata.ownerReferences = body.metadata.ownerReferences;
      next.endpoints = body.endpoints;
      if (body.ports) next.ports = body.ports; else delete next.ports;
      await ctx.client.update(Resources.endpointSlices, ns, next);
      continue;
    }
    // addressType cannot change: such a slice is replaced.
    if (cur) await deleteIgnoringMissing(() => ctx.client.delete(Resources.endpointSlices, ns, d.name));
    try {
      await ctx.client.create(Resources.endpointSlices, ns, body);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      throw new Error(`endpointslice ${ns}/${d.name} exists but the cache has not seen it yet; retrying`);
    }
  }
  for (const s of mine) {
    if (!wanted.has(s.metadata.name!)) await deleteIgnoringMissing(() => ctx.client.delete(Resources.endpointSlices, ns, s.metadata.name!));
  }
}

function sliceObject(ns: string, d: DesiredSlice, svc: Obj | undefined): Obj {
  return {
    apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: {
      name: d.name, namespace: ns, labels: d.labels,
      ...(d.owned && svc ? { ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: svc.metadata.name!, uid: svc.metadata.uid!, controller: true, blockOwnerDeletion: true }] } : {}),
    },
    addressType: d.addressType,
    endpoints: d.endpoints,
    ...(d.ports ? { ports: d.ports } : {}),
  };
}

function sameSlice(cur: Obj, want: Obj): boolean {
  return JSON.stringify(cur.metadata.labels ?? {}) === JSON.stringify(want.metadata.labels)
    && JSON.stringify(cur.endpoints ?? []) === JSON.stringify(want.endpoints)
    && JSON.stringify(cur.ports ?? null) === JSON.stringify(want.ports ?? null)
    && (!want.metadata.ownerReferences || cur.metadata.ownerReferences?.[0]?.uid === want.metadata.ownerReferences[0]!.uid);
}

// ---- Endpoints -----------------------------------------------------------------------------------

interface EndpointAddress { ip: string; hostname?: string; nodeName?: string; targetRef: { kind: 'Pod'; namespace: string; name: string; uid: string } }

/** Endpoints subsets: addresses grouped by the set of ports they serve, ready and not ready apart. */
export function desiredSubsets(svc: Obj, pods: Obj[]): any[] {
  const publishNotReady = svc.spec?.publishNotReadyAddresses === true;
  const family = serviceFamilies(svc)[0];
  const groups = new Map<string, { ports: SlicePort[]; ready: EndpointAddress[]; notReady: EndpointAddress[] }>();
  const headlessNoPorts = svc.spec?.clusterIP === 'None' && !(svc.spec?.ports ?? []).length;
  for (const pod of pods) {
    if (!podInEndpoints(pod, publishNotReady)) continue;
    const ip = podIpsOf(pod).find((a) => familyOf(a) === family);
    if (!ip) continue;
    const addr: EndpointAddress = { ip, targetRef: { kind: 'Pod', namespace: pod.metadata.namespace!, name: pod.metadata.name!, uid: pod.metadata.uid! } };
    if (pod.spec?.nodeName) addr.nodeName = pod.spec.nodeName;
    if (pod.spec?.hostname && pod.spec?.subdomain === svc.metadata.name) addr.hostname = pod.spec.hostname;
    const ports = portsOf(svc, pod).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.port - b.port));
    // A pod none of whose ports resolve has no place in a Service with ports.
    if (!ports.length && !headlessNoPorts) continue;
    const key = JSON.stringify(ports);
    let g = groups.get(key);
    if (!g) groups.set(key, g = { ports, ready: [], notReady: [] });
    (publishNotReady || isPodReady(pod) ? g.ready : g.notReady).push(addr);
  }
  const byIp = (a: EndpointAddress, b: EndpointAddress) => (a.ip < b.ip ? -1 : a.ip > b.ip ? 1 : a.targetRef.uid < b.targetRef.uid ? -1 : 1);
  return [...groups.entries()].sort(([a], [b]) => (a < b ? -1 : 1)).map(([, g]) => ({
    ...(g.ready.length ? { addresses: g.ready.sort(byIp) } : {}),
    ...(g.notReady.length ? { notReadyAddresses: g.notReady.sort(byIp) } : {}),
    ...(g.ports.length ? { ports: g.ports } : {}),
  }));
}

async function syncEndpoints(ctx: ControllerContext, svc: Obj, cur: Obj | undefined, subsets: any[]): Promise<void> {
  const ns = svc.metadata.namespace!;
  const labels: Record<string, string> = { ...(svc.metadata.labels ?? {}) };
  if (svc.spec?.clusterIP === 'None') labels[LABEL_HEADLESS] = '';
  const want = { labels, subsets };
  if (cur && JSON.stringify(cur.metadata.labels ?? {}) === JSON.stringify(labels) && JSON.stringify(cur.subsets ?? []) === JSON.stringify(subsets)) return;
  if (!cur) {
    try {
      await ctx.client.create(Resources.endpoints, ns, {
        apiVersion: 'v1', kind: 'Endpoints', metadata: { name: svc.metadata.name, namespace: ns, labels: want.labels },
        ...(subsets.length ? { subsets } : {}),
      });
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      throw new Error(`endpoints ${ns}/${svc.metadata.name} exist but the cache has not seen them yet; retrying`);
    }
    return;
  }
  const next = structuredClone(cur) as Obj;
  next.metadata.labels = labels;
  if (subsets.length) next.subsets = subsets; else delete next.subsets;
  await ctx.client.update(Resources.endpoints, ns, next);
}

async function deleteIgnoringMissing(fn: () => Promise<unknown>): Promise<void> {
  try {
    await fn();
  } catch (e) {
    if (!isNotFound(e)) throw e;
  }
}
