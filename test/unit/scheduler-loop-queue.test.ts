// The scheduling queue's rules: higher priority first, then first come first served; a binding that
// fails takes its assumed placement back and is retried after a backoff.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startControllerEnv, eventually } from '../helpers/controller-env.js';
import { startSchedulerController } from '../../src/controllers/scheduler-loop.js';
import { Resources } from '../../src/client/types.js';
import { ApiError } from '../../src/api/status.js';
import type { KObject } from '../../src/api/object.js';

function oneSlotNode(name: string): KObject {
  return {
    apiVersion: 'v1', kind: 'Node', metadata: { name, labels: { 'kubernetes.io/hostname': name } },
    status: { allocatable: { cpu: '4', memory: '8Gi', pods: '1' }, conditions: [{ type: 'Ready', status: 'True' }] },
  };
}

// Priority comes from a PriorityClass (priority admission computes spec.priority from it).
const pod = (name: string, priority?: number): KObject => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: 'default' },
  spec: { containers: [{ name: 'c', image: 'busybox' }], ...(priority !== undefined ? { priorityClassName: `p${priority}` } : {}) },
});
const priorityClass = (value: number): KObject => ({ apiVersion: 'scheduling.k8s.io/v1', kind: 'PriorityClass', metadata: { name: `p${value}` }, value });
const PRIORITY_CLASSES = { group: 'scheduling.k8s.io', version: 'v1', resource: 'priorityclasses' };

test('the highest priority pending pod gets the only free slot; equal priorities go first come first served', async (t) => {
  const env = await startControllerEnv(t);
  await env.api.client.create(Resources.nodes, undefined, oneSlotNode('a'));
  await env.api.client.create(Resources.nodes, undefined, oneSlotNode('b'));
  for (const v of [0, 10, 1000]) await env.api.client.create(PRIORITY_CLASSES, undefined, priorityClass(v));
  // All pending before the loop starts, so only the queue's order decides.
  await env.api.client.create(Resources.pods, 'default', pod('low', 0));
  await env.api.client.create(Resources.pods, 'default', pod('first', 10));
  await env.api.client.create(Resources.pods, 'default', pod('urgent', 1000));
  await env.api.client.create(Resources.pods, 'default', pod('second', 10));
  await env.run((ctx) => startSchedulerController(ctx, { initialBackoffMs: 50, maxBackoffMs: 100, unschedulableRetryMs: 60_000 }));
  const bound = await eventually(async () => {
    const pods = (await env.api.client.list(Resources.pods, 'default')).items as any[];
    const names = pods.filter((p) => p.spec.nodeName).map((p) => p.metadata.name).sort();
    return names.length === 2 && names;
  }, 5000, 'two pods bound');
  assert.deepEqual(bound, ['first', 'urgent']);
});

test('a failed binding is undone in the snapshot and retried', async (t) => {
  const env = await startControllerEnv(t);
  await env.api.client.create(Resources.nodes, undefined, oneSlotNode('only'));
  let failures = 0;
  const flakyClient = Object.create(env.api.client) as typeof env.api.client;
  flakyClient.bind = async (ns, name, node) => {
    if (failures++ === 0) throw new ApiError(500, 'InternalError', 'injected failure');
    return env.api.client.bind(ns, name, node);
  };
  await env.run((ctx) => startSchedulerController({ ...ctx, client: flakyClient }, { initialBackoffMs: 50, maxBackoffMs: 100, unschedulableRetryMs: 60_000 }));
  await env.api.client.create(Resources.pods, 'default', pod('p'));
  // Had the failed placement stayed assumed, the one slot would look taken and p would wait 60 s.
  const node = await eventually(async () => ((await env.api.client.get(Resources.pods, 'default', 'p')) as any)?.spec?.nodeName, 3000, 'p bound after a retry');
  assert.equal(node, 'only');
  assert.equal(failures, 2);
});
