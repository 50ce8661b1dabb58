// The Job loop against the real in-process API: completions and parallelism, counting through the
// job-tracking finalizer, backoffLimit, activeDeadlineSeconds, Indexed mode, suspend, TTL, and a
// restart in the middle that neither loses nor double-counts pods.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { Resources, type ApiClient } from '../../src/client/types.js';
import { InformerFactory } from '../../src/client/informer-factory.js';
import type { ControllerContext } from '../../src/controllers/context.js';
import { startJobController, formatIndexes, parseIndexes, JOB_TRACKING_FINALIZER } from '../../src/controllers/job/controller.js';
import { startControllerEnv, eventually, type ControllerEnv } from '../helpers/controller-env.js';

type Obj = Record<string, any>;
type Outcome = 'Succeeded' | 'Failed' | 'Running' | undefined;

const waitFor = async <T>(fn: () => Promise<T | false | undefined>, ms: number, what: string): Promise<T> => (await eventually(fn, ms, what)) as T;
const stamp = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

/**
 * The test's stand-in kubelet: a new pod becomes Running and Ready, then whatever `decide` says
 * (Succeeded, Failed, stays Running, or undefined to leave it Pending). `maxActive` is the most
 * pods it saw running at once.
 */
function standInKubelet(t: TestContext, client: ApiClient, decide: (pod: Obj) => Outcome) {
  const running = new Set<string>();
  const seen = { maxActive: 0 };
  const set = (pod: Obj, phase: string) => {
    const next = structuredClone(pod);
    next.status = { phase, conditions: [{ type: 'Ready', status: phase === 'Running' ? 'True' : 'False', lastTransitionTime: stamp() }] };
    client.updateStatus(Resources.pods, pod.metadata.namespace, next as KObject).catch(() => undefined);
  };
  const h = client.watch(Resources.pods, 'default', '0', (e) => {
    const pod = e.object as Obj;
    const name = pod.metadata.name;
    if (e.type === 'DELETED' || pod.metadata.deletionTimestamp || pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed') {
      running.delete(name);
      return;
    }
    const outcome = decide(pod);
    if (!outcome) return;
    running.add(name);
    seen.maxActive = Math.max(seen.maxActive, running.size);
    if (pod.status?.phase !== 'Running') set(pod, 'Running');
    else if (outcome !== 'Running') setTimeout(() => set(pod, outcome), 5);
  });
  t.after(() => h.stop());
  return seen;
}

function job(name: string, spec: Obj = {}): KObject {
  const { template: t = {}, ...rest } = spec;
  return {
    apiVersion: 'batch/v1', kind: 'Job', metadata: { name, namespace: 'default' },
    spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox:1' }], ...t } }, ...rest },
  };
}

async function getJob(c: ApiClient, name: string): Promise<Obj | undefined> {
  return c.get(Resources.jobs, 'default', name) as Promise<Obj | undefined>;
}

async function podsOf(c: ApiClient, name: string): Promise<Obj[]> {
  return (await c.list(Resources.pods, 'default', { labelSelector: `job-name=${name}` })).items as Obj[];
}

const cond = (j: Obj | undefined, type: string) => j?.status?.conditions?.find((c: Obj) => c.type === type && c.status === 'True');

async function start(t: TestContext): Promise<ControllerEnv> {
  const env = await startControllerEnv(t);
  await env.run((ctx) => startJobController(ctx, { podFailureBackoffMs: 20 }));
  return env;
}

