// The stores the views share, created on first use: cluster-scoped ones live for the session, the
// namespaced ones are replaced when the namespace filter changes.
import { Store } from './store.js';
import { phaseOf } from './phase.js';

export interface NodeP { name: string; ready: string; arch: string; unschedulable: boolean; created: string; labels: Record<string, string> }
export interface PodP { ns: string; name: string; phase: string; node: string; created: string; deleting: boolean }
export interface DeployP { ns: string; name: string; replicas: number; ready: number; updated: number; available: number; created: string }
export interface EventP { ns: string; reason: string; message: string; object: string; count: number; last: string }
export interface NsP { name: string }

/** Bundle counts (a Cluster's status.summary, a Bundle's and each partition's). */
export interface FleetSummary { desiredReady: number; ready: number; notReady: number; pending: number; waitApplied: number; errApplied: number; offline: number }
export interface ClusterP {
  name: string; labels: Record<string, string>; state: string; nodes: string; version: string; lastSeen: string;
  readyBundles: string; nonReadyBundles: string[]; created: string;
}
export interface PartitionP { name: string; count: number; maxUnavailable: number; unavailable: number; summary: FleetSummary }
export interface BundleP {
  ns: string; name: string; readyClusters: string; state: string; message: string;
  /** The RolloutPaused condition's message while it is True (the partition that holds the rollout, and why). */
  paused: string;
  partitions: PartitionP[]; summary: FleetSummary; offlineClusters: string; created: string;
}

/** skiff's fleet API group (issue 17): served by every skiff server, which may be a fleet manager. */
export const FLEET_API = '/apis/fleet.skiff.io/v1alpha1';
const EMPTY_SUMMARY: FleetSummary = { desiredReady: 0, ready: 0, notReady: 0, pending: 0, waitApplied: 0, errApplied: 0, offline: 0 };

/** What the fleet pages keep of a Bundle: its status (counts, partitions, the paused condition). */
export function bundleOf(b: any): BundleP {
  const paused = (b.status?.conditions ?? []).find((c: any) => c.type === 'RolloutPaused');
  return {
    ns: b.metadata?.namespace ?? '', name: b.metadata?.name ?? '',
    readyClusters: b.status?.display?.readyClusters ?? '', state: b.status?.display?.state ?? '', message: b.status?.display?.message ?? '',
    paused: paused?.status === 'True' ? paused.message ?? '' : '',
    partitions: b.status?.partitions ?? [], summary: b.status?.summary ?? EMPTY_SUMMARY,
    offlineClusters: b.spec?.rolloutStrategy?.offlineClusters ?? 'Skip', created: b.metadata?.creationTimestamp ?? '',
  };
}

const nsPath = (base: string, plural: string, ns: string) => ns ? `${base}/namespaces/${encodeURIComponent(ns)}/${plural}` : `${base}/${plural}`;

/**
 * Stores kept while a page that does not use them is open: the namespace menu's (always shown) and the
 * pods' (the costliest to list again, shared by the overview, the pod list and a node's page).
 */
const KEEP = new Set(['namespaces', 'ns:pods']);

export class Hub {
  private stores = new Map<string, Store<any>>();
  private used = new Set<string>();
  namespace = '';

  private get<P>(key: string, make: () => Store<P>): Store<P> {
    let s = this.stores.get(key);
    if (!s) { s = make().start(); this.stores.set(key, s); }
    this.used.add(key);
    return s as Store<P>;
  }

  /** A page is about to be built: start noting which stores it uses. */
  beginView(): void { this.used.clear(); }

  /**
   * The page is built: stop the watches it does not use. The API server speaks HTTP/1.1, where a
   * browser opens at most 6 connections to one origin and each watch holds one; watches left open by
   * earlier pages would leave none for the page's own requests (they would wait for ever).
   */
  endView(): void {
    for (const [k, s] of this.stores) if (!this.used.has(k) && !KEEP.has(k)) { s.stop(); this.stores.delete(k); }
  }

