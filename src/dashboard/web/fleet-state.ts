// What the fleet pages show that the objects do not say in one field (pure, so it is unit-tested
// without a browser): where each partition of a staged rollout stands, and how one cluster's
// BundleDeployment is described. The manager writes the counts; these only name them.
import type { FleetSummary, PartitionP } from './hub.js';

export type PartitionState = 'Ready' | 'Rolling out' | 'RolloutPaused' | 'Waiting';

/**
 * Per partition, in order: Ready once its clusters run the bundle's version Ready (offline ones count
 * as the bundle's `offlineClusters` policy says: skipped, or within maxUnavailable); the first one
 * that is not is the one the rollout is at (RolloutPaused when the bundle's RolloutPaused condition
 * holds, else Rolling out); the ones after it are Waiting for their turn.
 */
export function partitionStates(partitions: PartitionP[], paused: boolean, offlineClusters = 'Skip'): PartitionState[] {
  let reached = false;
  return partitions.map((p) => {
    const s = p.summary;
    const offlineOk = offlineClusters === 'CountUnavailable' ? Math.min(s.offline, p.maxUnavailable) : s.offline;
    if (p.count > 0 && s.ready + offlineOk >= p.count) return 'Ready';
    if (reached) return 'Waiting';
    reached = true;
    return paused ? 'RolloutPaused' : 'Rolling out';
  });
}

/** `ready/count` of a partition, with the offline ones said when there are some. */
export function partitionCounts(p: PartitionP): string {
  return `${p.summary.ready}/${p.count} ready${p.summary.offline ? `, ${p.summary.offline} offline` : ''}`;
}

export interface DeploymentView {
  cluster: string; bundle: string; staged: string; released: string; applied: string;
  ready: boolean; state: string; message: string;
}

/**
 * One cluster's state for a bundle: Offline when its cluster is (its last report is not shown as
 * current), Waiting while a newer version is staged for it but its partition's turn has not come,
 * else what the site reported (Ready, NotReady, ErrApplied; WaitApplied until it reports).
 */
export function deploymentStateOf(d: DeploymentView, clusterState: string | undefined): string {
  if (clusterState && clusterState !== 'Ready') return clusterState === 'Pending' ? 'Pending' : 'Offline';
  if (d.released !== d.staged) return 'Waiting';
  if (d.applied !== d.released && d.state !== 'ErrApplied') return 'WaitApplied';
  return d.state || 'WaitApplied';
}

/** Clusters by state, for the list's summary line. */
export function clusterCounts(states: Iterable<string>): { total: number; ready: number; offline: number; other: number } {
  const out = { total: 0, ready: 0, offline: 0, other: 0 };
  for (const s of states) {
    out.total++;
    if (s === 'Ready') out.ready++; else if (s === 'Offline') out.offline++; else out.other++;
  }
  return out;
}

/** The summary's not-Ready count, for sorting (the rollouts that need a look first). */
export function notReadyOf(s: FleetSummary): number {
  return s.desiredReady - s.ready;
}