test('completions 3, parallelism 2: pods counted through the finalizer, then SuccessCriteriaMet and Complete', async (t) => {
  const env = await start(t);
  const c = env.ctx.client;
  const kubelet = standInKubelet(t, c, () => 'Succeeded');
  await c.create(Resources.jobs, 'default', job('pi', { completions: 3, parallelism: 2 }));
  const done = await waitFor(async () => { const j = await getJob(c, 'pi'); return cond(j, 'Complete') && j; }, 8000, 'Complete');
  assert.equal(done.status.succeeded, 3);
  assert.equal(done.status.failed, undefined);
  assert.equal(done.status.active, 0);
  assert.equal(done.status.ready, 0);
  assert.equal(done.status.terminating, 0);
  assert.deepEqual(done.status.uncountedTerminatedPods, { succeeded: [], failed: [] });
  assert.ok(done.status.startTime && done.status.completionTime);
  const met = cond(done, 'SuccessCriteriaMet');
  assert.equal(met.reason, 'CompletionsReached');
  assert.equal(met.message, 'Reached expected number of succeeded pods');
  assert.equal(cond(done, 'Complete').reason, 'CompletionsReached');
  assert.ok(done.status.conditions.findIndex((x: Obj) => x.type === 'SuccessCriteriaMet') < done.status.conditions.findIndex((x: Obj) => x.type === 'Complete'));
  assert.ok(kubelet.maxActive <= 2, `parallelism respected (saw ${kubelet.maxActive})`);

  const pods = await podsOf(c, 'pi');
  assert.equal(pods.length, 3);
  for (const p of pods) {
    assert.match(p.metadata.name, /^pi-[a-z0-9]{5}$/);
    assert.ok(!(p.metadata.finalizers ?? []).includes(JOB_TRACKING_FINALIZER), 'finalizer removed');
    assert.equal(p.metadata.ownerReferences[0].kind, 'Job');
  }
  await waitFor(async () => {
    const evs = (await c.list(Resources.events, 'default')).items as Obj[];
    return evs.some((e) => e.reason === 'Completed' && e.message === 'Job completed' && e.involvedObject.name === 'pi');
  }, 3000, 'Completed event');
});

test('failures beyond backoffLimit fail the Job with BackoffLimitExceeded', async (t) => {
  const env = await start(t);
  const c = env.ctx.client;
  standInKubelet(t, c, () => 'Failed');
  await c.create(Resources.jobs, 'default', job('bad', { backoffLimit: 2 }));
  const j = await waitFor(async () => { const x = await getJob(c, 'bad'); return cond(x, 'Failed') && x; }, 8000, 'Failed');
  assert.equal(j.status.failed, 3);
  assert.equal(j.status.active, 0);
  assert.equal(cond(j, 'FailureTarget').reason, 'BackoffLimitExceeded');
  assert.equal(cond(j, 'Failed').reason, 'BackoffLimitExceeded');
  assert.equal(cond(j, 'Failed').message, 'Job has reached the specified backoff limit');
  assert.equal(j.status.completionTime, undefined);
  assert.equal((await podsOf(c, 'bad')).length, 3, 'one pod per try, no more');
});

test('activeDeadlineSeconds stops running pods and fails the Job with DeadlineExceeded', async (t) => {
  let offset = 0;
  const env = await startControllerEnv(t);
  await env.run((ctx) => startJobController(ctx, { now: () => Date.now() + offset }));
  const c = env.ctx.client;
  standInKubelet(t, c, () => 'Running');
  await c.create(Resources.jobs, 'default', job('slow', { activeDeadlineSeconds: 30, parallelism: 2, completions: 4 }));
  await waitFor(async () => (await getJob(c, 'slow'))?.status?.ready === 2, 5000, 'two running');
  offset = 31_000;
  // Any change wakes the loop; the deadline is then past by the injected clock.
  const j0 = structuredClone(await getJob(c, 'slow'))!;
  j0.metadata.labels = { ...(j0.metadata.labels ?? {}), poke: 'x' };
  delete j0.metadata.resourceVersion; // unconditional: the loop writes status meanwhile
  await c.update(Resources.jobs, 'default', j0 as KObject);
  const j = await waitFor(async () => { const x = await getJob(c, 'slow'); return cond(x, 'Failed') && x; }, 5000, 'Failed');
  assert.equal(cond(j, 'Failed').reason, 'DeadlineExceeded');
  assert.equal(cond(j, 'Failed').message, 'Job was active longer than specified deadline');
  assert.equal(j.status.failed, 2, 'the pods it stopped count as failed');
  assert.equal(j.status.active, 0);
  assert.equal((await podsOf(c, 'slow')).length, 0);
});

