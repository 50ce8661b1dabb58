// The Job's status arithmetic, without I/O: what the pods say against what the status has counted,
// whether the Job has met its goal or failed, the Suspended condition, and which finished pods are
// recorded as uncounted (the first of the three counting steps, see controller.ts).
import type { KObject } from '../../api/object.js';
import { completionIndex, formatIndexes, parseIndexes } from './indexes.js';
import { hasTrackingFinalizer, isFailedPod } from './pods.js';
import { isPodReady, isPodTerminal } from '../../api/pod.js';


type Obj = Record<string, any>;

/** Bounds one sync's work so a huge Job can't starve the others (MaxUncountedPods). */
export const MAX_UNCOUNTED = 500;

/** A condition the Job is about to get (interim SuccessCriteriaMet/FailureTarget, or final Complete/Failed). */
export interface Finish { type: string; reason: string; message: string }

const hasCondition = (job: Obj, type: string) => (job.status?.conditions ?? []).some((c: Obj) => c.type === type && c.status === 'True');
export const isJobFinished = (job: Obj): boolean => hasCondition(job, 'Complete') || hasCondition(job, 'Failed');

export function newCondition(f: Finish, now: string): Obj {
  return { type: f.type, status: 'True', lastProbeTime: now, lastTransitionTime: now, reason: f.reason, message: f.message };
}

/** The uids of pods counted in neither `succeeded` nor `failed` yet, as the status lists them. */
export interface Uncounted { succeeded: Set<string>; failed: Set<string> }

/** A completion index inside [0, completions). */
export const validIndex = (ix: number, completions: number | undefined): boolean => ix >= 0 && ix < (completions ?? 0);

export interface PodTally {
  /** Neither finished nor being deleted. */
  active: KObject[];
  terminating: number;
  ready: number;
  /** Finished, still tracked, and not yet in the uncounted lists. */
  newSucceeded: KObject[];
  newFailed: KObject[];
  /** Counts as they will be once every finished pod is counted. */
  succeeded: number;
  failed: number;
  /** Indexed: the completed indexes the status records, and those plus the pods that succeeded since. */
  prevIndexes: Set<number>;
  succeededIndexes: Set<number>;
}

/** What the Job's pods say, against `status` (a copy) and what it holds uncounted. */
export function tallyPods(job: Obj, status: Obj, pods: KObject[], uncounted: Uncounted, tracked: (p: KObject) => boolean): PodTally {
  const spec = job.spec ?? {};
  const indexed = spec.completionMode === 'Indexed';
  const completions: number | undefined = spec.completions ?? undefined;
  const active = pods.filter((p) => !isPodTerminal(p) && !p.metadata.deletionTimestamp);
  const terminating = pods.filter((p) => p.metadata.deletionTimestamp && !isPodTerminal(p)).length;
  const ready = active.filter(isPodReady).length;
  const inRange = (p: KObject) => !indexed || validIndex(completionIndex(p), completions);
  const newSucceeded = pods.filter((p) => tracked(p) && (p as Obj).status?.phase === 'Succeeded' && !uncounted.succeeded.has(String(p.metadata.uid)) && inRange(p));
  const newFailed = pods.filter((p) => tracked(p) && isFailedPod(p) && !uncounted.failed.has(String(p.metadata.uid)) && inRange(p));
  let succeeded = Number(status.succeeded ?? 0) + newSucceeded.length + uncounted.succeeded.size;
  const failed = Number(status.failed ?? 0) + newFailed.length + uncounted.failed.size;
  const prevIndexes = indexed ? parseIndexes(status.completedIndexes, completions ?? 0) : new Set<number>();
  const succeededIndexes = new Set(prevIndexes);
  if (indexed) {
    for (const p of pods) {
      const ix = completionIndex(p);
      if (hasTrackingFinalizer(p) && (p as Obj).status?.phase === 'Succeeded' && validIndex(ix, completions)) succeededIndexes.add(ix);
    }
    succeeded = succeededIndexes.size;
  }
  return { active, terminating, ready, newSucceeded, newFailed, succeeded, failed, prevIndexes, succeededIndexes };
}

/** restartPolicy OnFailure: container restarts of running pods count against backoffLimit. */
export function pastBackoffLimitOnFailure(spec: Obj, pods: KObject[]): boolean {
  if (spec.template?.spec?.restartPolicy !== 'OnFailure') return false;
  let restarts = 0;
  for (const p of pods) {
    const phase = (p as Obj).status?.phase;
    if (phase !== 'Running' && phase !== 'Pending') continue;
    for (const s of [...((p as Obj).status?.initContainerStatuses ?? []), ...((p as Obj).status?.containerStatuses ?? [])]) restarts += Number(s.restartCount ?? 0);
  }
  const limit = Number(spec.backoffLimit ?? 6);
  return limit === 0 ? restarts > 0 : restarts >= limit;
}

/**
 * Whether the Job's fate is sealed before anything is managed: a SuccessCriteriaMet or FailureTarget
 * already recorded, too many failures, or the active deadline passed (else `recheckInMs` says when
 * it will have). `met` is the recorded SuccessCriteriaMet condition, if any.
 */
