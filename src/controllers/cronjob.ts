// The CronJob controller (pkg/controller/cronjob, the v2 loop): at each scheduled time a Job named
// `<cronjob>-<scheduled time in minutes since the epoch>` is made from the job template. The name is
// a function of the schedule, so a loop restarted after creating a Job but before recording it in
// status finds it (AlreadyExists) instead of making a second. Only the most recent missed time is
// run; `startingDeadlineSeconds` bounds how late that may be; concurrencyPolicy Forbid skips a run
// while one is active and Replace deletes the active ones first. Finished Jobs beyond the history
// limits are deleted, oldest first. Times follow `spec.timeZone` (IANA), else the server's zone.
import { CronExpressionParser } from 'cron-parser';
import { controllerOf, controllerRef, type KObject } from '../api/object.js';
import { Resources, isAlreadyExists, isNotFound } from '../client/types.js';
import { enqueueAll, runController, type RunningController } from '../client/controller.js';
import { keyOf } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';
import type { ControllerContext } from './context.js';
import { isJobFinished } from './job/status.js';
import { controllerUidIndex } from './workload-pods.js';
import { isKnownTimeZone, rfc3339 } from '../util/time.js';


type Obj = Record<string, any>;

const KIND = 'CronJob';
const JOB_INDEX = 'cronjob-controller:owner';
export const SCHEDULED_TIMESTAMP_ANNOTATION = 'batch.kubernetes.io/cronjob-scheduled-timestamp';
/** More missed start times than this are reported (the controller was down, or the clock jumped). */
const MAX_MISSED = 100;

export interface CronJobControllerOptions {
  workers?: number;
  /** The clock schedules are judged by (tests inject one). */
  now?: () => number;
}

/** `<cronjob>-<minutes since the epoch>`: one name per scheduled time. */
export function jobNameFor(cronJob: string, scheduledMs: number): string {
  return `${cronJob}-${Math.floor(scheduledMs / 60_000)}`;
}

/**
 * The latest scheduled time after `earliestMs` and not after `nowMs` (undefined if none), how many
 * were missed (counted up to MAX_MISSED + 1), and the next one after `nowMs`.
 */
export function scheduleTimes(schedule: string, tz: string | undefined, earliestMs: number, nowMs: number): { recent?: number; missed: number; next: number } {
  const opts = tz ? { tz } : {};
  const next = CronExpressionParser.parse(schedule, { ...opts, currentDate: new Date(nowMs) }).next().getTime();
  // prev() is strictly before its start: from just after now it yields the latest time <= now.
  const recent = CronExpressionParser.parse(schedule, { ...opts, currentDate: new Date(nowMs + 1) }).prev().getTime();
  if (recent <= earliestMs) return { missed: 0, next };
  const it = CronExpressionParser.parse(schedule, { ...opts, currentDate: new Date(earliestMs) });
  let missed = 0;
  while (missed <= MAX_MISSED) {
    const t = it.next().getTime();
    if (t > nowMs) break;
    missed++;
  }
  return { recent, missed, next };
}

