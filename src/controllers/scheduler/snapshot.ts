// The scheduler's picture of the cluster: every node with the pods bound (or assumed) to it and their
// running totals. The watch loop keeps it current with add/update/remove calls as events arrive, so a
// scheduling attempt never re-reads or re-parses the whole cluster.
import { scheduleOn } from './algorithm.js';
import { NodeInfo, NodeRows, PodInfo, podKey } from './node-info.js';
import type { AffinityTerm, Placed } from './pod-affinity.js';
import type { Node, Pod, ScheduleOptions, ScheduleResult } from './types.js';

export class ClusterSnapshot {
  private readonly infos = new Map<string, NodeInfo>();
  /** The nodes' numbers, side by side for the filter and score loops. */
  private readonly rows = new NodeRows();
  private readonly placed = new Map<string, Placed>();
  /** "key=value" → placed pods carrying that label, so affinity terms need not scan every pod. */
  private readonly byLabel = new Map<string, Set<Placed>>();
  /**
   * Owner uid → the nodes holding its live (not terminating) pods, with how many: what spreading a
   * controller's replicas counts, by node and, over these few nodes, by zone.
   */
  private readonly byOwner = new Map<string, Map<NodeInfo, number>>();
  /** Nodes that exist, in the order the feasibility search rotates through. */
  readonly nodes: NodeInfo[] = [];
  /** Where the next search starts, so successive pods look at different nodes first. */
  nextStartNodeIndex = 0;
  /** Cluster-wide counts that let a cycle skip inter-pod affinity work when nobody uses it. */
  podsWithAffinity = 0;
  podsWithRequiredAntiAffinity = 0;

  constructor(readonly options: ScheduleOptions = {}) {}

  /** Adds or replaces a node (same as updateNode). */
  addNode(node: Node): void {
    const name = node.metadata.name ?? '';
    let info = this.infos.get(name);
    if (!info) this.infos.set(name, (info = new NodeInfo(name, this.rows)));
    if (!info.node) this.nodes.push(info);
    info.setNode(node);
  }

  updateNode(node: Node): void { this.addNode(node); }

  removeNode(name: string): void {
    const info = this.infos.get(name);
    if (!info?.node) return;
    this.nodes.splice(this.nodes.indexOf(info), 1);
    // Pods still bound to a vanished node stay accounted until they are deleted, as in kube-scheduler's cache.
    if (info.pods.size) info.setNode(undefined);
    else this.drop(info);
  }

  node(name: string): NodeInfo | undefined {
    const info = this.infos.get(name);
    return info?.node ? info : undefined;
  }

  /** Records a pod on a node: one bound by the API, or one just scheduled there (assumed). */
  addPod(pod: Pod, nodeName = pod.spec?.nodeName): void {
    if (!nodeName) return;
    const known = this.placed.get(podKey(pod));
    // A new version with nothing the scheduler reads changed (a kubelet's status write keeps the
    // stored spec, labels and owners, the same frozen objects): only the object kept is replaced,
    // rather than the pod's requests, ports and terms worked out again.
    if (known && known.node.name === nodeName && sameForScheduling(known.pod.pod, pod)) {
      known.pod.pod = pod;
      return;
    }
    this.removePod(pod);
    let info = this.infos.get(nodeName);
    if (!info) this.infos.set(nodeName, (info = new NodeInfo(nodeName, this.rows)));
    const p = new PodInfo(pod);
    info.addPod(p);
    const entry = { pod: p, node: info };
    this.placed.set(p.key, entry);
    for (const k in p.labels) {
      const label = `${k}=${p.labels[k]}`;
      let set = this.byLabel.get(label);
      if (!set) this.byLabel.set(label, (set = new Set()));
      set.add(entry);
    }
    if (p.hasAffinity) this.podsWithAffinity++;
    if (p.requiredAntiAffinity.length) this.podsWithRequiredAntiAffinity++;
    this.countOwner(p, info, 1);
  }

  updatePod(pod: Pod, nodeName = pod.spec?.nodeName): void { this.addPod(pod, nodeName); }

  removePod(pod: Pod | string): void {
    const key = typeof pod === 'string' ? pod : podKey(pod);
    const entry = this.placed.get(key);
    if (!entry) return;
    this.placed.delete(key);
    for (const k in entry.pod.labels) {
      const label = `${k}=${entry.pod.labels[k]}`;
      const set = this.byLabel.get(label);
      set?.delete(entry);
      if (set?.size === 0) this.byLabel.delete(label);
    }
    entry.node.removePod(entry.pod);
    this.countOwner(entry.pod, entry.node, -1);
    if (entry.pod.hasAffinity) this.podsWithAffinity--;
    if (entry.pod.requiredAntiAffinity.length) this.podsWithRequiredAntiAffinity--;
    if (!entry.node.node && entry.node.pods.size === 0) this.drop(entry.node);
  }

  /** Forgets a node that is gone and holds no pods; its row goes to the next new node. */
  private drop(info: NodeInfo): void {
    this.infos.delete(info.name);
    this.rows.give(info.row);
  }

  /** Pods on existing nodes that may match the term: those with its index label, else all. */
  *candidatesFor(term: AffinityTerm): Iterable<Placed> {
    const pool = term.indexLabel ? this.byLabel.get(term.indexLabel) : this.placed.values();
    if (!pool) return;
    for (const e of pool) if (e.node.node) yield e;
  }

  *nodesWithRequiredAntiAffinity(): Iterable<NodeInfo> {
    if (this.podsWithRequiredAntiAffinity === 0) return;
    for (const n of this.nodes) if (n.podsWithRequiredAntiAffinity.size > 0) yield n;
  }

  *nodesWithAffinity(): Iterable<NodeInfo> {
    if (this.podsWithAffinity === 0) return;
    for (const n of this.nodes) if (n.podsWithAffinity.size > 0) yield n;
  }

  /** The nodes holding live pods of `owner`, with how many each; nodes since removed included. */
  ownerNodes(owner: string): ReadonlyMap<NodeInfo, number> | undefined {
    return this.byOwner.get(owner);
  }

  private countOwner(p: PodInfo, node: NodeInfo, sign: 1 | -1): void {
    if (!p.owner || p.terminating) return;
    let nodes = this.byOwner.get(p.owner);
    if (!nodes) this.byOwner.set(p.owner, (nodes = new Map()));
    const n = (nodes.get(node) ?? 0) + sign;
    if (n > 0) nodes.set(node, n);
    else nodes.delete(node);
    if (nodes.size === 0) this.byOwner.delete(p.owner);
  }

  /** Picks a node for the pod, or explains why none fits. Does not record the pod: call addPod once bound. */
  schedule(pod: Pod): ScheduleResult {
    return scheduleOn(this, pod);
  }
}

/** Whether two versions of a pod give the same PodInfo: what it is built from is the same (objects by identity). */
function sameForScheduling(a: Pod, b: Pod): boolean {
  if (a === b) return true;
  const ma = a.metadata, mb = b.metadata;
  return a.spec === b.spec && ma.labels === mb.labels && ma.ownerReferences === mb.ownerReferences
    && ma.deletionTimestamp === mb.deletionTimestamp && ma.uid === mb.uid && ma.name === mb.name && ma.namespace === mb.namespace;
}
