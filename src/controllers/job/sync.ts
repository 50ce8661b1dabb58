// One Job's reconcile, against listers and a client (no informer, queue or timer of its own), so it
// can be driven in a unit test with objects in memory. The wiring is controller.ts.
import type { KObject } from '../../api/object.js';
import { Resources, isNotFound, type ApiClient } from '../../client/types.js';
import type { ReconcileResult } from '../../client/controller.js';
import { keyOf, type Lister } from '../../client/informer.js';
import { Expectations } from '../expectations.js';
import { slowStartBatch } from '../slow-start.js';
import { completionIndex } from './indexes.js';
import { JOB_TRACKING_FINALIZER, hasTrackingFinalizer, jobPod } from './pods.js';
import {
  countReleased, isJobFinished, newCondition, recordFinishedPods, sealedFate, setSuspended, tallyPods, type Finish,
} from './status.js';
import { type EventRecorder } from '../../client/events.js';
import { byCreation, isPodReady } from '../../api/pod.js';
import { controllerOf } from '../../api/object.js';
import { rfc3339 } from '../../util/time.js';


type Obj = Record<string, any>;

export const JOB_KIND = 'Job';
/** The pod lister's index of pods by the uid of the Job that controls them. */
export const JOB_PODS_INDEX = 'job-controller:owner';
/** Queue keys of tracked pods whose Job may be gone: `orphan-pod:<ns>/<name>`. */
export const ORPHAN_PREFIX = 'orphan-pod:';
/** Bounds one sync's work so a huge Job can't starve the others (MaxPodCreateDeletePerSync). */
const MAX_CREATE_DELETE = 500;

/** The Job lister and the pod lister (with the JOB_PODS_INDEX index). */
export interface JobListers {
  jobs: Lister;
  pods: Lister;
}

/** Failures since the last success and when the last one was seen (the pod backoff store). */
interface Backoff { failures: number; lastMs: number }

/** What the event handlers and the reconcile share about each Job, in memory only. */
export class JobMemory {
  readonly expectations = new Expectations();
  /** Pod uids whose finalizer removal was sent but not yet seen, per Job (uidTrackingExpectations). */
  readonly removing = new Map<string, Set<string>>();
  readonly backoffs = new Map<string, Backoff>();

  forget(key: string): void {
    this.expectations.forget(key);
    this.removing.delete(key);
    this.backoffs.delete(key);
  }
}

export interface JobSyncDeps {
  client: ApiClient;
  events: EventRecorder;
  listers: JobListers;
  memory: JobMemory;
  now: () => number;
  /** First delay before a failed pod is replaced; doubles per failure since the last success. */
  podFailureBackoffMs: number;
  maxPodFailureBackoffMs: number;
}

/** The Job controlling `pod`, if the lister has it (same uid as the reference). */
export function ownerJob(jobs: Lister, pod: KObject): KObject | undefined {
  const ref = controllerOf(pod);
  if (!ref || ref.kind !== JOB_KIND) return undefined;
  const job = jobs.getByName(pod.metadata.namespace, ref.name);
  return job && job.metadata.uid === ref.uid ? job : undefined;
}

export class JobSync {
  constructor(private readonly d: JobSyncDeps) {}

  /** Reconciles a Job key, or an ORPHAN_PREFIX pod key. */
  async reconcile(key: string): Promise<ReconcileResult | void> {
    if (key.startsWith(ORPHAN_PREFIX)) return this.syncOrphan(key.slice(ORPHAN_PREFIX.length));
    const job = this.d.listers.jobs.get(key) as Obj | undefined;
    if (!job) {
      this.d.memory.forget(key);
      return undefined;
    }
    const pods = this.d.listers.pods.byIndex(JOB_PODS_INDEX, String(job.metadata.uid));
    if (isJobFinished(job)) {
      this.d.memory.backoffs.delete(key);
      for (const p of pods) if (hasTrackingFinalizer(p)) await this.removeFinalizer(p);
      return this.ttlAfterFinished(job);
    }
    return this.syncActive(key, job, pods);
  }

  private async removeFinalizer(p: KObject): Promise<boolean> {
    const i = p.metadata.finalizers?.indexOf(JOB_TRACKING_FINALIZER) ?? -1;
    if (i < 0) return true;
    try {
      // The test makes the removal exact even if other finalizers moved meanwhile (the patch then fails and is retried).
      await this.d.client.patch(Resources.pods, p.metadata.namespace, String(p.metadata.name), 'json', [
        { op: 'test', path: `/metadata/finalizers/${i}`, value: JOB_TRACKING_FINALIZER },
        { op: 'remove', path: `/metadata/finalizers/${i}` },
      ]);
      return true;
    } catch (e) {
      if (isNotFound(e)) return true;
      throw e;
    }
  }

