// The CronJob loop against the real in-process API with an injected clock: Jobs named after their
// scheduled minute, concurrency policies, suspend, history limits, status, and a Job made before a
// crash that is found rather than made twice.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { Resources, type ApiClient } from '../../src/client/types.js';
import { startCronJobController, scheduleTimes, jobNameFor } from '../../src/controllers/cronjob.js';
import { startControllerEnv, eventually } from '../helpers/controller-env.js';

type Obj = Record<string, any>;

const waitFor = async <T>(fn: () => Promise<T | false | undefined>, ms: number, what: string): Promise<T> => (await eventually(fn, ms, what)) as T;

function cronJob(name: string, spec: Obj = {}): KObject {
  return {
    apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name, namespace: 'default' },
    spec: {
      schedule: '* * * * *',
      jobTemplate: {
        metadata: { labels: { team: 'a' } },
        spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox:1' }] } } },
      },
      ...spec,
    },
  };
}

/** A loop whose clock the test moves; it looks at every CronJob every 20 ms. */
async function start(t: TestContext) {
  const clock = { ms: Date.now() };
  const env = await startControllerEnv(t, { resyncMs: 20 });
  await env.run((ctx) => startCronJobController(ctx, { now: () => clock.ms }));
  return { c: env.ctx.client, clock };
}

async function jobsOf(c: ApiClient, cj: string): Promise<Obj[]> {
  const all = (await c.list(Resources.jobs, 'default')).items as Obj[];
  return all.filter((j) => j.metadata.ownerReferences?.[0]?.name === cj && !j.metadata.deletionTimestamp)
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
}

/** Marks a Job finished as the Job controller would. */
async function finish(c: ApiClient, job: Obj, ok: boolean, atMs: number): Promise<void> {
  const at = new Date(atMs).toISOString().replace(/\.\d+Z$/, 'Z');
  const next = structuredClone(job);
  next.status = ok
    ? { startTime: at, completionTime: at, succeeded: 1, conditions: [
      { type: 'SuccessCriteriaMet', status: 'True', reason: 'CompletionsReached', message: 'x', lastTransitionTime: at },
      { type: 'Complete', status: 'True', reason: 'CompletionsReached', message: 'x', lastTransitionTime: at }] }
    : { startTime: at, failed: 1, conditions: [
      { type: 'FailureTarget', status: 'True', reason: 'BackoffLimitExceeded', message: 'x', lastTransitionTime: at },
      { type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded', message: 'x', lastTransitionTime: at }] };
  await c.updateStatus(Resources.jobs, 'default', next as KObject);
}

const minuteAfter = (ms: number) => (Math.floor(ms / 60_000) + 1) * 60_000;

test('each scheduled minute makes one Job named after it; status records it; completion clears active', async (t) => {
  const { c, clock } = await start(t);
  await c.create(Resources.cronJobs, 'default', cronJob('tick'));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await jobsOf(c, 'tick')).length, 0, 'nothing before the first scheduled time');

  const due = minuteAfter(clock.ms);
  clock.ms = due + 5_000;
  const [j] = await waitFor(async () => { const js = await jobsOf(c, 'tick'); return js.length === 1 && js; }, 5000, 'the first Job');
  assert.equal(j!.metadata.name, `tick-${due / 60_000}`);
  assert.equal(j!.metadata.name, jobNameFor('tick', due));
  assert.equal(j!.metadata.labels.team, 'a');
  assert.equal(j!.metadata.annotations['batch.kubernetes.io/cronjob-scheduled-timestamp'], new Date(due).toISOString().replace(/\.\d+Z$/, 'Z'));
  assert.equal(j!.metadata.ownerReferences[0].kind, 'CronJob');
  assert.equal(j!.metadata.ownerReferences[0].controller, true);
  const cj = await waitFor(async () => { const x = await c.get(Resources.cronJobs, 'default', 'tick') as Obj; return x.status?.active?.length === 1 && x; }, 5000, 'status.active');
  assert.equal(cj.status.active[0].name, j!.metadata.name);
  assert.equal(Date.parse(cj.status.lastScheduleTime), due);

  // Many syncs within the same minute never make a second Job.
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await jobsOf(c, 'tick')).length, 1);

  await finish(c, j!, true, due + 10_000);
  const done = await waitFor(async () => { const x = await c.get(Resources.cronJobs, 'default', 'tick') as Obj; return !x.status?.active && x.status?.lastSuccessfulTime && x; }, 5000, 'completion seen');
  assert.equal(Date.parse(done.status.lastSuccessfulTime), due + 10_000);
});

