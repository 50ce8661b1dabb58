// The one event recorder (src/client/events.ts) the control loops and the kubelet share.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { eventRecorder } from '../../src/client/events.js';
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
