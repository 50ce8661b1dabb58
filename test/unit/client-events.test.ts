// The one event recorder (src/client/events.ts) the control loops and the kubelet share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { COMBINED_PREFIX, eventRecorder } from '../../src/client/events.js';
import { errors } from '../../src/api/status.js';
import type { ApiClient } from '../../src/client/types.js';
import { eventually } from '../helpers/wait.js';

type Obj = Record<string, any>;

/** Just the create and patch an event recorder uses, over a map of events by name. */
function fakeClient() {
  const events = new Map<string, Obj>();
  const calls: string[] = [];
  const client = {
    async create(_ref: unknown, ns: string, body: Obj) {
      calls.push(`create ${body.metadata.name}`);
      events.set(body.metadata.name, { ...body, metadata: { ...body.metadata, namespace: ns } });
      return body;
    },
    async patch(_ref: unknown, _ns: string, name: string, _type: string, body: Obj) {
      calls.push(`patch ${name}`);
      const e = events.get(name);
      if (!e) throw errors.notFound('events', '', name);
      Object.assign(e, body);
      return e;
    },
  } as unknown as ApiClient;
  return { client, events, calls };
}

const pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'web', namespace: 'ns1', uid: 'u1', resourceVersion: '7' } };

test('repeats fold into one Event with a count; another fieldPath is another Event', async () => {
  const { client, events } = fakeClient();
  const rec = eventRecorder(client, 'kubelet', 'node-1');
  rec.record(pod, 'Warning', 'BackOff', 'Back-off restarting', 'spec.containers{app}');
  rec.record(pod, 'Warning', 'BackOff', 'Back-off restarting', 'spec.containers{app}');
  rec.record(pod, 'Warning', 'BackOff', 'Back-off restarting', 'spec.containers{app}');
  rec.record(pod, 'Warning', 'BackOff', 'Back-off restarting', 'spec.containers{side}');
  await eventually(async () => [...events.values()].reduce((n, e) => n + e.count, 0) === 4, 'four events counted');
  const byPath = new Map([...events.values()].map((e) => [e.involvedObject.fieldPath, e]));
  assert.equal(events.size, 2);
  const app = byPath.get('spec.containers{app}')!;
  assert.equal(app.count, 3);
  assert.deepEqual(app.involvedObject, { apiVersion: 'v1', kind: 'Pod', name: 'web', namespace: 'ns1', uid: 'u1', resourceVersion: '7', fieldPath: 'spec.containers{app}' });
  assert.deepEqual(app.source, { component: 'kubelet', host: 'node-1' });
  assert.equal(app.reportingComponent, 'kubelet');
  assert.match(app.metadata.name, /^web\.[0-9a-f]+$/);
  assert.equal(app.metadata.namespace, 'ns1');
});

test('an Event deleted meanwhile is created again instead of patched', async () => {
  const { client, events, calls } = fakeClient();
  const rec = eventRecorder(client, 'replicaset-controller');
  rec.record(pod, 'Normal', 'SuccessfulCreate', 'Created pod: web');
  await eventually(async () => events.size === 1, 'the first event');
  events.clear();
  rec.record(pod, 'Normal', 'SuccessfulCreate', 'Created pod: web');
  await eventually(async () => events.size === 1 && calls.length === 3, 'the event written again');
  assert.deepEqual(calls.map((c) => c.split(' ')[0]), ['create', 'patch', 'create']);
  const [e] = [...events.values()];
  assert.equal(e!.count, 1);
  assert.equal(e!.source.host, undefined);
});

test('similar events about one object combine after ten messages, and a spam filter caps them at 25 at once', async () => {
  const { client, events } = fakeClient();
  const rec = eventRecorder(client, 'replicaset-controller');
  const rs = { apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'web-1', namespace: 'ns1', uid: 'rs1' } };
  for (let i = 0; i < 30; i++) rec.record(rs, 'Normal', 'SuccessfulCreate', `Created pod: web-1-${i}`);
  await eventually(async () => [...events.values()].reduce((n, e) => n + e.count, 0) === 25, '25 events counted');
  const all = [...events.values()];
  // Nine on their own, then one combined Event that counts the rest the filter let through.
  assert.equal(all.length, 10);
  const combined = all.filter((e) => e.message.startsWith(COMBINED_PREFIX));
  assert.equal(combined.length, 1);
  assert.equal(combined[0]!.count, 16);
  assert.equal(combined[0]!.message, `${COMBINED_PREFIX}Created pod: web-1-24`);
  assert.deepEqual(all.filter((e) => !e.message.startsWith(COMBINED_PREFIX)).map((e) => e.message).sort(),
    Array.from({ length: 9 }, (_, i) => `Created pod: web-1-${i}`).sort());
  // Another object has a bucket of its own.
  rec.record({ ...rs, metadata: { ...rs.metadata, name: 'web-2', uid: 'rs2' } }, 'Normal', 'SuccessfulCreate', 'Created pod: web-2-0');
  await eventually(async () => events.size === 11, 'the other ReplicaSet\'s event');
});

test('at most 1,000 events wait to be written; more are dropped', async () => {
  const created: string[] = [];
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  const client = {
    async create(_ref: unknown, _ns: string, body: Obj) { await held; created.push(body.metadata.name); return body; },
    async patch() { throw new Error('not used'); },
  } as unknown as ApiClient;
  const rec = eventRecorder(client, 'scheduler');
  for (let i = 0; i < 1500; i++) rec.record({ ...pod, metadata: { ...pod.metadata, name: `p${i}`, uid: `u${i}` } }, 'Normal', 'Scheduled', `assigned p${i}`);
  release();
  // One was being written when the rest queued: it and the 1,000 queued behind it.
  await eventually(async () => created.length === 1001, '1,001 events written');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(created.length, 1001);
});
