// The dashboard's pure helpers (browser code without DOM): the kinds' API paths and hashes, custom
// resources from their CRD, and the phase read from kubectl's STATUS column.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { apiPath, kindById, kindOfCrd, kindOfRef, objectHash, sectionOf } from '../../src/dashboard/web/resources.js';
import { phaseOf } from '../../src/dashboard/web/phase.js';

test('API paths of built-in kinds, namespaced and cluster-scoped', () => {
  assert.equal(apiPath(kindById('configmaps')!, 'default', 'a b'), '/api/v1/namespaces/default/configmaps/a%20b');
  assert.equal(apiPath(kindById('configmaps')!), '/api/v1/configmaps');
  assert.equal(apiPath(kindById('deployments')!, 'kube-system'), '/apis/apps/v1/namespaces/kube-system/deployments');
  // A namespace given for a cluster-scoped kind is ignored.
  assert.equal(apiPath(kindById('clusterroles')!, 'default', 'view'), '/apis/rbac.authorization.k8s.io/v1/clusterroles/view');
  assert.equal(objectHash(kindById('persistentvolumes')!, '', 'pv1'), '#/obj/persistentvolumes/_/pv1');
  assert.equal(sectionOf('secrets'), 'config');
  assert.equal(kindById('nope'), undefined);
});

test('a CRD gives a kind at its storage version, with its scope', () => {
  const kind = kindOfCrd({ spec: { group: 'dash.example.com', scope: 'Cluster', names: { plural: 'widgets', kind: 'Widget' },
    versions: [{ name: 'v1beta1', served: true }, { name: 'v1', served: true, storage: true }] } })!;
  assert.equal(kind.id, 'crd~dash.example.com~v1~widgets~Cluster~Widget');
  assert.equal(kind.namespaced, false);
  assert.equal(apiPath(kind, 'default', 'w1'), '/apis/dash.example.com/v1/widgets/w1');
  assert.deepEqual(kindById(kind.id), kind);
  assert.equal(sectionOf(kind.id), 'cluster');
  assert.equal(kindOfCrd({ spec: { group: 'x' } }), undefined, 'an incomplete CRD gives no kind');
});

test('owner references map to the dashboard\'s kinds', () => {
  assert.equal(kindOfRef('apps/v1', 'ReplicaSet')?.id, 'replicasets');
  assert.equal(kindOfRef('v1', 'Node')?.id, 'nodes');
  assert.equal(kindOfRef('example.com/v1', 'ReplicaSet'), undefined, 'same kind name, other group');
});

test('the phase from kubectl\'s STATUS', () => {
  for (const [status, phase] of [['Running', 'Running'], ['CrashLoopBackOff', 'Running'], ['Terminating', 'Running'], ['Completed', 'Succeeded'],
    ['Error', 'Failed'], ['OOMKilled', 'Failed'], ['ExitCode:3', 'Failed'], ['Evicted', 'Failed'], ['Pending', 'Pending'], ['ContainerCreating', 'Pending'],
    ['Init:0/1', 'Pending'], ['ImagePullBackOff', 'Pending'], ['Unknown', 'Unknown']]) {
    assert.equal(phaseOf(status!), phase, status);
  }
});
