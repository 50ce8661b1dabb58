// The Job reconcile (src/controllers/job/sync.ts) on its own: listers over a few objects in memory
// and a client that records writes, no API server, no SQLite, no informer. What the loop as a whole
// does against the real API is job-controller.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { JobMemory, JobSync, JOB_PODS_INDEX, ORPHAN_PREFIX } from '../../src/controllers/job/sync.js';
import { JOB_TRACKING_FINALIZER } from '../../src/controllers/job/pods.js';
import { COMPLETION_INDEX_KEY } from '../../src/controllers/job/indexes.js';
import { controllerUidIndex } from '../../src/controllers/workload-pods.js';
import { listerOf, RecordingClient, recordedEvents } from '../helpers/in-memory.js';
import { rfc3339 } from '../../src/util/time.js';


type Obj = Record<string, any>;

const NOW = Date.parse('2026-01-01T12:00:00Z');
const TS = rfc3339(NOW);
const KEY = 'default/pi';

function job(spec: Obj = {}, status?: Obj): Obj {
  return {
    apiVersion: 'batch/v1', kind: 'Job', metadata: { name: 'pi', namespace: 'default', uid: 'job-uid', resourceVersion: '7', generation: 1 },
    spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'c', image: 'busybox' }] } }, ...spec },
    ...(status ? { status } : {}),
  };
}

function pod(name: string, phase: string | undefined, extra: { ready?: boolean; index?: number; finalizer?: boolean; deleting?: boolean; owner?: string } = {}): Obj {
  const p: Obj = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name, namespace: 'default', uid: `uid-${name}`, creationTimestamp: '2026-01-01T11:00:00Z',
      ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'pi', uid: extra.owner ?? 'job-uid', controller: true }],
      ...(extra.finalizer === false ? {} : { finalizers: [JOB_TRACKING_FINALIZER] }),
      ...(extra.index !== undefined ? { annotations: { [COMPLETION_INDEX_KEY]: String(extra.index) } } : {}),
      ...(extra.deleting ? { deletionTimestamp: '2026-01-01T11:59:00Z' } : {}),
    },
    spec: {},
    status: phase ? { phase, conditions: [{ type: 'Ready', status: extra.ready ? 'True' : 'False' }] } : {},
  };
  return p;
}

function setup(jobs: Obj[], pods: Obj[], apiObjects: Map<string, KObject> = new Map()) {
  const client = new RecordingClient(apiObjects);
  const events = recordedEvents();
  const memory = new JobMemory();
  const sync = new JobSync({
    client, events, memory, now: () => NOW, podFailureBackoffMs: 10_000, maxPodFailureBackoffMs: 600_000,
    listers: {
      jobs: listerOf(jobs as KObject[]),
      pods: listerOf(pods as KObject[], { [JOB_PODS_INDEX]: controllerUidIndex('Job') }),
    },
  });
  const statuses = () => client.writes('updateStatus', 'jobs').map((c) => c.body.status as Obj);
  const conditionTypes = (s: Obj | undefined) => (s?.conditions ?? []).map((c: Obj) => `${c.type}:${c.reason}`);
  return { client, events, memory, sync, statuses, conditionTypes };
}

test('a new Job gets parallelism pods, each tracked by the finalizer; expectations hold the next sync back', async () => {
  const { client, memory, sync, statuses } = setup([job({ completions: 3, parallelism: 2 })], []);
  await sync.reconcile(KEY);
  const created = client.writes('create', 'pods');
  assert.equal(created.length, 2);
  for (const c of created) {
    assert.deepEqual(c.body.metadata.finalizers, [JOB_TRACKING_FINALIZER]);
    assert.equal(c.body.metadata.ownerReferences[0].uid, 'job-uid');
    assert.equal(c.body.metadata.ownerReferences[0].controller, true);
    assert.equal(c.body.metadata.generateName, 'pi-');
  }
  assert.equal(statuses().at(-1)!.active, 2);
  assert.equal(statuses().at(-1)!.startTime, TS);

  // The lister has not shown the new pods yet: acting again would double them.
  await sync.reconcile(KEY);
  assert.equal(client.writes('create', 'pods').length, 2, 'no creation while two are expected');
  memory.expectations.creationObserved(KEY);
  memory.expectations.creationObserved(KEY);
  await sync.reconcile(KEY);
  assert.equal(client.writes('create', 'pods').length, 4, 'expectations met: the (still empty) lister is believed');
});

