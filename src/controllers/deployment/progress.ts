// The Progressing condition during a rollout (progress.go in Kubernetes): True/NewReplicaSetAvailable
// once complete, True/ReplicaSetUpdated each time pods move (refreshing lastUpdateTime), and
// False/ProgressDeadlineExceeded when nothing moved for progressDeadlineSeconds. Failure conditions
// of the ReplicaSets (ReplicaFailure, new ReplicaSet's first) are lifted onto the Deployment.
import {
  calculateStatus, deploymentComplete, deploymentProgressing, deploymentTimedOut, getCondition, hasProgressDeadline,
  newCondition, REASON, removeCondition, setCondition, type Condition,
} from './status.js';
import type { Obj } from './sizes.js';

export function rolloutStatus(allRSs: (Obj | undefined)[], newRS: Obj | undefined, d: Obj, now = Date.now()): Record<string, any> {
  const status = calculateStatus(allRSs, newRS, d, now);
  if (!hasProgressDeadline(d)) removeCondition(status, 'Progressing');
  const current = getCondition(d.status, 'Progressing');
  const complete = (status.replicas ?? 0) === (status.updatedReplicas ?? 0) && current?.reason === REASON.newRSAvailable;
  if (hasProgressDeadline(d) && !complete) {
    if (deploymentComplete(d, status)) {
      const msg = newRS ? `ReplicaSet "${newRS.metadata.name}" has successfully progressed.` : 'Deployment has successfully progressed.';
      setCondition(status, newCondition('Progressing', 'True', REASON.newRSAvailable, msg, now));
    } else if (deploymentProgressing(d, status)) {
      const msg = newRS ? `ReplicaSet "${newRS.metadata.name}" is progressing.` : 'Deployment is progressing.';
      const c = newCondition('Progressing', 'True', REASON.replicaSetUpdated, msg, now);
      // Unlike setCondition, progress with an unchanged reason still refreshes lastUpdateTime: it is
      // what the deadline is measured from.
      if (current) {
        if (current.status === 'True') c.lastTransitionTime = current.lastTransitionTime;
        removeCondition(status, 'Progressing');
      }
      setCondition(status, c);
    } else if (deploymentTimedOut(d, status, now)) {
      const msg = newRS ? `ReplicaSet "${newRS.metadata.name}" has timed out progressing.` : `Deployment "${d.metadata.name}" has timed out progressing.`;
      setCondition(status, newCondition('Progressing', 'False', REASON.timedOut, msg, now));
    }
  }
  const failure = replicaFailure(allRSs, newRS);
  if (failure) setCondition(status, failure);
  else removeCondition(status, 'ReplicaFailure');
  return status;
}

function replicaFailure(allRSs: (Obj | undefined)[], newRS: Obj | undefined): Condition | undefined {
  const from = (rs: Obj | undefined): Condition | undefined => {
    const c = (rs?.status?.conditions ?? []).find((x: any) => x.type === 'ReplicaFailure');
    return c && { type: 'ReplicaFailure', status: c.status, lastTransitionTime: c.lastTransitionTime, lastUpdateTime: c.lastTransitionTime, reason: c.reason, message: c.message };
  };
  const own = from(newRS);
  if (own) return own;
  for (const rs of allRSs) {
    const c = from(rs);
    if (c) return c;
  }
  return undefined;
}

/**
 * When to look again at a rollout that may be stuck: just after its deadline would pass, so the
 * timeout is reported without waiting for an unrelated event. Undefined when there is nothing to time.
 */
export function progressCheckDelayMs(d: Obj, status: Record<string, any>, now = Date.now()): number | undefined {
  const c = getCondition(status, 'Progressing');
  if (!hasProgressDeadline(d) || !c) return undefined;
  if (deploymentComplete(d, status) || c.reason === REASON.timedOut) return undefined;
  const since = Date.parse(c.lastUpdateTime ?? '');
  if (!Number.isFinite(since)) return undefined;
  return Math.max(0, since + d.spec.progressDeadlineSeconds * 1000 - now) + 1000;
}