  setNamespace(ns: string): void {
    if (ns === this.namespace) return;
    this.namespace = ns;
    for (const [k, s] of this.stores) if (k.startsWith('ns:')) { s.stop(); this.stores.delete(k); }
  }

  stopAll(): void {
    for (const s of this.stores.values()) s.stop();
    this.stores.clear();
  }

  // Nodes and pods are the big collections (5,000 and 50,000 on a large cluster): their rows carry
  // only the object's metadata (includeObject=Metadata, half the bytes of whole objects) and what
  // the views need is read from kubectl's printer cells (STATUS, NODE) and the labels.
  nodes(): Store<NodeP> {
    return this.get('nodes', () => new Store<NodeP>('/api/v1/nodes', (n, cell) => {
      const status = cell('Status').split(',');
      return {
        name: n.metadata?.name ?? '',
        ready: status[0] === 'Ready' ? 'True' : status[0] === 'NotReady' ? 'False' : 'Unknown',
        arch: n.metadata?.labels?.['kubernetes.io/arch'] ?? 'unknown',
        unschedulable: status.includes('SchedulingDisabled'),
        created: n.metadata?.creationTimestamp ?? '',
        labels: n.metadata?.labels ?? {},
      };
    }, { includeObject: 'Metadata' }));
  }

  namespaces(): Store<NsP> {
    return this.get('namespaces', () => new Store<NsP>('/api/v1/namespaces', (n) => ({ name: n.metadata?.name ?? '' })));
  }

  pods(): Store<PodP> {
    return this.get(`ns:pods`, () => new Store<PodP>(nsPath('/api/v1', 'pods', this.namespace), (p, cell) => ({
      ns: p.metadata?.namespace ?? '', name: p.metadata?.name ?? '', phase: phaseOf(cell('Status')),
      node: cell('Node'), created: p.metadata?.creationTimestamp ?? '', deleting: Boolean(p.metadata?.deletionTimestamp),
    }), { includeObject: 'Metadata' }));
  }

  deployments(): Store<DeployP> {
    return this.get(`ns:deployments`, () => new Store<DeployP>(nsPath('/apis/apps/v1', 'deployments', this.namespace), (d) => ({
      ns: d.metadata?.namespace ?? '', name: d.metadata?.name ?? '', replicas: d.spec?.replicas ?? 1,
      ready: d.status?.readyReplicas ?? 0, updated: d.status?.updatedReplicas ?? 0, available: d.status?.availableReplicas ?? 0,
      created: d.metadata?.creationTimestamp ?? '',
    })));
  }

  // The fleet's Clusters (cluster-scoped, one per site: up to thousands, a kilobyte or two each) and
  // Bundles (few): whole objects, since what the views show is in their status.
  fleetClusters(): Store<ClusterP> {
    return this.get('fleet:clusters', () => new Store<ClusterP>(`${FLEET_API}/clusters`, (c) => ({
      name: c.metadata?.name ?? '', labels: c.metadata?.labels ?? {},
      state: c.status?.display?.state ?? 'Pending', nodes: c.status?.display?.nodes ?? '', version: c.status?.version ?? '',
      lastSeen: c.status?.lastSeen ?? '', readyBundles: c.status?.display?.readyBundles ?? '',
      nonReadyBundles: c.status?.summary?.nonReadyBundles ?? [], created: c.metadata?.creationTimestamp ?? '',
    })));
  }

  bundles(): Store<BundleP> {
    return this.get('ns:bundles', () => new Store<BundleP>(nsPath(FLEET_API, 'bundles', this.namespace), bundleOf));
  }

  warnings(): Store<EventP> {
    return this.get(`ns:warnings`, () => new Store<EventP>(nsPath('/api/v1', 'events', this.namespace), (e) => ({
      ns: e.metadata?.namespace ?? '', reason: e.reason ?? '', message: e.message ?? '',
      object: `${(e.involvedObject?.kind ?? '').toLowerCase()}/${e.involvedObject?.name ?? ''}`,
      count: e.count ?? 1, last: e.lastTimestamp ?? e.eventTime ?? e.metadata?.creationTimestamp ?? '',
    }), { fieldSelector: 'type=Warning' }));
  }
}