test('a finished pod is counted in three steps: uncounted uid, finalizer removed, then succeeded', async () => {
  const { client, sync, statuses } = setup([job({ completions: 2, parallelism: 1 })], [pod('a', 'Succeeded'), pod('b', 'Running', { ready: true })]);
  await sync.reconcile(KEY);
  const writes = client.writes();
  const order = writes.map((c) => `${c.verb} ${c.resource}${c.name ? ` ${c.name}` : ''}`);
  assert.deepEqual(order, ['updateStatus jobs pi', 'patch pods a', 'updateStatus jobs pi']);
  const [first, second] = statuses();
  assert.deepEqual(first!.uncountedTerminatedPods, { succeeded: ['uid-a'], failed: [] });
  assert.equal(first!.succeeded, undefined);
  assert.deepEqual(writes[1]!.body, [
    { op: 'test', path: '/metadata/finalizers/0', value: JOB_TRACKING_FINALIZER },
    { op: 'remove', path: '/metadata/finalizers/0' },
  ]);
  assert.deepEqual(second!.uncountedTerminatedPods, { succeeded: [], failed: [] });
  assert.equal(second!.succeeded, 1);
  assert.equal(second!.active, 1);
  assert.equal(second!.ready, 1);
  assert.equal(client.writes('create').length, 0, 'one more completion is running already');
});

test('the last completion: SuccessCriteriaMet first, then Complete with completionTime once nothing is uncounted', async () => {
  const { client, events, sync, statuses, conditionTypes } = setup([job({ completions: 1 })], [pod('a', 'Succeeded')]);
  const r = await sync.reconcile(KEY);
  assert.equal(r, undefined);
  const [first, last] = statuses();
  assert.deepEqual(conditionTypes(first), ['SuccessCriteriaMet:CompletionsReached']);
  assert.deepEqual(conditionTypes(last), ['SuccessCriteriaMet:CompletionsReached', 'Complete:CompletionsReached']);
  assert.equal(last!.completionTime, TS);
  assert.equal(last!.succeeded, 1);
  assert.ok(events.lines.includes('Normal Completed: Job completed'));
  assert.equal(client.writes('create').length, 0);
});

test('backoffLimit 0: a failed pod fails the Job; the running one is deleted and counted failed; Failed once none terminates', async () => {
  const t = setup([job({ completions: 2, parallelism: 2, backoffLimit: 0 })], [pod('a', 'Failed'), pod('b', 'Running', { ready: true })]);
  await t.sync.reconcile(KEY);
  assert.deepEqual(t.client.writes('delete', 'pods').map((c) => c.name), ['b']);
  const last = t.statuses().at(-1)!;
  assert.deepEqual(t.conditionTypes(last), ['FailureTarget:BackoffLimitExceeded'], 'not Failed while b terminates');
  assert.equal(last.failed, 2);
  assert.equal(last.terminating, 1);

  // Next sync: b is gone; the recorded FailureTarget becomes Failed.
  const t2 = setup([job({ completions: 2, parallelism: 2, backoffLimit: 0 }, last)], []);
  await t2.sync.reconcile(KEY);
  assert.deepEqual(t2.conditionTypes(t2.statuses().at(-1)), ['FailureTarget:BackoffLimitExceeded', 'Failed:BackoffLimitExceeded']);
  assert.ok(t2.events.lines.includes('Warning BackoffLimitExceeded: Job has reached the specified backoff limit'));
});

test('a failed pod is replaced only after the backoff', async () => {
  const { client, sync } = setup([job({ completions: 1, parallelism: 1 })], [pod('a', 'Failed')]);
  const r = await sync.reconcile(KEY);
  assert.deepEqual(r, { requeueAfterMs: 10_000 });
  assert.equal(client.writes('create').length, 0);
});

