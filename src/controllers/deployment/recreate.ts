// The Recreate strategy (recreate.go in Kubernetes): scale every old ReplicaSet to zero, wait until no
// old pod is left running, and only then create or scale up the new ReplicaSet.
import type { DeploymentSync } from './sync.js';
import { actualReplicaCount, filterActive, specReplicas, type Obj } from './sizes.js';
import { deploymentComplete } from './status.js';

export async function rolloutRecreate(s: DeploymentSync, podsOf: (rsUid: string) => Obj[]): Promise<number | undefined> {
  let { newRS, oldRSs } = await s.getAllReplicaSetsAndSyncRevision(false);
  let allRSs: (Obj | undefined)[] = [...oldRSs, newRS];
  let scaledDown = false;
  for (const rs of filterActive(oldRSs)) {
    if ((await s.scaleReplicaSetAndRecordEvent(rs, 0)).scaled) scaledDown = true;
  }
  if (scaledDown) return s.syncRolloutStatus(allRSs, newRS);
  if (oldPodsRunning(newRS, oldRSs, podsOf)) return s.syncRolloutStatus(allRSs, newRS);
  if (!newRS) {
    ({ newRS, oldRSs } = await s.getAllReplicaSetsAndSyncRevision(true));
    allRSs = [...oldRSs, newRS];
  }
  await s.scaleReplicaSetAndRecordEvent(newRS!, specReplicas(s.d));
  if (deploymentComplete(s.d, s.d.status ?? {})) await s.cleanupDeployment(oldRSs);
  return s.syncRolloutStatus(allRSs, newRS);
}

/** Any old ReplicaSet still reporting pods, or any of their pods not finished (terminating ones included). */
export function oldPodsRunning(newRS: Obj | undefined, oldRSs: Obj[], podsOf: (rsUid: string) => Obj[]): boolean {
  if (actualReplicaCount(oldRSs) > 0) return true;
  for (const rs of oldRSs) {
    if (rs.metadata.uid === newRS?.metadata.uid) continue;
    for (const p of podsOf(rs.metadata.uid!)) {
      const phase = p.status?.phase;
      if (phase !== 'Failed' && phase !== 'Succeeded') return true;
    }
  }
  return false;
}
