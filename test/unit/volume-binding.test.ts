// Which volume a claim gets, and what the scheduler makes of a pod's claims: the PV controller's
// matching rules and the scheduler's VolumeBinding decisions, as pure functions.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { findVolume, mismatch, type PersistentVolume, type PersistentVolumeClaim, type StorageClass } from '../../src/controllers/volumes/claim-matching.js';
import { volumeDecision, type VolumeListers } from '../../src/controllers/scheduler/volume-binding.js';
import type { Pod } from '../../src/controllers/scheduler/types.js';

const pv = (name: string, size: string, extra: Partial<NonNullable<PersistentVolume['spec']>> = {}, labels?: Record<string, string>): PersistentVolume => ({
  apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name, labels },
  spec: { capacity: { storage: size }, accessModes: ['ReadWriteOnce'], storageClassName: '', ...extra },
  status: { phase: 'Available' },
});
const pvc = (name: string, size: string, extra: Partial<NonNullable<PersistentVolumeClaim['spec']>> = {}, status?: PersistentVolumeClaim['status'], annotations?: Record<string, string>): PersistentVolumeClaim => ({
  apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: 'ns', uid: `uid-${name}`, annotations },
  spec: { accessModes: ['ReadWriteOnce'], storageClassName: '', resources: { requests: { storage: size } }, ...extra },
  status,
});
const onNode = (node: string) => ({ nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] } } });

test('the smallest free volume that fits wins; class, access modes, size and selector must match', () => {
  const vols = [pv('big', '10Gi'), pv('small', '2Gi'), pv('tiny', '500Mi'), pv('other-class', '2Gi', { storageClassName: 'fast' }),
    pv('rox', '1Gi', { accessModes: ['ReadOnlyMany'] }), pv('taken', '1Gi', { claimRef: { namespace: 'ns', name: 'someone', uid: 'x' } })];
  assert.equal(findVolume(pvc('c', '1Gi'), vols)?.metadata.name, 'small');
  assert.equal(findVolume(pvc('c', '1Gi', { storageClassName: 'fast' }), vols)?.metadata.name, 'other-class');
  assert.equal(findVolume(pvc('c', '20Gi'), vols), undefined);
  assert.equal(findVolume(pvc('c', '1Gi', { accessModes: ['ReadOnlyMany'] }), vols)?.metadata.name, 'rox');
  const labelled = [pv('a', '5Gi', {}, { tier: 'gold' }), pv('b', '1Gi')];
  assert.equal(findVolume(pvc('c', '1Gi', { selector: { matchLabels: { tier: 'gold' } } }), labelled)?.metadata.name, 'a');
  assert.equal(mismatch(pv('x', '1Gi'), pvc('c', '2Gi')), 'requested PV is too small');
});

test('a volume reserved for a claim goes to that claim only; node affinity narrows the choice once a node is chosen', () => {
  const reserved = pv('r', '5Gi', { claimRef: { namespace: 'ns', name: 'mine' } });
  assert.equal(findVolume(pvc('mine', '1Gi'), [pv('s', '1Gi'), reserved])?.metadata.name, 'r');
  assert.equal(findVolume(pvc('theirs', '1Gi'), [reserved]), undefined);
  const local = [pv('on-a', '1Gi', onNode('a')), pv('on-b', '1Gi', onNode('b'))];
  assert.equal(findVolume(pvc('c', '1Gi'), local, { name: 'b', labels: { 'kubernetes.io/hostname': 'b' } })?.metadata.name, 'on-b');
  assert.equal(findVolume(pvc('c', '1Gi'), local, { name: 'z', labels: { 'kubernetes.io/hostname': 'z' } }), undefined);
});

function listers(claims: PersistentVolumeClaim[], vols: PersistentVolume[], classes: StorageClass[] = []): VolumeListers {
  return {
    claim: (ns, name) => claims.find((c) => c.metadata.namespace === ns && c.metadata.name === name),
    volume: (name) => vols.find((v) => v.metadata.name === name),
    volumes: () => vols,
    storageClass: (name) => classes.find((c) => c.metadata.name === name),
  };
}
const podWith = (...claims: string[]): Pod => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns' },
  spec: { volumes: claims.map((c) => ({ name: c, persistentVolumeClaim: { claimName: c } })) } as Pod['spec'],
});
const wffc = (name: string, provisioner: string): StorageClass => ({ apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name }, provisioner, volumeBindingMode: 'WaitForFirstConsumer' });
const required = (p: Pod) => p.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms;

