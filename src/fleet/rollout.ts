// Staged rollouts: which clusters get a bundle's new version now. Pure; the bundle controller calls
// it on every reconcile with what it knows (targets, BundleDeployments, who is online) and writes
// the released version into those clusters' BundleDeployments.
//
// Fleet's fields (rolloutStrategy.partitions / autoPartitionSize / maxUnavailable), with one change
// that is the point of the feature: the **health gate** is strict. A partition starts only when
// every cluster of the previous ones runs the new version applied and Ready; maxUnavailable bounds
// how many clusters of a partition update at once (not how many may fail: in Fleet a partition
// with maxUnavailable 1 and one broken cluster proceeds, which is how a broken canary reaches the
// whole fleet). Offline clusters (rolloutStrategy.offlineClusters):
//   - Skip (default): they are released (their BundleDeployment names the new version, which they
//     take when they return) and neither count as unavailable nor hold the gate;
//   - CountUnavailable: each uses one of its partition's maxUnavailable; the gate opens once the
//     online ones are Ready and the offline ones fit within maxUnavailable.
// A cluster with no version of the bundle yet gets the current one at once (nothing to protect),
// as does every cluster when the bundle has no rolloutStrategy.
import type { Partition, RolloutStrategy } from './api.js';
import { matchesCluster, type ClusterInfo, type GroupInfo } from './targets.js';

export interface RolloutCluster extends ClusterInfo {
  groups: GroupInfo[];
  online: boolean;
  /** The version its BundleDeployment names now (undefined: none yet). */
  deployed?: string;
  /** What the site reported for it. */
  applied?: string;
  ready?: boolean;
  /** The version it should end on. */
  desired: string;
}

export interface PartitionState {
  name: string;
  clusters: string[];
  maxUnavailable: number;
  /** Clusters not running the desired version applied and Ready (offline ones per policy). */
  unavailable: number;
  done: boolean;
}

export interface RolloutPlan {
  /** Clusters whose BundleDeployment should name their desired version now. */
  release: Set<string>;
  partitions: PartitionState[];
  /**
   * The partition the rollout waits on, with the clusters holding it (only when some are not Ready),
   * and how many clusters of later partitions it holds back: none when they were released anyway
   * (a first deployment, offline clusters skipped) or when it is the last partition. Only a rollout
   * that holds clusters back is paused; the others are merely not Ready yet.
   */
  waiting?: { partition: string; clusters: string[]; holding: number };
}

/** `n` or `"n%"` of `total`, rounded up (as Kubernetes' maxUnavailable percentages on pods are for surge; Fleet rounds up). */
export function scaled(v: number | string | undefined, total: number, dflt: number | string): number {
  const x = v ?? dflt;
  if (typeof x === 'number') return Math.max(0, Math.floor(x));
  const m = /^(\d+)%$/.exec(x.trim());
  if (m) return Math.ceil((Number(m[1]) / 100) * total);
  const n = Number(x);
  return Number.isFinite(n) ? Math.max(0, Math.floor(n)) : 0;
}

/** Clusters into partitions: by the listed ones (first match wins, the unmatched in a last one), else by autoPartitionSize over names in order. */
export function partition(strategy: RolloutStrategy, clusters: RolloutCluster[]): { p: Partition & { name: string }; members: RolloutCluster[] }[] {
  const sorted = [...clusters].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  if (strategy.partitions?.length) {
    const out = strategy.partitions.map((p, i) => ({ p: { ...p, name: p.name ?? `partition-${i}` }, members: [] as RolloutCluster[] }));
    const rest: RolloutCluster[] = [];
    for (const c of sorted) {
      const hit = out.find((o) => matchesCluster(o.p, c, c.groups));
      (hit ? hit.members : rest).push(c);
    }
    if (rest.length) out.push({ p: { name: 'unpartitioned' }, members: rest });
    return out.filter((o) => o.members.length > 0);
  }
  // Fleet's default automatic partition size is 25 % of the targeted clusters.
  const size = Math.max(1, scaled(strategy.autoPartitionSize, sorted.length, '25%'));
  const out: { p: Partition & { name: string }; members: RolloutCluster[] }[] = [];
  for (let i = 0; i < sorted.length; i += size) out.push({ p: { name: `auto-${out.length}` }, members: sorted.slice(i, i + size) });
  return out;
}

export function planRollout(strategy: RolloutStrategy | undefined, clusters: RolloutCluster[]): RolloutPlan {
  const release = new Set<string>();
  // Nothing to protect: a cluster without the bundle, or one already on the desired version.
  for (const c of clusters) if (c.deployed === undefined || c.deployed === c.desired) release.add(c.name);
  if (!strategy) {
    for (const c of clusters) release.add(c.name);
    return { release, partitions: [] };
  }
  const countOffline = strategy.offlineClusters === 'CountUnavailable';
  const states: PartitionState[] = [];
  let waiting: RolloutPlan['waiting'];
  let open = true;
  for (const { p, members } of partition(strategy, clusters)) {
    // Fleet's default maxUnavailable is 100 %; at least one cluster updates at a time.
    const max = Math.max(1, scaled(p.maxUnavailable ?? strategy.maxUnavailable, members.length, '100%'));
    const good = (c: RolloutCluster) => release.has(c.name) && c.deployed === c.desired && c.applied === c.desired && c.ready === true;
    const counted = (c: RolloutCluster) => c.online || countOffline;
    if (open) {
      // Release within the budget: clusters counted and not yet good use it up.
      let busy = members.filter((c) => counted(c) && release.has(c.name) && c.deployed !== undefined && !good(c)).length;
      if (countOffline) busy = members.filter((c) => !c.online || (release.has(c.name) && c.deployed !== undefined && !good(c))).length;
      for (const c of members) {
        if (release.has(c.name)) continue;
        if (!c.online && !countOffline) { release.add(c.name); continue; }
        if (!c.online) continue;   // counted as unavailable already; released once it returns and budget allows
        if (busy >= max) continue;
        release.add(c.name);
        busy++;
      }
    }
    const notGood = members.filter((c) => counted(c) && !good(c));
    const offlineNotGood = notGood.filter((c) => !c.online);
    const onlineNotGood = notGood.filter((c) => c.online);
    const done = open && onlineNotGood.length === 0 && offlineNotGood.length <= (countOffline ? max : 0);
    states.push({ name: p.name, clusters: members.map((c) => c.name), maxUnavailable: max, unavailable: notGood.length, done });
    if (open && !done) {
      waiting = { partition: p.name, clusters: notGood.map((c) => c.name), holding: 0 };
      open = false;
    } else if (waiting) {
      waiting.holding += members.filter((c) => !release.has(c.name)).length;
    }
  }
  return { release, partitions: states, ...(waiting ? { waiting } : {}) };
}