  /** A tracked pod whose Job is gone would keep its finalizer forever. */
  private async syncOrphan(podKey: string): Promise<void> {
    const pod = this.d.listers.pods.get(podKey);
    if (!pod || !hasTrackingFinalizer(pod) || ownerJob(this.d.listers.jobs, pod)) return;
    const ref = controllerOf(pod);
    // The cache may lag behind a Job just created: only the API can say it is gone.
    const job = ref ? await this.d.client.get(Resources.jobs, pod.metadata.namespace, ref.name) : undefined;
    if (job && job.metadata.uid === ref?.uid && !isJobFinished(job as Obj)) return;
    await this.removeFinalizer(pod);
  }

  private async ttlAfterFinished(job: Obj): Promise<ReconcileResult | void> {
    const ttl = job.spec?.ttlSecondsAfterFinished;
    if (ttl === undefined || ttl === null || job.metadata.deletionTimestamp) return;
    const done = (job.status?.conditions ?? []).find((c: Obj) => (c.type === 'Complete' || c.type === 'Failed') && c.status === 'True');
    const finishedAt = Date.parse(job.status?.completionTime ?? done?.lastTransitionTime ?? '');
    if (!Number.isFinite(finishedAt)) return;
    const left = finishedAt + ttl * 1000 - this.d.now();
    if (left > 0) return { requeueAfterMs: left };
    try {
      // Foreground, as the ttl-after-finished controller does: the Job goes after its pods.
      await this.d.client.delete(Resources.jobs, job.metadata.namespace, job.metadata.name, {
        propagationPolicy: 'Foreground', preconditions: { uid: job.metadata.uid, resourceVersion: job.metadata.resourceVersion },
      });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  private async syncActive(key: string, job: Obj, pods: KObject[]): Promise<ReconcileResult | void> {
    const { client, events, memory } = this.d;
    const t = this.d.now();
    const ts = rfc3339(t);
    const spec = job.spec ?? {};
    const completions: number | undefined = spec.completions ?? undefined;
    const suspended = spec.suspend === true;
    const satisfied = memory.expectations.satisfied(key);
    const rm = memory.removing.get(key) ?? new Set<string>();
    const tracked = (p: KObject) => hasTrackingFinalizer(p) && !rm.has(String(p.metadata.uid));
    let requeueAfterMs: number | undefined;
    const wakeIn = (ms: number) => { requeueAfterMs = requeueAfterMs === undefined ? ms : Math.min(requeueAfterMs, ms); };

    const status: Obj = structuredClone(job.status ?? {});
    const before = JSON.stringify(status);
    status.uncountedTerminatedPods = {
      succeeded: [...(status.uncountedTerminatedPods?.succeeded ?? [])], failed: [...(status.uncountedTerminatedPods?.failed ?? [])],
    };
    const uncounted = { succeeded: new Set<string>(status.uncountedTerminatedPods.succeeded), failed: new Set<string>(status.uncountedTerminatedPods.failed) };
    const tally = tallyPods(job, status, pods, uncounted, tracked);
    let { active, terminating, ready } = tally;
    if (!status.startTime && !suspended) status.startTime = ts;

    const fate = sealedFate(job, status, tally.failed, pods, t);
    let finish: Finish | undefined = fate.finish;
    if (fate.recheckInMs !== undefined) wakeIn(fate.recheckInMs);

    // Failures since the last success set how long replacements wait.
    const record = { ...(memory.backoffs.get(key) ?? { failures: 0, lastMs: 0 }) };
    if (tally.newSucceeded.length) record.failures = 0;
    if (tally.newFailed.length) { record.failures += tally.newFailed.length; record.lastMs = t; }

    let suspendChanged = false;
    if (finish) {
      // The Job's fate is sealed: whatever still runs goes.
      const deleted = await this.deletePods(job, key, active, false);
      if (deleted.count !== active.length || !satisfied) finish = undefined;
      terminating += deleted.count;
      ready -= deleted.ready;
      active = active.filter((p) => !deleted.names.has(String(p.metadata.name)));
    } else {
      let managed = false;
      if (satisfied && !job.metadata.deletionTimestamp) {
        managed = true;
        const r = await this.manageJob(job, key, active, tally.succeeded, tally.succeededIndexes, record, t);
        active = r.active;
        terminating += r.deleted;
        ready -= r.deletedReady;
        if (r.waitMs !== undefined) wakeIn(r.waitMs);
        if (r.error) throw r.error;
      }
      const done = completions == null ? tally.succeeded > 0 && active.length === 0 : tally.succeeded >= completions && active.length === 0;
      if (done) {
        finish = { type: 'SuccessCriteriaMet', reason: 'CompletionsReached', message: 'Reached expected number of succeeded pods' };
      } else if (managed && setSuspended(status, suspended, ts)) {
        suspendChanged = true;
        events.record(job as KObject, 'Normal', suspended ? 'Suspended' : 'Resumed', suspended ? 'Job suspended' : 'Job resumed');
      }
    }
    status.active = active.length;
    status.ready = ready;
    status.terminating = terminating;

    // ---- counting finished pods through the finalizer (trackJobStatusAndRemoveFinalizers) ----
    const withFinalizer = new Set(pods.filter(tracked).map((p) => String(p.metadata.uid)));
    countReleased(status, withFinalizer);
    const { toRelease, reachedMax } = recordFinishedPods(job, status, pods, { tracked, uncounted, prevIndexes: tally.prevIndexes, finish });
    const addCondition = (f: Finish) => { (status.conditions ??= []).push(newCondition(f, ts)); };
    if (finish?.type === 'FailureTarget') {
      addCondition(finish);
      finish = { ...finish, type: 'Failed' };
    }
    if (finish?.type === 'SuccessCriteriaMet') {
      if (!fate.met) addCondition(finish);
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
    memory.backoffs.set(key, record);
    // 2. Release the pods.
    let releaseError: unknown;
    if (toRelease.length) {
      memory.removing.set(key, new Set([...rm, ...toRelease.map((p) => String(p.metadata.uid))]));
      const results = await Promise.allSettled(toRelease.map((p) => this.removeFinalizer(p)));
      results.forEach((r, i) => {
        const uid = String(toRelease[i]!.metadata.uid);
        if (r.status === 'fulfilled') withFinalizer.delete(uid);
        else { memory.removing.get(key)?.delete(uid); releaseError ??= r.reason; }
      });
    }
    // 3. Count the released ones, and finish the Job once nothing is uncounted or terminating.
    let dirty = countReleased(status, withFinalizer);
    let finished = false;
    if (finish && !reachedMax && !releaseError
      && !status.uncountedTerminatedPods.succeeded.length && !status.uncountedTerminatedPods.failed.length && terminating === 0) {
      addCondition(finish);
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
      return this.ttlAfterFinished(current);
    }
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  /** Deletes pods; with `release`, their finalizer goes first so they are not counted as failures. */
  private async deletePods(job: Obj, key: string, pods: KObject[], release: boolean): Promise<{ count: number; ready: number; names: Set<string>; error?: unknown }> {
    const { client, events, memory } = this.d;
    const names = new Set<string>();
    let readyCount = 0;
    let error: unknown;
    if (release) memory.expectations.expect(key, 0, pods.map(keyOf));
    await Promise.all(pods.map(async (p) => {
      try {
        if (release) await this.removeFinalizer(p);
        await client.delete(Resources.pods, p.metadata.namespace, String(p.metadata.name));
        events.record(job as KObject, 'Normal', 'SuccessfulDelete', `Deleted pod: ${p.metadata.name}`);
      } catch (e) {
        if (release) memory.expectations.deletionObserved(key, keyOf(p));
        if (!isNotFound(e)) { error ??= e; return; }
      }
      names.add(String(p.metadata.name));
      if (isPodReady(p)) readyCount++;
    }));
    return { count: names.size, ready: readyCount, names, error };
  }

  /** Brings the number of running pods to what parallelism and the remaining completions ask for. */
  private async manageJob(job: Obj, key: string, active: KObject[], succeeded: number, succeededIndexes: Set<number>,
    record: Backoff, t: number): Promise<{ active: KObject[]; deleted: number; deletedReady: number; waitMs?: number; error?: unknown }> {
    const { client, events, memory } = this.d;
    const spec = job.spec ?? {};
    const indexed = spec.completionMode === 'Indexed';
    const parallelism = Number(spec.parallelism ?? 1);
    const completions: number | undefined = spec.completions ?? undefined;
    if (spec.suspend === true) {
      const d = await this.deletePods(job, key, active, true);
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
      const d = await this.deletePods(job, key, excess.slice(0, MAX_CREATE_DELETE), true);
      return { active: active.filter((p) => !d.names.has(String(p.metadata.name))), deleted: d.count, deletedReady: d.ready, error: d.error };
    }
    if (active.length >= want) return { active, deleted: 0, deletedReady: 0 };

    if (record.failures > 0) {
      const delay = Math.min(this.d.podFailureBackoffMs * 2 ** (record.failures - 1), this.d.maxPodFailureBackoffMs);
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
    memory.expectations.expect(key, indexes.length);
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
    for (let i = r.successes; i < indexes.length; i++) memory.expectations.creationObserved(key);
    return { active: [...active, ...made], deleted: 0, deletedReady: 0, error: r.error };
  }
}
