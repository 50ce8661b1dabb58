// What differs per kind on write, beyond defaults and validation: how status and spec are separated,
// when `metadata.generation` moves, and how deletion proceeds. Kubernetes keeps these in each
// registry's "strategy"; here they are small functions keyed by group/resource, and the table of
// per-kind hooks (KIND_STRATEGIES) ObjectService calls so that it names no kind itself.
import type { KindInfo } from '../api/kinds.js';
import { prepareCsrUpdate } from './csr-strategy.js';
import type { StatusCause } from '../api/status.js';
import type { Store } from '../storage/types.js';
import type { ServiceAllocator } from './allocators.js';
import { nowRfc3339 } from '../util/time.js';
import { qosClass } from '../api/pod.js';

/** Kinds whose `metadata.generation` tracks spec changes (everything with a spec and a status subresource, and every CR). */
export function tracksGeneration(info: KindInfo): boolean {
  return Boolean(info.crd) || (info.subresources ?? []).includes('status');
}

export function hasStatusSubresource(info: KindInfo): boolean {
  return (info.subresources ?? []).includes('status');
}

/** Fields a main-resource write may not change (they belong to the status subresource). */
export function resetStatusOnCreate(info: KindInfo, obj: Record<string, any>): void {
  if (!hasStatusSubresource(info)) return;
  const gr = `${info.group}/${info.plural}`;
  if (gr === '/pods') {
    obj.status = { phase: 'Pending', qosClass: qosClass(obj) };
  } else if (gr === '/namespaces') {
    obj.status = { phase: 'Active' };
  } else if (gr === '/persistentvolumeclaims' || gr === '/persistentvolumes') {
    obj.status = { phase: 'Pending' };
  } else if (gr === '/nodes') {
    // Nodes register with their status in the create (the kubelet does this); keep it.
  } else if (gr === '/services') {
    obj.status = { loadBalancer: {} };
  } else if (gr === 'apiextensions.k8s.io/customresourcedefinitions') {
    obj.status = {};
  } else {
    delete obj.status;
  }
}

/** Everything that counts as "spec" for generation: the object minus metadata and status. */
export function specChanged(a: Record<string, any>, b: Record<string, any>): boolean {
  const strip = (o: Record<string, any>) => { const { metadata: _m, status: _s, ...rest } = o; return JSON.stringify(rest); };
  return strip(a) !== strip(b);
}

// ---- per-kind hooks ----------------------------------------------------------------------------

/** What the hooks may consult: the watch cache and the Service IP/port pools. */
export interface StrategyContext {
  store: Store;
  services: ServiceAllocator;
}

/** Values reserved from a shared pool for one write; `release` once the write is stored or failed. */
export interface Allocation {
  causes: StatusCause[];
  release: () => void;
}

export interface KindStrategy {
  /**
   * Builds the object an update stores from what the client sent, for kinds whose endpoints each may
   * change only their own part (instead of the generic status/spec split, used when this returns undefined).
   */
  prepareUpdate?(subresource: string | undefined, sent: Record<string, any>, old: Readonly<Record<string, any>>): Record<string, any> | undefined;
  /** Fills in what an update may leave out and still keep (before spec changes are compared). */
  keepOnUpdate?(obj: Record<string, any>, old: Readonly<Record<string, any>>): void;
  /** Last touches once `metadata.generation` is settled (`old` on update). */
  afterGeneration?(obj: Record<string, any>, old?: Readonly<Record<string, any>>): void;
  /** Reserves cluster-wide values the object needs (`old` on update); runs after admission. */
  allocate?(ctx: StrategyContext, obj: Record<string, any>, old?: Readonly<Record<string, any>>): Allocation;
  /**
   * On delete: starts a deletion that waits (for the node's agent, for spec.finalizers) by changing
   * `next`, a copy of the stored object's top level and metadata (deeper members are the stored,
   * frozen ones: replace them, do not change them in place). True when the object must stay for now.
   */
  beginGracefulDeletion?(ctx: StrategyContext, next: Record<string, any>, old: Readonly<Record<string, any>>, opts: { gracePeriodSeconds?: number }): boolean;
  /** A terminating object without metadata.finalizers that must still not be removed yet. */
  deletionPending?(ctx: StrategyContext, obj: Readonly<Record<string, any>>): boolean;
}

/**
 * DaemonSets carry the generation at which their pod template last changed (Kubernetes' strategy
 * keeps it in this annotation; the DaemonSet controller labels pods with it).
 */
function stampDaemonSetTemplateGeneration(ds: Record<string, any>, old?: Readonly<Record<string, any>>): void {
  const key = 'deprecated.daemonset.template.generation';
  const ann = (ds.metadata.annotations ??= {});
  if (!old) { ann[key] = String(ds.metadata.generation ?? 1); return; }
  const changed = JSON.stringify(ds.spec?.template) !== JSON.stringify(old.spec?.template);
  ann[key] = changed ? String(ds.metadata.generation) : (old.metadata.annotations?.[key] ?? String(ds.metadata.generation));
}

const needsNodePorts = (spec: Record<string, any>) => spec.type === 'NodePort' || spec.type === 'LoadBalancer';
const needsHealthCheckPort = (spec: Record<string, any>) => spec.type === 'LoadBalancer' && spec.externalTrafficPolicy === 'Local';
const same = (a: unknown, b: unknown) => JSON.stringify(a ?? null) === JSON.stringify(b ?? null);

/**
 * A Service update that omits its allocated IPs and ports keeps them, and a type change drops the
 * fields the new type may not carry when the user left them as they were (Kubernetes' service
 * registry does both), so `kubectl patch svc x -p '{"spec":{"type":"ClusterIP"}}'` on a
 * LoadBalancer works instead of failing validation on its nodePorts.
 */