/** Go's time.RFC1123Z, which the MissSchedule event uses. */
function rfc1123z(ms: number): string {
  const d = new Date(ms);
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

export function startCronJobController(ctx: ControllerContext, opts: CronJobControllerOptions = {}): RunningController {
  const now = opts.now ?? Date.now;
  const { client, events } = ctx;
  const cjInf = ctx.informers.informerFor(Resources.cronJobs);
  const jobInf = ctx.informers.informerFor(Resources.jobs, { indexers: { [JOB_INDEX]: controllerUidIndex(KIND) } });
  const queue = new WorkQueue<string>();

  const enqueueOwner = (j: KObject) => {
    const ref = controllerOf(j);
    if (!ref || ref.kind !== KIND) return;
    const cj = cjInf.getByName(j.metadata.namespace, ref.name);
    if (cj && cj.metadata.uid === ref.uid) queue.add(keyOf(cj));
  };
  cjInf.addHandlers({ onAdd: (o) => queue.add(keyOf(o)), onUpdate: (_o, n) => queue.add(keyOf(n)) });
  jobInf.addHandlers({ onAdd: enqueueOwner, onUpdate: (_o, n) => enqueueOwner(n), onDelete: enqueueOwner });
  // Schedules come due without any watch event: look at every CronJob again now and then, besides
  // the precise wake-up each sync asks for.
  const resync = setInterval(() => enqueueAll(queue, cjInf), ctx.options.resyncMs);

  async function sync(key: string): Promise<{ requeueAfterMs?: number } | void> {
    const cj = cjInf.get(key) as Obj | undefined;
    if (!cj) return;
    const ns = String(cj.metadata.namespace);
    const spec = cj.spec ?? {};
    const t = now();
    const status: Obj = structuredClone(cj.status ?? {});
    const before = JSON.stringify(status);
    const jobs = jobInf.byIndex(JOB_INDEX, String(cj.metadata.uid)) as Obj[];
    const active: Obj[] = [...(status.active ?? [])];
    const isActive = (uid: string) => active.some((r) => r.uid === uid);
    const ref = (j: Obj) => ({ kind: 'Job', namespace: ns, name: j.metadata.name, uid: j.metadata.uid, apiVersion: 'batch/v1', resourceVersion: j.metadata.resourceVersion });
    const noteSuccess = (j: Obj) => {
      const done = j.status?.completionTime;
      if (done && (j.status?.conditions ?? []).some((c: Obj) => c.type === 'Complete' && c.status === 'True')
        && (!status.lastSuccessfulTime || Date.parse(done) > Date.parse(status.lastSuccessfulTime))) status.lastSuccessfulTime = done;
    };

    // Reconcile the active list with the Jobs that exist.
    for (const j of jobs) {
      const finished = isJobFinished(j);
      if (!isActive(j.metadata.uid) && !finished) {
        // Ours but unrecorded: made just before a crash, or the status is behind the cache.
        active.push(ref(j));
      } else if (isActive(j.metadata.uid) && finished) {
        const c = (j.status.conditions as Obj[]).find((x) => (x.type === 'Complete' || x.type === 'Failed') && x.status === 'True')!;
        active.splice(active.findIndex((r) => r.uid === j.metadata.uid), 1);
        events.record(cj as KObject, 'Normal', 'SawCompletedJob', `Saw completed job: ${j.metadata.name}, condition: ${c.type}`);
      }
      if (finished) noteSuccess(j);
    }
    for (const r of [...active]) {
      if (jobs.some((j) => j.metadata.uid === r.uid)) continue;
      // The cache may lag: only the API can say the Job is gone.
      const live = await client.get(Resources.jobs, ns, r.name);
      if (live && live.metadata.uid === r.uid) continue;
      active.splice(active.indexOf(r), 1);
      events.record(cj as KObject, 'Normal', 'MissingJob', `Active job went missing: ${r.name}`);
    }

    let requeueAfterMs: number | undefined;
    const run = async (): Promise<void> => {
      if (cj.metadata.deletionTimestamp || spec.suspend === true) return;
      const tz: string | undefined = spec.timeZone ?? undefined;
      if (tz !== undefined && !isKnownTimeZone(tz)) {
        events.record(cj as KObject, 'Warning', 'UnknownTimeZone', `invalid timeZone: "${tz}": unknown time zone ${tz}`);
        return;
      }
      let times: ReturnType<typeof scheduleTimes>;
      const sds = spec.startingDeadlineSeconds;
      let earliest = Date.parse(status.lastScheduleTime ?? cj.metadata.creationTimestamp);
      if (sds != null) earliest = Math.max(earliest, t - sds * 1000);
      try {
        times = scheduleTimes(String(spec.schedule), tz, earliest, t);
      } catch (e) {
        events.record(cj as KObject, 'Warning', 'UnparseableSchedule', `unparseable schedule: "${spec.schedule}" : ${(e as Error).message}`);
        return;
      }
      // A little after the due time, so a clock a bit behind ours does not wake us early.
      requeueAfterMs = Math.max(0, times.next - t) + 100;
      if (times.recent === undefined) return;
      if (times.missed > MAX_MISSED) {
        events.record(cj as KObject, 'Warning', 'TooManyMissedTimes', 'too many missed start times. Set or decrease .spec.startingDeadlineSeconds or check clock skew');
      }
      const scheduled = times.recent;
      if (sds != null && scheduled + sds * 1000 < t) {
        events.record(cj as KObject, 'Warning', 'MissSchedule', `Missed scheduled time to start a job: ${rfc1123z(scheduled)}`);
        return;
      }
      const name = jobNameFor(String(cj.metadata.name), scheduled);
      if (active.some((r) => r.name === name) || jobs.some((j) => j.metadata.name === name)) {
        // Made by an earlier pass whose status write was lost: that run has happened.
        status.lastScheduleTime = rfc3339(scheduled);
        return;
      }
      if (spec.concurrencyPolicy === 'Forbid' && active.length > 0) {
        events.record(cj as KObject, 'Normal', 'JobAlreadyActive', 'Not starting job because prior execution is running and concurrency policy is Forbid');
        return;
      }
      if (spec.concurrencyPolicy === 'Replace') {
        for (const r of [...active]) {
          try {
            await client.delete(Resources.jobs, ns, r.name, { propagationPolicy: 'Background' });
          } catch (e) {
            if (!isNotFound(e)) throw e;
          }
          events.record(cj as KObject, 'Normal', 'SuccessfulDelete', `Deleted job ${r.name}`);
          active.splice(active.indexOf(r), 1);
        }
      }
      const template = spec.jobTemplate ?? {};
      const body: Obj = {
        apiVersion: 'batch/v1', kind: 'Job',
        metadata: {
          name, namespace: ns,
          labels: { ...(template.metadata?.labels ?? {}) },
          annotations: { ...(template.metadata?.annotations ?? {}), [SCHEDULED_TIMESTAMP_ANNOTATION]: rfc3339(scheduled) },
          ownerReferences: [controllerRef(cj as KObject)],
        },
        spec: structuredClone(template.spec ?? {}),
      };
      try {
        const made = await client.create(Resources.jobs, ns, body as KObject) as Obj;
        events.record(cj as KObject, 'Normal', 'SuccessfulCreate', `Created job ${name}`);
        active.push(ref(made));
      } catch (e) {
        if (!isAlreadyExists(e)) {
          events.record(cj as KObject, 'Warning', 'FailedCreate', `Error creating job: ${(e as Error).message}`);
          throw e;
        }
      }
      status.lastScheduleTime = rfc3339(scheduled);
    };
    await run();
    if (active.length) status.active = active; else delete status.active;

    await removeOldJobs(cj, jobs, active);
    if (JSON.stringify(status) !== before) {
      const next = structuredClone(cj);
      next.status = status;
      await client.updateStatus(Resources.cronJobs, ns, next as KObject);
    }
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  /** Finished Jobs beyond successfulJobsHistoryLimit / failedJobsHistoryLimit go, oldest start first. */
  async function removeOldJobs(cj: Obj, jobs: Obj[], active: Obj[]): Promise<void> {
    const spec = cj.spec ?? {};
    const succeeded: Obj[] = [];
    const failed: Obj[] = [];
    for (const j of jobs) {
      if (active.some((r) => r.uid === j.metadata.uid) || j.metadata.deletionTimestamp) continue;
      const conds: Obj[] = j.status?.conditions ?? [];
      if (conds.some((c) => c.type === 'Complete' && c.status === 'True')) succeeded.push(j);
      else if (conds.some((c) => c.type === 'Failed' && c.status === 'True')) failed.push(j);
    }
    const byStart = (a: Obj, b: Obj) => {
      const sa = a.status?.startTime;
      const sb = b.status?.startTime;
      if (sa !== sb) return sa === undefined ? 1 : sb === undefined ? -1 : sa < sb ? -1 : 1;
      return a.metadata.name < b.metadata.name ? -1 : 1;
    };
    for (const [list, limit] of [[succeeded, spec.successfulJobsHistoryLimit], [failed, spec.failedJobsHistoryLimit]] as const) {
      if (limit == null || list.length <= limit) continue;
      for (const j of [...list].sort(byStart).slice(0, list.length - limit)) {
        try {
          await client.delete(Resources.jobs, j.metadata.namespace, j.metadata.name, { propagationPolicy: 'Background' });
          events.record(cj as KObject, 'Normal', 'SuccessfulDelete', `Deleted job ${j.metadata.name}`);
        } catch (e) {
          if (!isNotFound(e)) throw e;
        }
      }
    }
  }

  const loop = runController({ name: 'cronjob-controller', workers: opts.workers ?? 2, queue, informers: [cjInf, jobInf], reconcile: sync });
  return {
    name: loop.name,
    async stop() {
      clearInterval(resync);
      await loop.stop();
    },
  };
}