test('Indexed: one pod per index with index label, annotation, hostname and env; a failed index is retried', async (t) => {
  const env = await start(t);
  const c = env.ctx.client;
  let failedOnce = false;
  standInKubelet(t, c, (p) => {
    if (p.metadata.labels['batch.kubernetes.io/job-completion-index'] === '1' && !failedOnce && p.status?.phase === 'Running') { failedOnce = true; return 'Failed'; }
    return 'Succeeded';
  });
  await c.create(Resources.jobs, 'default', job('idx', { completions: 3, parallelism: 3, completionMode: 'Indexed' }));
  const j = await waitFor(async () => { const x = await getJob(c, 'idx'); return cond(x, 'Complete') && x; }, 8000, 'Complete');
  assert.equal(j.status.completedIndexes, '0-2');
  assert.equal(j.status.succeeded, 3);
  assert.equal(j.status.failed, 1);
  const pods = await podsOf(c, 'idx');
  assert.equal(pods.length, 4);
  for (const p of pods) {
    const ix = p.metadata.annotations['batch.kubernetes.io/job-completion-index'];
    assert.equal(p.metadata.labels['batch.kubernetes.io/job-completion-index'], ix);
    assert.match(p.metadata.name, new RegExp(`^idx-${ix}-[a-z0-9]{5}$`));
    assert.equal(p.spec.hostname, `idx-${ix}`);
    assert.deepEqual(p.spec.containers[0].env, [{ name: 'JOB_COMPLETION_INDEX', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']" } } }]);
  }
  assert.equal(pods.filter((p) => p.metadata.labels['batch.kubernetes.io/job-completion-index'] === '1').length, 2);
});

test('suspend deletes running pods and sets Suspended; ttlSecondsAfterFinished deletes a finished Job', async (t) => {
  const env = await start(t);
  const c = env.ctx.client;
  let finish = false;
  standInKubelet(t, c, () => (finish ? 'Succeeded' : 'Running'));
  await c.create(Resources.jobs, 'default', job('sus', { parallelism: 2, completions: 2, ttlSecondsAfterFinished: 0 }));
  await waitFor(async () => (await getJob(c, 'sus'))?.status?.active === 2, 5000, 'two active');
  const s = structuredClone(await getJob(c, 'sus'))!;
  s.spec.suspend = true;
  delete s.metadata.resourceVersion; // unconditional: the loop writes status meanwhile
  await c.update(Resources.jobs, 'default', s as KObject);
  const sj = await waitFor(async () => { const x = await getJob(c, 'sus'); return cond(x, 'Suspended') && x!.status.active === 0 && x; }, 5000, 'Suspended');
  assert.equal(cond(sj, 'Suspended').reason, 'JobSuspended');
  await waitFor(async () => (await podsOf(c, 'sus')).length === 0, 5000, 'pods removed');
  assert.equal(sj.status.failed, undefined, 'pods removed by suspend are not failures');

  finish = true;
  const r = structuredClone(await getJob(c, 'sus'))!;
  r.spec.suspend = false;
  delete r.metadata.resourceVersion; // unconditional: the loop writes status meanwhile
  await c.update(Resources.jobs, 'default', r as KObject);
  // Complete, then deleted (foreground: without a garbage collector it stays, marked for deletion).
  await waitFor(async () => {
    const x = await getJob(c, 'sus');
    return !x || (x.metadata.deletionTimestamp && cond(x, 'Complete'));
  }, 8000, 'the TTL deletion');
});

test('a restarted loop neither duplicates pods nor counts one twice', async (t) => {
  const env = await startControllerEnv(t);
  const c = env.ctx.client;
  let succeed = false;
  standInKubelet(t, c, () => (succeed ? 'Succeeded' : 'Running'));
  const first = await env.run((ctx) => startJobController(ctx));
  await c.create(Resources.jobs, 'default', job('rs', { completions: 4, parallelism: 2 }));
  await waitFor(async () => (await getJob(c, 'rs'))?.status?.active === 2, 5000, 'two active');
  await first.stop();

  // The pods finish while no loop runs; a new loop with fresh informers picks up from there.
  succeed = true;
  for (const p of await podsOf(c, 'rs')) {
    const next = structuredClone(p);
    next.status = { phase: 'Succeeded' };
    await c.updateStatus(Resources.pods, 'default', next as KObject);
  }
  const informers = new InformerFactory(c);
  t.after(() => informers.stop());
  const ctx: ControllerContext = { ...env.ctx, informers };
  const second = startJobController(ctx);
  t.after(() => second.stop());
  informers.start();
  const j = await waitFor(async () => { const x = await getJob(c, 'rs'); return cond(x, 'Complete') && x; }, 8000, 'Complete');
  assert.equal(j.status.succeeded, 4);
  assert.equal((await podsOf(c, 'rs')).length, 4, 'exactly four pods ever');
});

test('completed index intervals render as Kubernetes writes them', () => {
  assert.equal(formatIndexes(new Set([0, 1, 2, 5, 7, 8])), '0-2,5,7-8');
  assert.deepEqual([...parseIndexes('0-2,5,7-8', 7)].sort(), [0, 1, 2, 5]);
  assert.equal(formatIndexes(new Set()), '');
});
