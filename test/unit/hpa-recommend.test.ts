// The HorizontalPodAutoscaler's arithmetic: utilization of requests with the 10 % tolerance, average
// values, missing metrics and requests, the default scale-up rate, stabilization and bounds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bounded, replicasFor, type PodSample } from '../../src/controllers/hpa/recommend.js';

const pods = (...s: [number, number | undefined][]) => new Map<string, PodSample>(s.map(([usage, request], i) => [`p${i}`, { usage, request }]));

test('utilization: ratio of usage to requests against the target, within 10 % nothing moves', () => {
  assert.deepEqual(replicasFor('cpu', 2, pods([100, 100], [100, 100]), { utilization: 50 }), { ok: true, desired: 4, utilization: 100, averageValue: 100 });
  const within = replicasFor('cpu', 2, pods([54, 100], [54, 100]), { utilization: 50 });
  assert.equal(within.ok && within.desired, 2);
  const down = replicasFor('cpu', 4, pods([10, 100], [10, 100], [10, 100], [10, 100]), { utilization: 50 });
  assert.equal(down.ok && down.desired, 1);
});

test('average value per pod, and the failures kube-controller-manager reports', () => {
  const r = replicasFor('memory', 2, pods([300, undefined], [300, undefined]), { averageValue: 100 });
  assert.equal(r.ok && r.desired, 6);
  const none = replicasFor('cpu', 1, new Map(), { utilization: 50 });
  assert.equal(!none.ok && none.message, 'unable to get metrics for resource cpu: no metrics returned from resource metrics API');
  const noRequest = replicasFor('cpu', 1, pods([10, undefined]), { utilization: 50 });
  assert.equal(!noRequest.ok && noRequest.message, 'failed to get cpu utilization: missing request for cpu in pod p0');
});

test('bounds: scale-up rate (double or +4), min/max, scale-down stabilization', () => {
  assert.deepEqual(bounded(1, 20, { min: 1, max: 100, recentDown: [], recentUp: [] }), { replicas: 5 });
  assert.deepEqual(bounded(10, 40, { min: 1, max: 100, recentDown: [], recentUp: [] }), { replicas: 20 });
  assert.equal(bounded(1, 10, { min: 1, max: 3, recentDown: [], recentUp: [] }).limited?.reason, 'TooManyReplicas');
  assert.deepEqual(bounded(5, 2, { min: 1, max: 10, recentDown: [4, 2], recentUp: [] }), { replicas: 4 });
  assert.equal(bounded(5, 0, { min: 2, max: 10, recentDown: [0], recentUp: [] }).replicas, 2);
});
