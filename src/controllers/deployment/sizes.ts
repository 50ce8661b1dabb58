// Replica arithmetic of the Deployment controller (deployment/util in Kubernetes): surge and
// unavailability budgets, sums over ReplicaSets, the orders ReplicaSets are scaled in, and how a
// scaling of the Deployment is spread over the ReplicaSets that still run pods.
import type { KObject } from '../../api/object.js';
import { byCreation } from '../../api/pod.js';
import { MAX_REPLICAS_ANNOTATION, DESIRED_REPLICAS_ANNOTATION } from './revisions.js';

export type Obj = KObject & Record<string, any>;

export const specReplicas = (o: Obj | undefined): number => o?.spec?.replicas ?? 1;

/** An int, or a percentage of `total` rounded up (surge) or down (unavailability). */
export function scaledValue(v: number | string | undefined, total: number, roundUp: boolean): number {
  if (v === undefined || v === null) return 0;
  if (typeof v === 'number') return v;
  const m = /^(-?\d+)%$/.exec(v);
  if (!m) throw new Error(`invalid value for IntOrString: invalid type: string is not a percentage`);
  const scaled = (Number(m[1]) * total) / 100;
  return roundUp ? Math.ceil(scaled) : Math.floor(scaled);
}

export const isRollingUpdate = (d: Obj): boolean => (d.spec?.strategy?.type ?? 'RollingUpdate') === 'RollingUpdate';

/** maxSurge and maxUnavailable resolved against spec.replicas; both 0 would stall, so unavailability becomes 1. */
export function resolveFenceposts(d: Obj): { surge: number; unavailable: number } {
  const ru = d.spec?.strategy?.rollingUpdate ?? {};
  const desired = specReplicas(d);
  const surge = scaledValue(ru.maxSurge ?? '25%', desired, true);
  let unavailable = scaledValue(ru.maxUnavailable ?? '25%', desired, false);
  if (surge === 0 && unavailable === 0) unavailable = 1;
  return { surge, unavailable };
}

export function maxSurge(d: Obj): number {
  return isRollingUpdate(d) ? resolveFenceposts(d).surge : 0;
}

export function maxUnavailable(d: Obj): number {
  const desired = specReplicas(d);
  if (!isRollingUpdate(d) || desired === 0) return 0;
  return Math.min(resolveFenceposts(d).unavailable, desired);
}

const sum = (rss: (Obj | undefined)[], f: (rs: Obj) => number): number => {
  let n = 0;
  for (const rs of rss) if (rs) n += f(rs);
  return n;
};
/** Pods the ReplicaSets ask for (spec). */
export const replicaCount = (rss: (Obj | undefined)[]): number => sum(rss, specReplicas);
/** Pods the ReplicaSets report having (status). */
export const actualReplicaCount = (rss: (Obj | undefined)[]): number => sum(rss, (rs) => rs.status?.replicas ?? 0);
export const readyReplicaCount = (rss: (Obj | undefined)[]): number => sum(rss, (rs) => rs.status?.readyReplicas ?? 0);
export const availableReplicaCount = (rss: (Obj | undefined)[]): number => sum(rss, (rs) => rs.status?.availableReplicas ?? 0);

/** ReplicaSets that still ask for pods. */
export const filterActive = (rss: (Obj | undefined)[]): Obj[] => rss.filter((rs): rs is Obj => rs !== undefined && specReplicas(rs) > 0);

/** Largest first; ties newest first (where added replicas go). */
export function bySizeNewer(a: Obj, b: Obj): number {
  return specReplicas(b) - specReplicas(a) || byCreation(b, a);
}

/** Largest first; ties oldest first (where removed replicas come from). */
export function bySizeOlder(a: Obj, b: Obj): number {
  return specReplicas(b) - specReplicas(a) || byCreation(a, b);
}

/** Replicas for the new ReplicaSet in one step of a rollout. */
export function newRSNewReplicas(d: Obj, allRSs: (Obj | undefined)[], newRS: Obj): number {
  if (!isRollingUpdate(d)) return specReplicas(d);
  const current = replicaCount(allRSs);
  const maxTotal = specReplicas(d) + maxSurge(d);
  if (current >= maxTotal) return specReplicas(newRS);
  const up = Math.min(maxTotal - current, specReplicas(d) - specReplicas(newRS));
  return specReplicas(newRS) + up;
}

/** The new ReplicaSet has all the Deployment's replicas, and all of them available. */
export function isSaturated(d: Obj, rs: Obj | undefined): boolean {
  if (!rs) return false;
  const desired = Number(rs.metadata.annotations?.[DESIRED_REPLICAS_ANNOTATION]);
  if (!Number.isInteger(desired)) return false;
  const want = specReplicas(d);
  return specReplicas(rs) === want && desired === want && (rs.status?.availableReplicas ?? 0) === want;
}

/** The only ReplicaSet with replicas, or the newest one if none has any; undefined when several have. */
export function findActiveOrLatest(newRS: Obj | undefined, oldRSs: Obj[]): Obj | undefined {
  if (!newRS && oldRSs.length === 0) return undefined;
  const newestFirst = [...oldRSs].sort((a, b) => byCreation(b, a));
  const active = filterActive([...newestFirst, newRS]);
  if (active.length === 0) return newRS ?? newestFirst[0];
  if (active.length === 1) return active[0];
  return undefined;
}

/** Go's math.Round: halves away from zero. */
const roundHalfAway = (x: number): number => Math.sign(x) * Math.round(Math.abs(x));

/** The share of a scaling (up or down) a ReplicaSet takes, in proportion to its size. */
export function proportion(rs: Obj, d: Obj, toAdd: number, added: number): number {
  if (specReplicas(rs) === 0 || toAdd === 0 || toAdd === added) return 0;
  const fraction = replicaSetFraction(rs, d);
  const allowed = toAdd - added;
  return toAdd > 0 ? Math.min(fraction, allowed) : Math.max(fraction, allowed);
}

function replicaSetFraction(rs: Obj, d: Obj): number {
  if (specReplicas(d) === 0) return -specReplicas(rs);
  const deploymentReplicas = specReplicas(d) + maxSurge(d);
  const annotated = Number(rs.metadata.annotations?.[MAX_REPLICAS_ANNOTATION]);
  // Without the annotation, what the Deployment last reported stands in for the old size.
  const before = Number.isInteger(annotated) && rs.metadata.annotations?.[MAX_REPLICAS_ANNOTATION] !== undefined ? annotated : (d.status?.replicas ?? 0);
  if (before === 0) return 0;
  return roundHalfAway((specReplicas(rs) * deploymentReplicas) / before) - specReplicas(rs);
}