test('scheduler: missing and unbound immediate claims keep the pod pending, with kube-scheduler\'s messages', () => {
  const d1 = volumeDecision(podWith('nope'), listers([], []), 3);
  assert.deepEqual(d1, { kind: 'unschedulable', message: '0/3 nodes are available: persistentvolumeclaim "nope" not found. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.' });
  const d2 = volumeDecision(podWith('c'), listers([pvc('c', '1Gi')], []), 1);
  assert.equal(d2.kind === 'unschedulable' && d2.message, '0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.');
});

test('scheduler: a bound claim\'s volume affinity is ANDed with the pod\'s own node affinity', () => {
  const bound = pvc('c', '1Gi', { volumeName: 'v' }, { phase: 'Bound' });
  const pod = podWith('c');
  pod.spec!.affinity = { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [
    { matchExpressions: [{ key: 'arch', operator: 'In', values: ['arm'] }] }, { matchExpressions: [{ key: 'arch', operator: 'In', values: ['arm64'] }] }] } } };
  const d = volumeDecision(pod, listers([bound], [pv('v', '1Gi', onNode('a'))]), 2);
  assert.equal(d.kind, 'schedule');
  const terms = required((d as { pod: Pod }).pod)!;
  assert.equal(terms.length, 2);
  assert.deepEqual(terms[1]!.matchExpressions!.map((e) => e.values![0]), ['arm64', 'a']);
  assert.equal(required(pod)!.length, 2, 'the pod itself is not changed');
});

test('scheduler: WaitForFirstConsumer claims are delayed; static local volumes limit the nodes; a chosen node pins the pod', () => {
  const local = wffc('local', 'kubernetes.io/no-provisioner');
  const c = pvc('c', '1Gi', { storageClassName: 'local' });
  const d = volumeDecision(podWith('c'), listers([c], [pv('on-a', '1Gi', { ...onNode('a'), storageClassName: 'local' })], [local]), 2);
  assert.ok(d.kind === 'schedule' && d.delayed.length === 1 && !d.waiting);
  assert.deepEqual(required(d.pod)![0]!.matchExpressions![0]!.values, ['a']);
  const none = volumeDecision(podWith('c'), listers([c], [], [local]), 2);
  assert.equal(none.kind === 'unschedulable' && none.message.startsWith("0/2 nodes are available: 2 node(s) didn't find available persistent volumes to bind."), true);
  const dynamic = volumeDecision(podWith('d'), listers([pvc('d', '1Gi', { storageClassName: 'lp' })], [], [wffc('lp', 'rancher.io/local-path')]), 2);
  assert.ok(dynamic.kind === 'schedule' && dynamic.delayed.length === 1 && required(dynamic.pod) === undefined);
  const chosen = pvc('d', '1Gi', { storageClassName: 'lp' }, undefined, { 'volume.kubernetes.io/selected-node': 'b' });
  const pinned = volumeDecision(podWith('d'), listers([chosen], [], [wffc('lp', 'rancher.io/local-path')]), 2);
  assert.ok(pinned.kind === 'schedule' && pinned.waiting && pinned.delayed.length === 0);
  assert.deepEqual(required(pinned.pod)![0]!.matchFields, [{ key: 'metadata.name', operator: 'In', values: ['b'] }]);
});

test('scheduler: a generic ephemeral volume waits for its claim, which must be owned by the pod', () => {
  const pod: Pod = { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'ns', uid: 'pod-uid' },
    spec: { volumes: [{ name: 'scratch', ephemeral: { volumeClaimTemplate: { spec: {} } } }] } as Pod['spec'] };
  const lp = wffc('lp', 'rancher.io/local-path');
  const waiting = volumeDecision(pod, listers([], [], [lp]), 1);
  assert.match(waiting.kind === 'unschedulable' ? waiting.message : '', /waiting for ephemeral volume controller to create the persistentvolumeclaim "p-scratch"/);
  const foreign = pvc('p-scratch', '1Gi', { storageClassName: 'lp' });
  foreign.metadata.namespace = 'ns';
  const refused = volumeDecision(pod, listers([foreign], [], [lp]), 1);
  assert.match(refused.kind === 'unschedulable' ? refused.message : '', /PVC ns\/p-scratch was not created for pod ns\/p \(pod is not owner\)/);
  foreign.metadata.ownerReferences = [{ apiVersion: 'v1', kind: 'Pod', name: 'p', uid: 'pod-uid' }];
  const ok = volumeDecision(pod, listers([foreign], [], [lp]), 1);
  assert.ok(ok.kind === 'schedule' && ok.delayed.length === 1);
});