export function sealedFate(job: Obj, status: Obj, failed: number, pods: KObject[], nowMs: number): { finish?: Finish; met?: Obj; recheckInMs?: number } {
  const spec = job.spec ?? {};
  const conds: Obj[] = status.conditions ?? [];
  const met = conds.find((c) => c.type === 'SuccessCriteriaMet' && c.status === 'True');
  const target = conds.find((c) => c.type === 'FailureTarget' && c.status === 'True');
  if (met) return { finish: { type: 'SuccessCriteriaMet', reason: met.reason, message: met.message }, met };
  if (target) return { finish: { type: 'Failed', reason: target.reason, message: target.message } };
  if (failed > Number(spec.backoffLimit ?? 6) || pastBackoffLimitOnFailure(spec, pods)) {
    return { finish: { type: 'FailureTarget', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' } };
  }
  if (spec.activeDeadlineSeconds != null && status.startTime && spec.suspend !== true) {
    const left = Date.parse(status.startTime) + spec.activeDeadlineSeconds * 1000 - nowMs;
    if (left <= 0) return { finish: { type: 'FailureTarget', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' } };
    return { recheckInMs: left };
  }
  return {};
}

/**
 * Sets the Suspended condition to match `spec.suspend` in `status` (a copy); true when it changed.
 * A resumed Job starts its activeDeadlineSeconds clock again: it counts continuous activity.
 */
export function setSuspended(status: Obj, suspended: boolean, ts: string): boolean {
  const conds: Obj[] = status.conditions ?? [];
  const c = suspended
    ? { type: 'Suspended', status: 'True', reason: 'JobSuspended', message: 'Job suspended' }
    : { type: 'Suspended', status: 'False', reason: 'JobResumed', message: 'Job resumed' };
  const had = conds.find((x) => x.type === 'Suspended');
  if (suspended ? had?.status === 'True' : had?.status !== 'True') return false;
  if (had) Object.assign(had, { status: c.status, reason: c.reason, message: c.message, lastProbeTime: ts, lastTransitionTime: ts });
  else conds.push({ ...c, lastProbeTime: ts, lastTransitionTime: ts });
  status.conditions = conds;
  if (!suspended) status.startTime = ts;
  return true;
}

/**
 * The first counting step (trackJobStatusAndRemoveFinalizers): which tracked pods may lose their
 * finalizer now, with the uids of finished ones added to `status.uncountedTerminatedPods` (Indexed
 * successes go straight into completedIndexes). Once the Job has failed, every pod not yet finished
 * counts as failed. Stops at MAX_UNCOUNTED (`reachedMax`).
 */
export function recordFinishedPods(job: Obj, status: Obj, pods: KObject[], o: {
  tracked: (p: KObject) => boolean; uncounted: Uncounted; prevIndexes: Set<number>; finish: Finish | undefined;
}): { toRelease: KObject[]; reachedMax: boolean } {
  const spec = job.spec ?? {};
  const indexed = spec.completionMode === 'Indexed';
  const completions: number | undefined = spec.completions ?? undefined;
  const uncountedNow = status.uncountedTerminatedPods as { succeeded: string[]; failed: string[] };
  const toRelease: KObject[] = [];
  const newIndexes: number[] = [];
  const ordered = indexed ? [...pods].sort((a, b) => completionIndex(a) - completionIndex(b)) : pods;
  let reachedMax = false;
  for (const p of ordered) {
    if (!o.tracked(p)) continue;
    const uid = String(p.metadata.uid);
    const failedPod = isFailedPod(p);
    const canRelease = job.metadata.deletionTimestamp || o.finish || (p as Obj).status?.phase === 'Succeeded' || failedPod;
    if (!canRelease) continue;
    toRelease.push(p);
    if ((p as Obj).status?.phase === 'Succeeded' && !o.uncounted.failed.has(uid)) {
      if (indexed) {
        const ix = completionIndex(p);
        if (validIndex(ix, completions) && !o.prevIndexes.has(ix)) newIndexes.push(ix);
      } else if (!o.uncounted.succeeded.has(uid)) {
        uncountedNow.succeeded.push(uid);
      }
    } else if (failedPod || (o.finish && o.finish.type !== 'SuccessCriteriaMet')) {
      if (!o.uncounted.failed.has(uid) && (!indexed || validIndex(completionIndex(p), completions))) uncountedNow.failed.push(uid);
    }
    if (newIndexes.length + uncountedNow.succeeded.length + uncountedNow.failed.length >= MAX_UNCOUNTED) {
      reachedMax = true;
      break;
    }
  }
  if (indexed) {
    const all = new Set([...o.prevIndexes, ...newIndexes]);
    status.completedIndexes = formatIndexes(all);
    status.succeeded = all.size;
  }
  return { toRelease, reachedMax };
}

/** The third counting step: released uids move from the uncounted lists into the counters; true when any moved. */
export function countReleased(status: Obj, withFinalizer: Set<string>): boolean {
  let moved = false;
  for (const kind of ['succeeded', 'failed'] as const) {
    const list: string[] = status.uncountedTerminatedPods[kind];
    const keep = list.filter((uid) => withFinalizer.has(uid));
    if (keep.length !== list.length) {
      status[kind] = Number(status[kind] ?? 0) + (list.length - keep.length);
      status.uncountedTerminatedPods[kind] = keep;
      moved = true;
    }
  }
  return moved;
}
