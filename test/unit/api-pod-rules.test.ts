// The pod rules every component shares (src/api/pod.ts), at the points where the copies they replaced
// disagreed with Kubernetes: QoS from parsed quantities, availability strictly after minReadySeconds.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byCreation, podResourceTotal, isPodActive, isPodAvailable, isPodReady, isPodTerminal, msUntilAvailable, podQosClass, qosClass } from '../../src/api/pod.js';

const pod = (...containers: { requests?: Record<string, string>; limits?: Record<string, string> }[]) =>
  ({ spec: { containers: containers.map((resources, i) => ({ name: `c${i}`, resources })) } });

test('QoS compares quantities by value: 100m and 0.1 cpu are the same request and limit', () => {
  // The string-comparing copy in apiserver/strategy.ts called this Burstable.
  assert.equal(qosClass(pod({ requests: { cpu: '100m', memory: '128Mi' }, limits: { cpu: '0.1', memory: '134217728' } })), 'Guaranteed');
  assert.equal(qosClass(pod({ requests: { cpu: '1', memory: '1Gi' }, limits: { cpu: '1000m', memory: '1024Mi' } })), 'Guaranteed');
});

test('QoS: requests default from limits; only cpu and memory count; zero counts as unset', () => {
  assert.equal(qosClass(pod({ limits: { cpu: '1', memory: '1Gi' } })), 'Guaranteed');
  assert.equal(qosClass(pod({ limits: { cpu: '1', memory: '1Gi', 'ephemeral-storage': '1Gi' }, requests: { 'ephemeral-storage': '10Mi' } })), 'Guaranteed',
    'ephemeral-storage does not decide QoS (the strategy copy counted it)');
  assert.equal(qosClass(pod({ requests: { 'ephemeral-storage': '1Gi' } })), 'BestEffort');
  assert.equal(qosClass(pod({ requests: { cpu: '0' } })), 'BestEffort');
  assert.equal(qosClass(pod({ requests: { cpu: '100m' } })), 'Burstable');
  assert.equal(qosClass(pod({ limits: { cpu: '1' } })), 'Burstable', 'no memory limit');
  assert.equal(qosClass(pod({ requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '1', memory: '1Gi' } })), 'Burstable');
  assert.equal(qosClass(pod({ limits: { cpu: '1', memory: '1Gi' } }, {})), 'Burstable', 'every container needs limits');
  assert.equal(qosClass(pod()), 'BestEffort');
  assert.equal(qosClass({ spec: { containers: [{ name: 'a' }], initContainers: [{ name: 'i', resources: { limits: { cpu: '1', memory: '1Gi' } } }] } }), 'Burstable');
});

test('podQosClass keeps the class the status records (GetPodQOS), so cgroups follow the status', () => {
  const p = { ...pod({ limits: { cpu: '1', memory: '1Gi' } }), status: { qosClass: 'Burstable' } };
  assert.equal(podQosClass(p), 'Burstable');
  assert.equal(podQosClass(pod({ limits: { cpu: '1', memory: '1Gi' } })), 'Guaranteed');
});

const readyPod = (since: string | undefined, status = 'True') =>
  ({ metadata: { name: 'p' }, status: { conditions: [{ type: 'Ready', status, ...(since ? { lastTransitionTime: since } : {}) }] } });

test('availability: ready strictly longer than minReadySeconds (podutil.IsPodAvailable)', () => {
  const since = '2024-01-01T00:00:00Z';
  const t0 = Date.parse(since);
  const p = readyPod(since);
  assert.equal(isPodAvailable(p, 0, t0), true, 'no minReadySeconds: ready is available');
  assert.equal(isPodAvailable(p, 10, t0 + 9_999), false);
  // The `<=` copy in workload-pods.ts called this available.
  assert.equal(isPodAvailable(p, 10, t0 + 10_000), false, 'at exactly minReadySeconds it is not available yet');
  assert.equal(isPodAvailable(p, 10, t0 + 10_001), true);
  assert.equal(isPodAvailable(readyPod(undefined), 10, t0 + 60_000), false, 'no transition time: never available with minReadySeconds');
  assert.equal(isPodAvailable(readyPod(since, 'False'), 0, t0), false);
});

test('msUntilAvailable waits until the pod is available, not one tick before', () => {
  const since = '2024-01-01T00:00:00Z';
  const t0 = Date.parse(since);
  const p = readyPod(since);
  const wait = msUntilAvailable(p, 10, t0 + 4_000)!;
  assert.equal(isPodAvailable(p, 10, t0 + 4_000 + wait), true);
  assert.equal(isPodAvailable(p, 10, t0 + 4_000 + wait - 1), false);
  assert.equal(msUntilAvailable(p, 10, t0 + 20_000), 0);
  assert.equal(msUntilAvailable(readyPod(since, 'False'), 10, t0), undefined);
});

test('readiness, activity and creation order', () => {
  assert.equal(isPodReady(readyPod(undefined)), true);
  assert.equal(isPodReady({ status: {} }), false);
  assert.equal(isPodTerminal({ status: { phase: 'Failed' } }), true);
  assert.equal(isPodActive({ metadata: {}, status: { phase: 'Running' } }), true);
  assert.equal(isPodActive({ metadata: { deletionTimestamp: '2024-01-01T00:00:00Z' }, status: { phase: 'Running' } }), false);
  assert.equal(isPodActive({ metadata: {}, status: { phase: 'Succeeded' } }), false);
  const o = (name: string, ts: string) => ({ metadata: { name, creationTimestamp: ts } });
  const sorted = [o('b', '2024-01-01T00:00:01Z'), o('c', '2024-01-01T00:00:00Z'), o('a', '2024-01-01T00:00:01Z')].sort(byCreation);
  assert.deepEqual(sorted.map((x) => x.metadata.name), ['c', 'a', 'b']);
});

test('a pod holds its containers and sidecars, at least its largest init step (PodRequests)', () => {
  const c = (name: string, cpu: number, restartPolicy?: string) => ({ name, cpu, ...(restartPolicy ? { restartPolicy } : {}) });
  const sum = { empty: () => ({ cpu: 0 }), add: (a: { cpu: number }, b: { cpu: number }) => { a.cpu += b.cpu; }, max: (a: { cpu: number }, b: { cpu: number }) => { a.cpu = Math.max(a.cpu, b.cpu); } };
  const total = (spec: any) => podResourceTotal(spec, (x) => ({ cpu: x.cpu }), sum).cpu;
  assert.equal(total({ containers: [c('a', 1), c('b', 2)] }), 3);
  assert.equal(total({ containers: [c('a', 1)], initContainers: [c('i', 5)] }), 5, 'an init container alone needs more');
  // The sidecar runs beside the app (1 + 2) and beside the later init step (2 + 2 = 4).
  assert.equal(total({ containers: [c('a', 1)], initContainers: [c('s', 2, 'Always'), c('i', 2)] }), 4);
  assert.equal(total({ containers: [c('a', 1)], initContainers: [c('i', 2), c('s', 2, 'Always')] }), 3, 'an init step before the sidecar does not overlap it');
  assert.equal(total(undefined), 0);
});