test('Forbid skips while a run is active; Replace deletes the active run; Allow runs side by side', async (t) => {
  const { c, clock } = await start(t);
  for (const [name, policy] of [['fb', 'Forbid'], ['rp', 'Replace'], ['al', 'Allow']]) {
    await c.create(Resources.cronJobs, 'default', cronJob(name!, { concurrencyPolicy: policy }));
  }
  const first = minuteAfter(clock.ms);
  clock.ms = first + 1000;
  await waitFor(async () => (await jobsOf(c, 'fb')).length === 1 && (await jobsOf(c, 'rp')).length === 1 && (await jobsOf(c, 'al')).length === 1, 5000, 'first runs');
  await waitFor(async () => ((await c.get(Resources.cronJobs, 'default', 'rp')) as Obj).status?.active?.length === 1, 5000, 'recorded');
  const second = first + 60_000;
  clock.ms = second + 1000;
  await waitFor(async () => (await jobsOf(c, 'al')).length === 2, 5000, 'Allow: two runs');
  const rp = await waitFor(async () => { const js = await jobsOf(c, 'rp'); return js.length === 1 && js[0]!.metadata.name === jobNameFor('rp', second) && js; }, 5000, 'Replace: only the new run');
  assert.equal(rp.length, 1);
  await waitFor(async () => {
    const evs = (await c.list(Resources.events, 'default')).items as Obj[];
    return evs.some((e) => e.involvedObject.name === 'fb' && e.reason === 'JobAlreadyActive');
  }, 5000, 'Forbid event');
  assert.deepEqual((await jobsOf(c, 'fb')).map((j) => j.metadata.name), [jobNameFor('fb', first)]);
});

test('suspend stops new runs; history limits delete the oldest finished Jobs', async (t) => {
  const { c, clock } = await start(t);
  await c.create(Resources.cronJobs, 'default', cronJob('hist', { successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 1 }));
  await c.create(Resources.cronJobs, 'default', cronJob('off', { suspend: true }));
  let at = minuteAfter(clock.ms);
  const outcomes = [true, true, false, false];
  for (const ok of outcomes) {
    clock.ms = at + 1000;
    const j = await waitFor(async () => (await jobsOf(c, 'hist')).find((x) => x.metadata.name === jobNameFor('hist', at)), 5000, `run at ${at}`);
    await finish(c, j, ok, at + 2000);
    at += 60_000;
  }
  const left = await waitFor(async () => { const js = await jobsOf(c, 'hist'); return js.length === 2 && js; }, 5000, 'history trimmed');
  assert.deepEqual(left.map((j) => j.metadata.name).sort(), [jobNameFor('hist', at - 3 * 60_000), jobNameFor('hist', at - 60_000)].sort());
  assert.equal((await jobsOf(c, 'off')).length, 0);
});

test('a Job made before a crash (status not written) is found, not made again', async (t) => {
  const { c, clock } = await start(t);
  const cj = await c.create(Resources.cronJobs, 'default', cronJob('crash', { suspend: true })) as Obj;
  const due = minuteAfter(clock.ms);
  await c.create(Resources.jobs, 'default', {
    apiVersion: 'batch/v1', kind: 'Job',
    metadata: { name: jobNameFor('crash', due), namespace: 'default', ownerReferences: [{ apiVersion: 'batch/v1', kind: 'CronJob', name: 'crash', uid: cj.metadata.uid, controller: true }] },
    spec: cj.spec.jobTemplate.spec,
  });
  clock.ms = due + 1000;
  await c.patch(Resources.cronJobs, 'default', 'crash', 'merge', { spec: { suspend: false } });
  const x = await waitFor(async () => { const o = await c.get(Resources.cronJobs, 'default', 'crash') as Obj; return o.status?.lastScheduleTime && o.status?.active?.length === 1 && o; }, 5000, 'adopted run');
  assert.equal(Date.parse(x.status.lastScheduleTime), due);
  assert.equal((await jobsOf(c, 'crash')).length, 1);
});

test('scheduleTimes: most recent due time, missed count, next time, and time zones', () => {
  const base = Date.parse('2026-03-01T10:00:30Z');
  const r = scheduleTimes('*/5 * * * *', 'UTC', Date.parse('2026-03-01T09:40:00Z'), base);
  assert.equal(r.recent, Date.parse('2026-03-01T10:00:00Z'));
  assert.equal(r.missed, 4);
  assert.equal(r.next, Date.parse('2026-03-01T10:05:00Z'));
  assert.equal(scheduleTimes('@hourly', 'UTC', Date.parse('2026-03-01T10:00:00Z'), base).recent, undefined, 'nothing after earliest');
  // 09:00 in Tokyo is 00:00 UTC.
  const tokyo = scheduleTimes('0 9 * * *', 'Asia/Tokyo', Date.parse('2026-02-28T00:00:00Z'), base);
  assert.equal(tokyo.recent, Date.parse('2026-03-01T00:00:00Z'));
  assert.equal(tokyo.next, Date.parse('2026-03-02T00:00:00Z'));
  assert.ok(scheduleTimes('* * * * *', 'UTC', 0, base).missed > 100, 'a long outage counts past the limit');
});
