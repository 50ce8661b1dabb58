// Pod status from observed containers: phase rules, conditions with kept transition times, container
// states (waiting/running/terminated with lastState), readiness from probes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computePodStatus, podPhase, type ObservedContainer, type StatusInput } from '../../src/agent/pods/status.js';

const T0 = new Date('2026-01-01T00:00:00Z');

function inst(name: string, o: Partial<ObservedContainer> = {}): ObservedContainer {
  return {
    name, kind: 'regular', id: `id-${name}-${o.restartCount ?? 0}`, state: 'CONTAINER_RUNNING', startedAt: T0, finishedAt: null,
    exitCode: 0, reason: '', message: '', image: 'img:1', imageRef: 'sha256:abc', restartCount: 0, ...o,
  };
}

function input(o: Partial<StatusInput> & { spec?: object }): StatusInput {
  const { spec, pod, ...rest } = o;
  return {
    pod: { metadata: { name: 'p', namespace: 'ns', uid: 'u' }, spec: spec ?? { containers: [{ name: 'a', image: 'img:1' }] }, status: pod?.status },
    now: T0, hostIPs: ['192.0.2.1'], podIPs: ['10.0.0.5'], sandboxReady: true,
    init: new Map(), regular: new Map(), waiting: new Map(), probes: () => undefined, startTime: '2026-01-01T00:00:00Z', qosClass: 'BestEffort',
    ...rest,
  };
}

test('a running container makes a Running, Ready pod with IPs and a containerd container ID', () => {
  const s = computePodStatus(input({ regular: new Map([['a', { latest: inst('a') }]]) }));
  assert.equal(s.phase, 'Running');
  assert.equal(s.podIP, '10.0.0.5');
  assert.deepEqual(s.hostIPs, [{ ip: '192.0.2.1' }]);
  const ready = s.conditions.find((c: any) => c.type === 'Ready');
  assert.equal(ready.status, 'True');
  assert.equal(s.containerStatuses[0].containerID, 'containerd://id-a-0');
  assert.equal(s.containerStatuses[0].ready, true);
  assert.deepEqual(s.containerStatuses[0].state, { running: { startedAt: '2026-01-01T00:00:00Z' } });
});

test('readiness comes from probes; unready containers are named in the condition message', () => {
  const s = computePodStatus(input({ regular: new Map([['a', { latest: inst('a') }]]), probes: () => ({ ready: false, started: true }) }));
  const ready = s.conditions.find((c: any) => c.type === 'Ready');
  assert.equal(ready.status, 'False');
  assert.equal(ready.reason, 'ContainersNotReady');
  assert.equal(ready.message, 'containers with unready status: [a]');
});

test('a container in back-off is waiting with its last termination; the pod stays Running under Always', () => {
  const s = computePodStatus(input({
    regular: new Map([['a', { latest: inst('a', { state: 'CONTAINER_EXITED', exitCode: 3, finishedAt: T0, restartCount: 2 }), previous: inst('a', { state: 'CONTAINER_EXITED', exitCode: 3, restartCount: 1 }) }]]),
    waiting: new Map([['regular/a', { reason: 'CrashLoopBackOff', message: 'back-off 20s restarting failed container=a pod=p_ns(u)' }]]),
  }));
  const cs = s.containerStatuses[0];
  assert.equal(cs.state.waiting.reason, 'CrashLoopBackOff');
  assert.equal(cs.lastState.terminated.exitCode, 3);
  assert.equal(cs.lastState.terminated.reason, 'Error');
  assert.equal(cs.restartCount, 2);
  assert.equal(s.phase, 'Running');
});

test('phase: Succeeded / Failed under Never and OnFailure, Pending while init runs, Failed when init fails under Never', () => {
  const done = (code: number) => ({ name: 'a', state: { terminated: { exitCode: code } }, lastState: {} });
  assert.equal(podPhase({ restartPolicy: 'Never' }, [], [done(0)], true), 'Succeeded');
  assert.equal(podPhase({ restartPolicy: 'Never' }, [], [done(1)], true), 'Failed');
  assert.equal(podPhase({ restartPolicy: 'OnFailure' }, [], [done(1)], true), 'Running');
  assert.equal(podPhase({ restartPolicy: 'Always' }, [], [done(0)], true), 'Running');
  assert.equal(podPhase({ restartPolicy: 'Always' }, [], [{ state: { waiting: { reason: 'ContainerCreating' } }, lastState: {} }], true), 'Pending');
  assert.equal(podPhase({ restartPolicy: 'Never' }, [done(1)], [], false), 'Failed');
  assert.equal(podPhase({ restartPolicy: 'Always' }, [done(1)], [], false), 'Pending');
});

test('init containers: PodInitializing while they run, Initialized with the incomplete ones named', () => {
  const spec = { initContainers: [{ name: 'i', image: 'img:1' }], containers: [{ name: 'a', image: 'img:1' }] };
  const s = computePodStatus(input({ spec, init: new Map([['i', { latest: inst('i', { kind: 'init' }) }]]) }));
  assert.equal(s.phase, 'Pending');
  assert.equal(s.containerStatuses[0].state.waiting.reason, 'PodInitializing');
  const init = s.conditions.find((c: any) => c.type === 'Initialized');
  assert.equal(init.status, 'False');
  assert.equal(init.message, 'containers with incomplete status: [i]');
});

test('transition times are kept while a condition keeps its status; PodScheduled is carried over', () => {
  const prev = { conditions: [
    { type: 'Ready', status: 'True', lastTransitionTime: '2025-12-31T00:00:00Z' },
    { type: 'PodScheduled', status: 'True', lastTransitionTime: '2025-12-30T00:00:00Z' },
  ], qosClass: 'Guaranteed' };
  const s = computePodStatus(input({ pod: { status: prev }, regular: new Map([['a', { latest: inst('a') }]]) }));
  assert.equal(s.conditions.find((c: any) => c.type === 'Ready').lastTransitionTime, '2025-12-31T00:00:00Z');
  assert.equal(s.conditions.find((c: any) => c.type === 'PodScheduled').lastTransitionTime, '2025-12-30T00:00:00Z');
  assert.equal(s.conditions.find((c: any) => c.type === 'Initialized').lastTransitionTime, '2026-01-01T00:00:00Z');
  assert.equal(s.qosClass, 'Guaranteed', 'qosClass kept');
});
