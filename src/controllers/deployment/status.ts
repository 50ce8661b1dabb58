// A Deployment's status as kubectl reads it (`rollout status`, `get`, `wait --for=condition=...`):
// counts summed over its ReplicaSets, and the Available / Progressing / ReplicaFailure conditions.
import {
  actualReplicaCount, availableReplicaCount, maxUnavailable, readyReplicaCount, replicaCount, specReplicas, type Obj,
} from './sizes.js';
import { rfc3339 } from '../../util/time.js';

export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  lastUpdateTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

// Condition reasons (deployment/util).
export const REASON = {
  replicaSetUpdated: 'ReplicaSetUpdated',
  failedRSCreate: 'ReplicaSetCreateError',
  newReplicaSet: 'NewReplicaSetCreated',
  foundNewRS: 'FoundNewReplicaSet',
  newRSAvailable: 'NewReplicaSetAvailable',
  timedOut: 'ProgressDeadlineExceeded',
  paused: 'DeploymentPaused',
  resumed: 'DeploymentResumed',
  minimumAvailable: 'MinimumReplicasAvailable',
  minimumUnavailable: 'MinimumReplicasUnavailable',
} as const;

export function newCondition(type: string, status: Condition['status'], reason: string, message: string, now = Date.now()): Condition {
  const t = rfc3339(now);
  return { type, status, lastUpdateTime: t, lastTransitionTime: t, reason, message };
}

export function getCondition(status: Obj['status'] | undefined, type: string): Condition | undefined {
  return (status?.conditions ?? []).find((c: Condition) => c.type === type);
}

/**
 * Sets a condition unless one of the same status and reason is there already; a change of reason
 * alone keeps the transition time.
 */
export function setCondition(status: Record<string, any>, c: Condition): void {
  const current = getCondition(status, c.type);
  if (current && current.status === c.status && current.reason === c.reason) return;
  const next = { ...c };
  if (current && current.status === c.status) next.lastTransitionTime = current.lastTransitionTime;
  status.conditions = [...(status.conditions ?? []).filter((x: Condition) => x.type !== c.type), next];
}

export function removeCondition(status: Record<string, any>, type: string): void {
  if (!status.conditions) return;
  status.conditions = status.conditions.filter((c: Condition) => c.type !== type);
  if (status.conditions.length === 0) delete status.conditions;
}

/** The status the ReplicaSets imply, with the Available condition; other conditions carried over. */
export function calculateStatus(allRSs: (Obj | undefined)[], newRS: Obj | undefined, d: Obj, now = Date.now()): Record<string, any> {
  const available = availableReplicaCount(allRSs);
  const unavailable = Math.max(0, replicaCount(allRSs) - available);
  const old = d.status ?? {};
  // Every count is omitempty in Kubernetes' DeploymentStatus: zero is absent, as kubectl -o yaml shows.
  const status: Record<string, any> = {};
  const put = (k: string, v: number | undefined) => { if (v) status[k] = v; };
  put('observedGeneration', d.metadata.generation);
  put('replicas', actualReplicaCount(allRSs));
  put('updatedReplicas', actualReplicaCount([newRS]));
  put('readyReplicas', readyReplicaCount(allRSs));
  put('availableReplicas', available);
  put('unavailableReplicas', unavailable);
  if (old.collisionCount !== undefined) status.collisionCount = old.collisionCount;
  if (old.conditions?.length) status.conditions = old.conditions.map((c: Condition) => ({ ...c }));
  if (available >= specReplicas(d) - maxUnavailable(d)) {
    setCondition(status, newCondition('Available', 'True', REASON.minimumAvailable, 'Deployment has minimum availability.', now));
  } else {
    setCondition(status, newCondition('Available', 'False', REASON.minimumUnavailable, 'Deployment does not have minimum availability.', now));
  }
  return status;
}

export const hasProgressDeadline = (d: Obj): boolean => {
  const s = d.spec?.progressDeadlineSeconds;
  return s !== undefined && s !== null && s !== 2147483647;
};

/** Every replica updated and available, and the latest spec observed. */
export function deploymentComplete(d: Obj, status: Record<string, any>): boolean {
  const want = specReplicas(d);
  return (status.updatedReplicas ?? 0) === want && (status.replicas ?? 0) === want &&
    (status.availableReplicas ?? 0) === want && (status.observedGeneration ?? 0) >= (d.metadata.generation ?? 0);
}

/** Something moved since the last recorded status: more updated, ready or available pods, or fewer old ones. */
export function deploymentProgressing(d: Obj, status: Record<string, any>): boolean {
  const old = d.status ?? {};
  const oldOld = (old.replicas ?? 0) - (old.updatedReplicas ?? 0);
  const newOld = (status.replicas ?? 0) - (status.updatedReplicas ?? 0);
  return (status.updatedReplicas ?? 0) > (old.updatedReplicas ?? 0) || newOld < oldOld ||
    (status.readyReplicas ?? 0) > (old.readyReplicas ?? 0) || (status.availableReplicas ?? 0) > (old.availableReplicas ?? 0);
}

/** No progress noted for progressDeadlineSeconds since the Progressing condition last moved. */
export function deploymentTimedOut(d: Obj, status: Record<string, any>, now = Date.now()): boolean {
  if (!hasProgressDeadline(d)) return false;
  const c = getCondition(status, 'Progressing');
  if (!c) return false;
  if (c.reason === REASON.newRSAvailable) return false;
  if (c.reason === REASON.timedOut) return true;
  const from = Date.parse(c.lastUpdateTime ?? '');
  return Number.isFinite(from) && from + d.spec.progressDeadlineSeconds * 1000 < now;
}
