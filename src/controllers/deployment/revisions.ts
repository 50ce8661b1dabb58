// Revisions of a Deployment: each ReplicaSet carries the revision it last served as the new one
// (`deployment.kubernetes.io/revision`). A rollout's new ReplicaSet gets the highest old revision + 1;
// a rollback (the template set back to an old ReplicaSet's) moves that old ReplicaSet to the new
// number and remembers its earlier ones in `revision-history`. Old ReplicaSets scaled to zero beyond
// `revisionHistoryLimit` are deleted, lowest revision first.
import { specReplicas, type Obj } from './sizes.js';
import { byCreation } from '../../api/pod.js';

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
export const REVISION_HISTORY_ANNOTATION = 'deployment.kubernetes.io/revision-history';
export const DESIRED_REPLICAS_ANNOTATION = 'deployment.kubernetes.io/desired-replicas';
export const MAX_REPLICAS_ANNOTATION = 'deployment.kubernetes.io/max-replicas';
const LAST_APPLIED_ANNOTATION = 'kubectl.kubernetes.io/last-applied-configuration';
const ROLLBACK_TO_ANNOTATION = 'deprecated.deployment.rollback.to';
/** Kubernetes' bound on the revision-history annotation. */
const MAX_REVISION_HISTORY_CHARS = 2000;

/** Deployment annotations that are the controller's own bookkeeping, never copied to ReplicaSets. */
const NOT_COPIED = new Set([
  LAST_APPLIED_ANNOTATION, REVISION_ANNOTATION, REVISION_HISTORY_ANNOTATION,
  DESIRED_REPLICAS_ANNOTATION, MAX_REPLICAS_ANNOTATION, ROLLBACK_TO_ANNOTATION,
]);

/** The revision number of a ReplicaSet (0 without one; NaN when unparsable). */
export function revisionOf(o: Obj | undefined): number {
  const v = o?.metadata.annotations?.[REVISION_ANNOTATION];
  if (v === undefined) return 0;
  return /^\d+$/.test(v) ? Number(v) : NaN;
}

export function maxRevision(rss: Obj[]): number {
  let max = 0;
  for (const rs of rss) {
    const v = revisionOf(rs);
    if (v > max) max = v;
  }
  return max;
}

/** Records the Deployment's size and its surge ceiling on a ReplicaSet; true if anything changed. */
export function setReplicasAnnotations(rs: Obj, desired: number, max: number): boolean {
  const a = (rs.metadata.annotations ??= {});
  let changed = false;
  if (a[DESIRED_REPLICAS_ANNOTATION] !== String(desired)) { a[DESIRED_REPLICAS_ANNOTATION] = String(desired); changed = true; }
  if (a[MAX_REPLICAS_ANNOTATION] !== String(max)) { a[MAX_REPLICAS_ANNOTATION] = String(max); changed = true; }
  return changed;
}

/**
 * Brings the new ReplicaSet's annotations up to date (mutating `rs`, a private copy): the
 * Deployment's own annotations, the new revision (when higher than its current one, keeping the
 * earlier one in the history), and for a ReplicaSet about to be created the replica annotations.
 */
export function setNewReplicaSetAnnotations(d: Obj, rs: Obj, newRevision: number, exists: boolean, surge: number): boolean {
  const a = (rs.metadata.annotations ??= {});
  let changed = false;
  for (const [k, v] of Object.entries<string>(d.metadata.annotations ?? {})) {
    if (NOT_COPIED.has(k) || a[k] === v) continue;
    a[k] = v;
    changed = true;
  }
  const had = a[REVISION_ANNOTATION];
  const old = had === undefined ? 0 : /^\d+$/.test(had) ? Number(had) : NaN;
  if (Number.isNaN(old)) return changed;      // someone else's value: leave it alone
  if (old < newRevision) {
    a[REVISION_ANNOTATION] = String(newRevision);
    changed = true;
    if (had !== undefined) a[REVISION_HISTORY_ANNOTATION] = appendHistory(a[REVISION_HISTORY_ANNOTATION] ?? '', had);
  }
  if (!exists && setReplicasAnnotations(rs, specReplicas(d), specReplicas(d) + surge)) changed = true;
  return changed;
}

function appendHistory(history: string, revision: string): string {
  if (history === '') return revision;
  const parts = history.split(',');
  let total = history.length + revision.length + 1;
  let start = 0;
  while (total > MAX_REVISION_HISTORY_CHARS && start < parts.length) total -= parts[start++].length + 1;
  return [...parts.slice(start), revision].join(',');
}

/** Old ReplicaSets to delete under revisionHistoryLimit: surplus ones, lowest revision first, only when fully scaled down. */
export function replicaSetsToCleanUp(d: Obj, oldRSs: Obj[]): Obj[] {
  const limit = d.spec?.revisionHistoryLimit;
  if (limit === undefined || limit === null) return [];
  const alive = oldRSs.filter((rs) => !rs.metadata.deletionTimestamp);
  const diff = alive.length - limit;
  if (diff <= 0) return [];
  alive.sort((a, b) => (revisionOf(a) || 0) - (revisionOf(b) || 0) || byCreation(a, b));
  return alive.slice(0, diff).filter((rs) =>
    (rs.status?.replicas ?? 0) === 0 && specReplicas(rs) === 0 && (rs.metadata.generation ?? 0) <= (rs.status?.observedGeneration ?? 0));
}
