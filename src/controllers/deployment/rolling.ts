// The RollingUpdate strategy (rolling.go in Kubernetes): each sync scales the new ReplicaSet up within
// the surge budget (spec.replicas + maxSurge pods in total), or else scales old ReplicaSets down within
// the availability budget (at least spec.replicas - maxUnavailable available), unhealthy old pods
// first. One step per sync; the ReplicaSets' status changes bring the next sync.
import type { DeploymentSync } from './sync.js';
import {
  availableReplicaCount, filterActive, maxUnavailable, newRSNewReplicas, replicaCount, specReplicas, type Obj,
} from './sizes.js';
import { byCreation } from '../../api/pod.js';
import { deploymentComplete } from './status.js';

export async function rolloutRolling(s: DeploymentSync): Promise<number | undefined> {
  const { newRS, oldRSs } = await s.getAllReplicaSetsAndSyncRevision(true);
  const allRSs = [...oldRSs, newRS];
  if (await reconcileNewReplicaSet(s, allRSs, newRS!)) return s.syncRolloutStatus(allRSs, newRS);
  if (await reconcileOldReplicaSets(s, allRSs, filterActive(oldRSs), newRS!)) return s.syncRolloutStatus(allRSs, newRS);
  if (deploymentComplete(s.d, s.d.status ?? {})) await s.cleanupDeployment(oldRSs);
  return s.syncRolloutStatus(allRSs, newRS);
}

async function reconcileNewReplicaSet(s: DeploymentSync, allRSs: (Obj | undefined)[], newRS: Obj): Promise<boolean> {
  const want = specReplicas(s.d);
  if (specReplicas(newRS) === want) return false;
  if (specReplicas(newRS) > want) return (await s.scaleReplicaSetAndRecordEvent(newRS, want)).scaled;
  return (await s.scaleReplicaSetAndRecordEvent(newRS, newRSNewReplicas(s.d, allRSs, newRS))).scaled;
}

async function reconcileOldReplicaSets(s: DeploymentSync, allRSs: (Obj | undefined)[], oldRSs: Obj[], newRS: Obj): Promise<boolean> {
  if (replicaCount(oldRSs) === 0) return false;
  const minAvailable = specReplicas(s.d) - maxUnavailable(s.d);
  const newRSUnavailable = specReplicas(newRS) - (newRS.status?.availableReplicas ?? 0);
  // Pods that may go without breaking the availability budget, not counting the new set's unready
  // ones (they count as unavailable already).
  const maxScaledDown = replicaCount(allRSs) - minAvailable - newRSUnavailable;
  if (maxScaledDown <= 0) return false;
  const { rss: cleaned, scaledDown: cleanup } = await cleanupUnhealthyReplicas(s, oldRSs, maxScaledDown);
  const scaled = await scaleDownOldReplicaSets(s, [...cleaned, newRS], cleaned);
  return cleanup + scaled > 0;
}

/** Scales old ReplicaSets down by their unavailable pods first, oldest set first, at most `max` pods. */
async function cleanupUnhealthyReplicas(s: DeploymentSync, oldRSs: Obj[], max: number): Promise<{ rss: Obj[]; scaledDown: number }> {
  const rss = [...oldRSs].sort(byCreation);
  let total = 0;
  for (let i = 0; i < rss.length; i++) {
    if (total >= max) break;
    const rs = rss[i];
    const unhealthy = specReplicas(rs) - (rs.status?.availableReplicas ?? 0);
    if (specReplicas(rs) === 0 || unhealthy <= 0) continue;
    const n = Math.min(max - total, unhealthy);
    rss[i] = (await s.scaleReplicaSetAndRecordEvent(rs, specReplicas(rs) - n)).rs;
    total += n;
  }
  return { rss, scaledDown: total };
}

/** Scales old ReplicaSets down, oldest first, as far as availability above minAvailable allows. */
async function scaleDownOldReplicaSets(s: DeploymentSync, allRSs: Obj[], oldRSs: Obj[]): Promise<number> {
  const minAvailable = specReplicas(s.d) - maxUnavailable(s.d);
  const available = availableReplicaCount(allRSs);
  if (available <= minAvailable) return 0;
  const budget = available - minAvailable;
  let total = 0;
  for (const rs of [...oldRSs].sort(byCreation)) {
    if (total >= budget) break;
    if (specReplicas(rs) === 0) continue;
    const n = Math.min(specReplicas(rs), budget - total);
    await s.scaleReplicaSetAndRecordEvent(rs, specReplicas(rs) - n);
    total += n;
  }
  return total;
}
