// The Job controller (pkg/controller/job, as of Kubernetes 1.32) and the TTL-after-finished cleanup.
//
// Pods are `<job>-<random>` (Indexed: `<job>-<index>-<random>`, with the index as annotation, label,
// hostname and JOB_COMPLETION_INDEX). Every pod carries the `batch.kubernetes.io/job-tracking`
// finalizer, and a finished pod is counted exactly once by the same three steps Kubernetes takes:
// its uid goes into `status.uncountedTerminatedPods`, then its finalizer is removed, then it moves from
// the uncounted list to `succeeded`/`failed` (Indexed successes go straight into `completedIndexes`).
// A loop killed between any two steps resumes from what the status and the pods say.
//
// A Job that has met its goal first gets SuccessCriteriaMet (or, failing, FailureTarget with reason
// BackoffLimitExceeded or DeadlineExceeded), its remaining pods are deleted, and only once none is
// left terminating does it get Complete (with completionTime) or Failed. Pods that fail are replaced
// after an exponential backoff (10 s doubling to 10 min), and a pod being deleted counts as failed
// (podReplacementPolicy TerminatingOrFailed). Not implemented: podFailurePolicy, successPolicy,
// backoffLimitPerIndex, podReplacementPolicy Failed, managedBy, adopting orphan pods.
import type { KObject } from '../api/object.js';
import { Resources, isNotFound } from '../client/types.js';
import { runController, type RunningController } from '../client/controller.js';
import { keyOf } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';
import type { ControllerContext } from './context.js';
import {
  byCreation, controllerOf, controllerUidIndex, isPodReady, isPodTerminal, podFromTemplate, rfc3339,
} from './workload-pods.js';
import { Expectations } from './expectations.js';
import { slowStartBatch } from './slow-start.js';

type Obj = Record<string, any>;

const KIND = 'Job';
const POD_INDEX = 'job-controller:owner';
export const JOB_TRACKING_FINALIZER = 'batch.kubernetes.io/job-tracking';
export const COMPLETION_INDEX_KEY = 'batch.kubernetes.io/job-completion-index';
const ORPHAN_PREFIX = 'orphan-pod:';
/** Bounds one sync's work so a huge Job can't starve the others (MaxUncountedPods, MaxPodCreateDeletePerSync). */
const MAX_UNCOUNTED = 500;
const MAX_CREATE_DELETE = 500;

export interface JobControllerOptions {
  workers?: number;
  now?: () => number;
  /** First delay before a failed pod is replaced; doubles per failure since the last success. */
  podFailureBackoffMs?: number;
  maxPodFailureBackoffMs?: number;
}

interface Finish { type: string; reason: string; message: string }

// ---- completed index intervals ("1,3-5") ------------------------------------------------------------

export function parseIndexes(s: string | undefined, completions: number): Set<number> {
  const out = new Set<number>();
  for (const part of (s ?? '').split(',')) {
    if (!part) continue;
    const [a, b] = part.split('-').map(Number);
    for (let i = a!; i <= (b ?? a!); i++) if (i < completions) out.add(i);
  }
  return out;
}

export function formatIndexes(set: Set<number>): string {
  const sorted = [...set].sort((a, b) => a - b);
  const parts: string[] = [];
  for (let i = 0; i < sorted.length;) {
    let j = i;
    while (j + 1 < sorted.length && sorted[j + 1] === sorted[j]! + 1) j++;
    parts.push(j > i ? `${sorted[i]}-${sorted[j]}` : String(sorted[i]));
    i = j + 1;
  }
  return parts.join(',');
}

function completionIndex(pod: KObject): number {
  const v = pod.metadata.annotations?.[COMPLETION_INDEX_KEY] ?? pod.metadata.labels?.[COMPLETION_INDEX_KEY];
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : -1;
}