function keepServiceAllocations(svc: Record<string, any>, old: Readonly<Record<string, any>>): void {
  const spec = svc.spec ?? (svc.spec = {});
  const o = old.spec ?? {};
  if ((spec.type ?? 'ClusterIP') === 'ExternalName') return;
  if (!spec.clusterIP && o.clusterIP) spec.clusterIP = o.clusterIP;
  if (!spec.clusterIPs && o.clusterIPs) spec.clusterIPs = [...o.clusterIPs];
  if (!spec.ipFamilies && o.ipFamilies) spec.ipFamilies = [...o.ipFamilies];
  if (needsHealthCheckPort(o) && needsHealthCheckPort(spec) && spec.healthCheckNodePort === undefined && o.healthCheckNodePort !== undefined) spec.healthCheckNodePort = o.healthCheckNodePort;
  if (needsNodePorts(o) && needsNodePorts(spec)) {
    for (const p of spec.ports ?? []) {
      if (p.nodePort) continue;
      const prev = (o.ports ?? []).find((q: any) => q.port === p.port && (q.protocol ?? 'TCP') === (p.protocol ?? 'TCP'));
      if (prev?.nodePort) p.nodePort = prev.nodePort;
    }
  }
  // Fields of the old type the user did not touch go with it.
  if (needsNodePorts(o) && !needsNodePorts(spec) && same((spec.ports ?? []).map((p: any) => p.nodePort), (o.ports ?? []).map((p: any) => p.nodePort))) {
    for (const p of spec.ports ?? []) delete p.nodePort;
  }
  if (needsHealthCheckPort(o) && !needsHealthCheckPort(spec) && same(spec.healthCheckNodePort, o.healthCheckNodePort)) delete spec.healthCheckNodePort;
  if (needsNodePorts(o) && !needsNodePorts(spec) && same(spec.externalTrafficPolicy, o.externalTrafficPolicy)) delete spec.externalTrafficPolicy;
  if (o.type === 'LoadBalancer' && spec.type !== 'LoadBalancer') {
    if (same(spec.allocateLoadBalancerNodePorts, o.allocateLoadBalancerNodePorts)) delete spec.allocateLoadBalancerNodePorts;
    if (same(spec.loadBalancerClass, o.loadBalancerClass)) delete spec.loadBalancerClass;
  }
}

/** A pod bound to an existing node is deleted by that node's agent after its containers stop. */
function waitsForKubelet(ctx: StrategyContext, pod: Readonly<Record<string, any>>): boolean {
  if (!pod.spec?.nodeName) return false;
  if (pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') return false;
  if (pod.metadata?.deletionGracePeriodSeconds === 0) return false;
  return ctx.store.get(`/core/nodes/${pod.spec.nodeName}`) !== undefined;
}

/**
 * `pods/ephemeralcontainers` changes spec.ephemeralContainers and nothing else: the rest is the stored
 * pod (the resourceVersion sent stays, as the precondition it is).
 */
function onlyEphemeralContainers(sent: Record<string, any>, old: Readonly<Record<string, any>>): Record<string, any> {
  const next = structuredClone(old) as Record<string, any>;
  next.metadata.resourceVersion = sent.metadata?.resourceVersion;
  const list = sent.spec?.ephemeralContainers;
  if (list === undefined || list === null) delete next.spec.ephemeralContainers;
  else next.spec.ephemeralContainers = list;
  return next;
}

const KIND_STRATEGIES: Record<string, KindStrategy> = {
  'certificates.k8s.io/certificatesigningrequests': {
    prepareUpdate(subresource, sent, old) {
      const next = { ...sent, metadata: subresource ? structuredClone(old.metadata) : sent.metadata };
      prepareCsrUpdate(subresource, next, sent, old);
      return next;
    },
  },
  '/services': {
    keepOnUpdate: keepServiceAllocations,
    allocate: (ctx, svc, old) => ctx.services.assign(svc, old),
  },
  'apps/daemonsets': {
    afterGeneration: stampDaemonSetTemplateGeneration,
  },
  '/pods': {
    prepareUpdate: (subresource, sent, old) => (subresource === 'ephemeralcontainers' ? onlyEphemeralContainers(sent, old) : undefined),
    // The grace period counts down on the node; a shorter one given later wins.
    beginGracefulDeletion(ctx, next, old, opts) {
      if (!waitsForKubelet(ctx, old)) return false;
      const grace = opts.gracePeriodSeconds ?? old.spec?.terminationGracePeriodSeconds ?? 30;
      if (grace <= 0) return false;
      const meta = next.metadata;
      const prev = meta.deletionGracePeriodSeconds;
      if (prev === undefined || grace < prev) {
        meta.deletionGracePeriodSeconds = grace;
        meta.deletionTimestamp = nowRfc3339(grace);
      }
      return true;
    },
    deletionPending: waitsForKubelet,
  },
  '/namespaces': {
    // spec.finalizers (kubernetes) hold a namespace while the namespace controller empties it.
    beginGracefulDeletion(_ctx, next, old) {
      if ((old.spec?.finalizers?.length ?? 0) === 0) return false;
      next.status = { ...(next.status ?? {}), phase: 'Terminating' };
      return true;
    },
    deletionPending: (_ctx, ns) => (ns.spec?.finalizers?.length ?? 0) > 0,
  },
};

const NO_HOOKS: KindStrategy = {};

export function strategyFor(info: KindInfo): KindStrategy {
  return info.crd ? NO_HOOKS : KIND_STRATEGIES[`${info.group}/${info.plural}`] ?? NO_HOOKS;
}