test('activeDeadlineSeconds not reached yet: the sync asks to look again when it will be', async () => {
  const started = rfc3339(NOW - 20_000);
  const { sync } = setup([job({ completions: 1, activeDeadlineSeconds: 30 }, { startTime: started })], [pod('a', 'Running')]);
  assert.deepEqual(await sync.reconcile(KEY), { requeueAfterMs: 10_000 });
});

test('Indexed: one pod per missing index, with its index, hostname and JOB_COMPLETION_INDEX', async () => {
  const { client, sync } = setup([job({ completionMode: 'Indexed', completions: 3, parallelism: 3 }, { completedIndexes: '1', succeeded: 1 })], []);
  await sync.reconcile(KEY);
  const created = client.writes('create', 'pods').map((c) => c.body);
  assert.deepEqual(created.map((p) => p.metadata.annotations[COMPLETION_INDEX_KEY]), ['0', '2']);
  assert.deepEqual(created.map((p) => p.metadata.generateName), ['pi-0-', 'pi-2-']);
  assert.deepEqual(created.map((p) => p.spec.hostname), ['pi-0', 'pi-2']);
  assert.equal(created[0].spec.containers[0].env[0].name, 'JOB_COMPLETION_INDEX');
});

test('suspend: running pods lose their finalizer first (no failure counted), are deleted, and Suspended is set', async () => {
  const { client, events, sync, statuses, conditionTypes } = setup(
    [job({ suspend: true, completions: 1, parallelism: 1 }, { startTime: TS })], [pod('a', 'Running', { ready: true })]);
  await sync.reconcile(KEY);
  const order = client.writes().map((c) => `${c.verb} ${c.resource}`);
  assert.deepEqual(order.slice(0, 2), ['patch pods', 'delete pods']);
  const last = statuses().at(-1)!;
  assert.deepEqual(conditionTypes(last), ['Suspended:JobSuspended']);
  assert.equal(last.failed, undefined);
  assert.equal(last.active, 0);
  assert.equal(last.terminating, 1);
  assert.ok(events.lines.includes('Normal Suspended: Job suspended'));
});

test('a tracked pod whose Job is gone loses its finalizer; one whose Job the cache has not seen yet keeps it', async () => {
  const orphan = pod('a', 'Running', { owner: 'old-uid' });
  const gone = setup([], [orphan]);
  await gone.sync.reconcile(`${ORPHAN_PREFIX}default/a`);
  assert.deepEqual(gone.client.writes().map((c) => `${c.verb} ${c.name}`), ['patch a']);

  const live = job();
  live.metadata.uid = 'old-uid';
  const lagging = setup([], [orphan], new Map([['jobs/default/pi', live as KObject]]));
  await lagging.sync.reconcile(`${ORPHAN_PREFIX}default/a`);
  assert.deepEqual(lagging.client.writes(), []);
});

test('ttlSecondsAfterFinished: a finished Job waits out its TTL, then is deleted in the foreground', async () => {
  const finished = (agoMs: number) => job({ ttlSecondsAfterFinished: 60 }, {
    completionTime: rfc3339(NOW - agoMs), conditions: [{ type: 'Complete', status: 'True', lastTransitionTime: rfc3339(NOW - agoMs) }],
  });
  const early = setup([finished(30_000)], []);
  assert.deepEqual(await early.sync.reconcile(KEY), { requeueAfterMs: 30_000 });
  assert.deepEqual(early.client.writes(), []);
  const late = setup([finished(120_000)], []);
  await late.sync.reconcile(KEY);
  const [del] = late.client.writes('delete', 'jobs');
  assert.deepEqual(del!.opts, { propagationPolicy: 'Foreground', preconditions: { uid: 'job-uid', resourceVersion: '7' } });
});

test('a Job gone from the lister is forgotten', async () => {
  const { memory, sync } = setup([], []);
  memory.expectations.expect(KEY, 3);
  memory.backoffs.set(KEY, { failures: 2, lastMs: NOW });
  await sync.reconcile(KEY);
  assert.ok(memory.expectations.satisfied(KEY));
  assert.equal(memory.backoffs.has(KEY), false);
});