const hasCondition = (job: Obj, type: string) => (job.status?.conditions ?? []).some((c: Obj) => c.type === type && c.status === 'True');
export const isJobFinished = (job: Obj): boolean => hasCondition(job, 'Complete') || hasCondition(job, 'Failed');

function newCondition(f: Finish, now: string): Obj {
  return { type: f.type, status: 'True', lastProbeTime: now, lastTransitionTime: now, reason: f.reason, message: f.message };
}

export function startJobController(ctx: ControllerContext, opts: JobControllerOptions = {}): RunningController {
  const now = opts.now ?? Date.now;
  const backoffBase = opts.podFailureBackoffMs ?? 10_000;
  const backoffMax = opts.maxPodFailureBackoffMs ?? 10 * 60_000;
  const { client, events } = ctx;
  const jobInf = ctx.informers.informerFor(Resources.jobs);
  const podInf = ctx.informers.informerFor(Resources.pods, { indexers: { [POD_INDEX]: controllerUidIndex(KIND) } });
  const queue = new WorkQueue<string>();
  const expectations = new Expectations();
  /** Pod uids whose finalizer removal was sent but not yet seen, per Job (uidTrackingExpectations). */
  const removing = new Map<string, Set<string>>();
  /** Failures since the last success and when the last one was seen, per Job (the pod backoff store). */
  const backoffs = new Map<string, { failures: number; lastMs: number }>();

  const ownerJob = (pod: KObject): KObject | undefined => {
    const ref = controllerOf(pod);
    if (!ref || ref.kind !== KIND) return undefined;
    const job = jobInf.getByName(pod.metadata.namespace, ref.name);
    return job && job.metadata.uid === ref.uid ? job : undefined;
  };
  const hasFinalizer = (p: KObject) => p.metadata.finalizers?.includes(JOB_TRACKING_FINALIZER) === true;
  const finalizerGone = (key: string, p: KObject) => removing.get(key)?.delete(String(p.metadata.uid));
  const onPod = (p: KObject, change: 'add' | 'deleting' | 'gone' | 'update') => {
    const job = ownerJob(p);
    if (!job) {
      // A tracked pod whose Job is gone would keep its finalizer forever.
      if (hasFinalizer(p) && change !== 'gone' && controllerOf(p)?.kind === KIND) queue.add(ORPHAN_PREFIX + keyOf(p));
      return;
    }
    const key = keyOf(job);
    if (change === 'add') expectations.creationObserved(key);
    if (change === 'deleting') expectations.deletionObserved(key, keyOf(p));
    if (change === 'gone' || !hasFinalizer(p)) finalizerGone(key, p);
    queue.add(key);
  };
  jobInf.addHandlers({
    onAdd: (j) => queue.add(keyOf(j)),
    onUpdate: (_o, j) => queue.add(keyOf(j)),
    onDelete: (j) => queue.add(keyOf(j)),
  });
  podInf.addHandlers({
    onAdd: (p) => onPod(p, p.metadata.deletionTimestamp ? 'update' : 'add'),
    onUpdate: (o, p) => onPod(p, !o.metadata.deletionTimestamp && p.metadata.deletionTimestamp ? 'deleting' : 'update'),
    onDelete: (p) => { if (!p.metadata.deletionTimestamp) onPod(p, 'deleting'); onPod(p, 'gone'); },
  });

  async function removeFinalizer(p: KObject): Promise<boolean> {
    const i = p.metadata.finalizers?.indexOf(JOB_TRACKING_FINALIZER) ?? -1;
    if (i < 0) return true;
    try {
      // The test makes the removal exact even if other finalizers moved meanwhile (the patch then fails and is retried).
      await client.patch(Resources.pods, p.metadata.namespace, String(p.metadata.name), 'json', [
        { op: 'test', path: `/metadata/finalizers/${i}`, value: JOB_TRACKING_FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${i}` },
      ]);
      return true;
    } catch (e) {
      if (isNotFound(e)) return true;
      throw e;
    }
  }

  async function syncOrphan(podKey: string): Promise<void> {
    const pod = podInf.get(podKey);
    if (!pod || !hasFinalizer(pod) || ownerJob(pod)) return;
    const ref = controllerOf(pod);
    // The cache may lag behind a Job just created: only the API can say it is gone.
    const job = ref ? await client.get(Resources.jobs, pod.metadata.namespace, ref.name) : undefined;
    if (job && job.metadata.uid === ref?.uid && !isJobFinished(job as Obj)) return;
    await removeFinalizer(pod);
  }

  async function sync(key: string): Promise<{ requeueAfterMs?: number } | void> {
    if (key.startsWith(ORPHAN_PREFIX)) return syncOrphan(key.slice(ORPHAN_PREFIX.length));
    const job = jobInf.get(key) as Obj | undefined;
    if (!job) {
      expectations.forget(key);
      removing.delete(key);
      backoffs.delete(key);
      return;
    }
    const pods = podInf.byIndex(POD_INDEX, String(job.metadata.uid));
    if (isJobFinished(job)) {
      backoffs.delete(key);
      for (const p of pods) if (hasFinalizer(p)) await removeFinalizer(p);
      return ttlAfterFinished(job);
    }
    return syncActive(key, job, pods);
  }

  async function ttlAfterFinished(job: Obj): Promise<{ requeueAfterMs?: number } | void> {
    const ttl = job.spec?.ttlSecondsAfterFinished;
    if (ttl === undefined || ttl === null || job.metadata.deletionTimestamp) return;
    const done = (job.status?.conditions ?? []).find((c: Obj) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
    const finishedAt = Date.parse(job.status?.completionTime ?? done?.lastTransitionTime ?? '');
    if (!Number.isFinite(finishedAt)) return;
    const left = finishedAt + ttl * 1000 - now();
    if (left > 0) return { requeueAfterMs: left };
    try {
      // Foreground, as the ttl-after-finished controller does: the Job goes after its pods.
      await client.delete(Resources.jobs, job.metadata.namespace, job.metadata.name, {
        propagationPolicy: 'Foreground', preconditions: { uid: job.metadata.uid, resourceVersion: job.metadata.resourceVersion },
      });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  async function syncActive(key: string, job: Obj, pods: KObject[]): Promise<{ requeueAfterMs?: number } | void> {
    const t = now();
    const ts = rfc3339(t);
    const spec = job.spec ?? {};
    const indexed = spec.completionMode === 'Indexed';
    const completions: number | undefined = spec.completions ?? undefined;
    const suspended = spec.suspend === true;
    const satisfied = expectations.satisfied(key);
    const rm = removing.get(key) ?? new Set<string>();
    const tracked = (p: KObject) => hasFinalizer(p) && !rm.has(String(p.metadata.uid));
    const isFailed = (p: KObject) => (p as Obj).status?.phase === 'Failed' || (p.metadata.deletionTimestamp !== undefined && (p as Obj).status?.phase !== 'Succeeded');
    let requeueAfterMs: number | undefined;
    const wakeIn = (ms: number) => { requeueAfterMs = requeueAfterMs === undefined ? ms : Math.min(requeueAfterMs, ms); };

    const status: Obj = structuredClone(job.status ?? {});
    const before = JSON.stringify(status);
    status.uncountedTerminatedPods = {
      succeeded: [...(status.uncountedTerminatedPods?.succeeded ?? [])], failed: [...(status.uncountedTerminatedPods?.failed ?? [])],
    };
    const uncounted = { succeeded: new Set<string>(status.uncountedTerminatedPods.succeeded), failed: new Set<string>(status.uncountedTerminatedPods.failed) };
    let activePods = pods.filter((p) => !isPodTerminal(p) && !p.metadata.deletionTimestamp);
    let terminating = pods.filter((p) => p.metadata.deletionTimestamp && !isPodTerminal(p)).length;
    let ready = activePods.filter(isPodReady).length;
    const validIndex = (ix: number) => ix >= 0 && ix < (completions ?? 0);
    const newSucceeded = pods.filter((p) => tracked(p) && (p as Obj).status?.phase === 'Succeeded' && !uncounted.succeeded.has(String(p.metadata.uid))
      && (!indexed || validIndex(completionIndex(p))));
    const newFailed = pods.filter((p) => tracked(p) && isFailed(p) && !uncounted.failed.has(String(p.metadata.uid))
      && (!indexed || validIndex(completionIndex(p))));
    let succeeded = Number(status.succeeded ?? 0) + newSucceeded.length + uncounted.succeeded.size;
    const failed = Number(status.failed ?? 0) + newFailed.length + uncounted.failed.size;
    if (!status.startTime && !suspended) status.startTime = ts;

    const prevIndexes = indexed ? parseIndexes(status.completedIndexes, completions ?? 0) : new Set<number>();
    const succeededIndexes = new Set(prevIndexes);
    if (indexed) {
      for (const p of pods) {
        const ix = completionIndex(p);
        if (hasFinalizer(p) && (p as Obj).status?.phase === 'Succeeded' && validIndex(ix)) succeededIndexes.add(ix);
      }
      succeeded = succeededIndexes.size;
    }

    let finish: Finish | undefined;
    const conds: Obj[] = status.conditions ?? [];
    const met = conds.find((c) => c.type === 'SuccessCriteriaMet' && c.status === 'True');
    const target = conds.find((c) => c.type === 'FailureTarget' && c.status === 'True');
    if (met) finish = { type: 'SuccessCriteriaMet', reason: met.reason, message: met.message };
    else if (target) finish = { type: 'Failed', reason: target.reason, message: target.message };
    else if (failed > Number(spec.backoffLimit ?? 6) || pastBackoffLimitOnFailure(spec, pods)) {
      finish = { type: 'FailureTarget', reason: 'BackoffLimitExceeded', message: 'Job has reached the specified backoff limit' };
    } else if (spec.activeDeadlineSeconds != null && status.startTime && !suspended) {
      const left = Date.parse(status.startTime) + spec.activeDeadlineSeconds * 1000 - t;
      if (left <= 0) finish = { type: 'FailureTarget', reason: 'DeadlineExceeded', message: 'Job was active longer than specified deadline' };
      else wakeIn(left);
    }

    // Failures since the last success set how long replacements wait.
    const record = { ...(backoffs.get(key) ?? { failures: 0, lastMs: 0 }) };
    if (newSucceeded.length) record.failures = 0;
    if (newFailed.length) { record.failures += newFailed.length; record.lastMs = t; }

    let suspendChanged = false;
    if (finish) {
      // The Job's fate is sealed: whatever still runs goes.
      const deleted = await deletePods(job, key, activePods, false);
      if (deleted.count !== activePods.length || !satisfied) finish = undefined;
      terminating += deleted.count;
      ready -= deleted.ready;
      activePods = activePods.filter((p) => !deleted.names.has(String(p.metadata.name)));
    } else {
      let managed = false;
      if (satisfied && !job.metadata.deletionTimestamp) {
        managed = true;
        const r = await manageJob(job, key, activePods, succeeded, succeededIndexes, record, t);
        activePods = r.active;
        terminating += r.deleted;
        ready -= r.deletedReady;
        if (r.waitMs !== undefined) wakeIn(r.waitMs);
        if (r.error) throw r.error;
      }
      const done = completions == null ? succeeded > 0 && activePods.length === 0 : succeeded >= completions && activePods.length === 0;
      if (done) {
        finish = { type: 'SuccessCriteriaMet', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' };
      } else if (managed) {
        const c = suspended
          ? { type: 'Suspended', status: 'True', reason: 'JobSuspended', message: 'Job suspended' }
          : { type: 'Suspended', status: 'False', reason: 'JobResumed', message: 'Job resumed' };
        const had = conds.find((x) => x.type === 'Suspended');
        if (suspended ? had?.status !== 'True' : had?.status === 'True') {
          if (had) Object.assign(had, { status: c.status, reason: c.reason, message: c.message, lastProbeTime: ts, lastTransitionTime: ts });
          else conds.push({ ...c, lastProbeTime: ts, lastTransitionTime: ts });
          status.conditions = conds;
          suspendChanged = true;
          events.record(job as KObject, 'Normal', suspended ? 'Suspended' : 'Resumed', c.message);
          // activeDeadlineSeconds counts continuous activity: a resumed Job starts its clock again.
          if (!suspended) status.startTime = ts;
        }
      }
    }
    status.active = activePods.length;
    status.ready = ready;
    status.terminating = terminating;

    // ---- counting finished pods through the finalizer (trackJobStatusAndRemoveFinalizers) ----
    const withFinalizer = new Set(pods.filter(tracked).map((p) => String(p.metadata.uid)));
    cleanUncounted(status, withFinalizer);
    const toRelease: KObject[] = [];
    const newIndexes: number[] = [];
    const ordered = indexed ? [...pods].sort((a, b) => completionIndex(a) - completionIndex(b)) : pods;
    let reachedMax = false;
    for (const p of ordered) {
      if (!tracked(p)) continue;
      const uid = String(p.metadata.uid);
      const failedPod = isFailed(p);
      const canRelease = job.metadata.deletionTimestamp || finish || (p as Obj).status?.phase === 'Succeeded' || failedPod;
      if (!canRelease) continue;
      toRelease.push(p);
      if ((p as Obj).status?.phase === 'Succeeded' && !uncounted.failed.has(uid)) {
        if (indexed) {
          const ix = completionIndex(p);
          if (validIndex(ix) && !prevIndexes.has(ix)) newIndexes.push(ix);
        } else if (!uncounted.succeeded.has(uid)) {
          status.uncountedTerminatedPods.succeeded.push(uid);
        }
      } else if (failedPod || (finish && finish.type !== 'SuccessCriteriaMet')) {
        // Once the Job has failed, every pod not yet finished counts as failed.
        if (!uncounted.failed.has(uid) && (!indexed || validIndex(completionIndex(p)))) status.uncountedTerminatedPods.failed.push(uid);
      }
      if (newIndexes.length + status.uncountedTerminatedPods.succeeded.length + status.uncountedTerminatedPods.failed.length >= MAX_UNCOUNTED) {
        reachedMax = true;
        break;
      }
    }
    if (indexed) {
      const all = new Set([...prevIndexes, ...newIndexes]);
      status.completedIndexes = formatIndexes(all);
      status.succeeded = all.size;
    }
    if (finish?.type === 'FailureTarget') {
      conds.push(newCondition(finish, ts));
      status.conditions = conds;
      finish = { ...finish, type: 'Failed' };
    }
    if (finish?.type === 'SuccessCriteriaMet') {
      if (!met) { conds.push(newCondition(finish, ts)); status.conditions = conds; }
      finish = { ...finish, type: 'Complete' };
    }

    let current: Obj = job;
    const write = async () => {
      const next = structuredClone(current);
      next.status = status;
      current = await client.updateStatus(Resources.jobs, job.metadata.namespace, next as KObject) as Obj;
    };
    // 1. Record the uncounted uids (and interim conditions) before any finalizer goes.
    if (JSON.stringify(status) !== before || suspendChanged) await write();
    backoffs.set(key, record);
    // 2. Release the pods.
    let releaseError: unknown;
    if (toRelease.length) {
      removing.set(key, new Set([...rm, ...toRelease.map((p) => String(p.metadata.uid))]));
      const results = await Promise.allSettled(toRelease.map(removeFinalizer));
      results.forEach((r, i) => {
        const uid = String(toRelease[i]!.metadata.uid);
        if (r.status === 'fulfilled') withFinalizer.delete(uid);
        else { removing.get(key)?.delete(uid); releaseError ??= r.reason; }
      });
    }
    // 3. Count the released ones, and finish the Job once nothing is uncounted or terminating.
    let dirty = cleanUncounted(status, withFinalizer);
    let finished = false;
    if (finish && !reachedMax && !releaseError
      && !status.uncountedTerminatedPods.succeeded.length && !status.uncountedTerminatedPods.failed.length && terminating === 0) {
      conds.push(newCondition(finish, ts));
      status.conditions = conds;
      if (finish.type === 'Complete') status.completionTime = ts;
      finished = dirty = true;
    }
    if (dirty) await write();
    if (releaseError) throw releaseError;
    if (finished) {
      if (finish!.type === 'Complete') {
        if (completions != null && status.succeeded > completions) {
          events.record(job as KObject, 'Warning', 'TooManySucceededPods', 'Too many succeeded pods running after completion count reached');
        }
        events.record(job as KObject, 'Normal', 'Completed', 'Job completed');
      } else {
        events.record(job as KObject, 'Warning', finish!.reason, finish!.message);
      }
      return ttlAfterFinished(current);
    }
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  /** Moves released uids from the uncounted lists into the counters; true when anything moved. */
  function cleanUncounted(status: Obj, withFinalizer: Set<string>): boolean {
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

  /** Deletes pods; with `release`, their finalizer goes first so they are not counted as failures. */
  async function deletePods(job: Obj, key: string, pods: KObject[], release: boolean): Promise<{ count: number; ready: number; names: Set<string>; error?: unknown }> {
    const names = new Set<string>();
    let readyCount = 0;
    let error: unknown;
    if (release) expectations.expect(key, 0, pods.map(keyOf));
    await Promise.all(pods.map(async (p) => {
      try {
        if (release) await removeFinalizer(p);
        await client.delete(Resources.pods, p.metadata.namespace, String(p.metadata.name));
        events.record(job as KObject, 'Normal', 'SuccessfulDelete', `Deleted pod: ${p.metadata.name}`);
      } catch (e) {
        if (release) expectations.deletionObserved(key, keyOf(p));
        if (!isNotFound(e)) { error ??= e; return; }
      }
      names.add(String(p.metadata.name));
      if (isPodReady(p)) readyCount++;
    }));
    return { count: names.size, ready: readyCount, names, error };
  }

  /** Brings the number of running pods to what parallelism and the remaining completions ask for. */
  async function manageJob(job: Obj, key: string, active: KObject[], succeeded: number, succeededIndexes: Set<number>,
    record: { failures: number; lastMs: number }, t: number): Promise<{ active: KObject[]; deleted: number; deletedReady: number; waitMs?: number; error?: unknown }> {
    const spec = job.spec ?? {};
    const indexed = spec.completionMode === 'Indexed';
    const parallelism = Number(spec.parallelism ?? 1);
    const completions: number | undefined = spec.completions ?? undefined;
    if (spec.suspend === true) {
      const d = await deletePods(job, key, active, true);
      return { active: active.filter((p) => !d.names.has(String(p.metadata.name))), deleted: d.count, deletedReady: d.ready, error: d.error };
    }
    let want: number;
    if (completions == null) want = succeeded > 0 ? active.length : parallelism;
    else want = Math.max(0, Math.min(completions - succeeded, parallelism));

    // Indexed: pods for an index that is done, out of range or held twice go first.
    const excess: KObject[] = [];
    let keep = active;
    if (indexed) {
      const seen = new Set<number>();
      keep = [];
      for (const p of [...active].sort(byCreation)) {
        const ix = completionIndex(p);
        if (ix < 0 || ix >= (completions ?? 0) || succeededIndexes.has(ix) || seen.has(ix)) excess.push(p);
        else { seen.add(ix); keep.push(p); }
      }
    }
    if (keep.length > want) {
      // Not-ready pods first, then the newest (what finished least work).
      const ranked = [...keep].sort((a, b) => Number(isPodReady(a)) - Number(isPodReady(b)) || -byCreation(a, b));
      excess.push(...ranked.slice(0, keep.length - want));
    }
    if (excess.length) {
      const d = await deletePods(job, key, excess.slice(0, MAX_CREATE_DELETE), true);
      return { active: active.filter((p) => !d.names.has(String(p.metadata.name))), deleted: d.count, deletedReady: d.ready, error: d.error };
    }
    if (active.length >= want) return { active, deleted: 0, deletedReady: 0 };

    if (record.failures > 0) {
      const delay = Math.min(backoffBase * 2 ** (record.failures - 1), backoffMax);
      const left = record.lastMs + delay - t;
      if (left > 0) return { active, deleted: 0, deletedReady: 0, waitMs: left };
    }
    let indexes: (number | undefined)[];
    const diff = Math.min(want - active.length, MAX_CREATE_DELETE);
    if (indexed) {
      const taken = new Set(active.map(completionIndex));
      indexes = [];
      for (let ix = 0; ix < (completions ?? 0) && indexes.length < diff; ix++) if (!taken.has(ix) && !succeededIndexes.has(ix)) indexes.push(ix);
    } else {
      indexes = Array.from({ length: diff }, () => undefined);
    }
    expectations.expect(key, indexes.length);
    const made: KObject[] = [];
    const r = await slowStartBatch(indexes, async (ix) => {
      try {
        made.push(await client.create(Resources.pods, job.metadata.namespace, jobPod(job, ix) as KObject));
        events.record(job as KObject, 'Normal', 'SuccessfulCreate', `Created pod: ${made[made.length - 1]!.metadata.name}`);
      } catch (e) {
        events.record(job as KObject, 'Warning', 'FailedCreate', `Error creating: ${(e as Error).message}`);
        throw e;
      }
    });
    // Creations that failed, or were never attempted after a failed batch, will not be seen either.
    for (let i = r.successes; i < indexes.length; i++) expectations.creationObserved(key);
    return { active: [...active, ...made], deleted: 0, deletedReady: 0, error: r.error };
  }

  // Acting on a half-filled pod cache would create pods that exist already.
  return runController({ name: 'job-controller', workers: opts.workers ?? 2, queue, informers: [jobInf, podInf], reconcile: sync });
}

/** A pod for the Job (and for Indexed Jobs, for completion index `ix`). */
export function jobPod(job: Obj, ix: number | undefined): Obj {
  const name = String(job.metadata.name);
  const template = job.spec?.template ?? {};
  if (ix === undefined) {
    return podFromTemplate(template, { namespace: job.metadata.namespace, owner: job as KObject, finalizers: [JOB_TRACKING_FINALIZER] });
  }
  const index = String(ix);
  // Generated names stay within 63 characters: 58 of prefix plus 5 random.
  const prefix = `${name.slice(0, Math.max(0, 58 - index.length - 2))}-${index}-`;
  const pod = podFromTemplate(template, {
    namespace: job.metadata.namespace, owner: job as KObject, generateName: prefix, finalizers: [JOB_TRACKING_FINALIZER],
    annotations: { [COMPLETION_INDEX_KEY]: index }, labels: { [COMPLETION_INDEX_KEY]: index },
  });
  pod.spec.hostname ??= `${name}-${index}`;
  const env = { name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: { fieldPath: `metadata.annotations['${COMPLETION_INDEX_KEY}']` } } };
  for (const c of [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])]) {
    if (!(c.env ?? []).some((e: Obj) => e.name === env.name)) c.env = [...(c.env ?? []), structuredClone(env)];
  }
  return pod;
}

/** restartPolicy OnFailure: container restarts of running pods count against backoffLimit. */
function pastBackoffLimitOnFailure(spec: Obj, pods: KObject[]): boolean {
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
