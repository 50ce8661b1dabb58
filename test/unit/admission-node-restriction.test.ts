// NodeRestriction (issue 11): a node could remove an admin's taint from its own Node and label
// itself node-role.kubernetes.io/control-plane or node-restriction.kubernetes.io/*.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isForbiddenNodeLabel, restrictOwnNodeCreate, restrictOwnNodeUpdate } from '../../src/apiserver/admission-node-restriction.js';

const node = (labels: Record<string, string>, taints: any[] = []) => ({ metadata: { name: 'n1', labels }, spec: { taints } });
const admin = { key: 'dedicated', value: 'db', effect: 'NoSchedule' };

test('a node may not remove, add or change taints on its own Node', () => {
  assert.throws(() => restrictOwnNodeUpdate('n1', node({}, []), node({}, [admin])), /node "n1" is not allowed to modify taints/);
  assert.throws(() => restrictOwnNodeUpdate('n1', node({}, [admin, { key: 'x', effect: 'NoExecute' }]), node({}, [admin])), /modify taints/);
  restrictOwnNodeUpdate('n1', node({ a: 'b' }, [admin]), node({}, [admin]));   // other changes are fine
});

test('a node may not set or change node-role or node-restriction labels; kubelet labels are fine', () => {
  assert.throws(() => restrictOwnNodeUpdate('n1', node({ 'node-role.kubernetes.io/control-plane': 'true' }), node({})),
    /is not allowed to modify labels: node-role.kubernetes.io\/control-plane/);
  assert.throws(() => restrictOwnNodeUpdate('n1', node({}), node({ 'node-restriction.kubernetes.io/pool': 'a' })), /modify labels: node-restriction/);
  assert.throws(() => restrictOwnNodeCreate('n1', node({ 'node-restriction.kubernetes.io/pool': 'a' })), /not allowed to set the following labels: node-restriction.kubernetes.io\/pool/);
  restrictOwnNodeUpdate('n1', node({ 'kubernetes.io/hostname': 'n1', 'topology.kubernetes.io/zone': 'z', 'node.kubernetes.io/x': 'y', 'example.com/a': 'b' }), node({}));
  for (const k of ['node-role.kubernetes.io/worker', 'foo.k8s.io/x', 'x.node-restriction.kubernetes.io/y']) assert.ok(isForbiddenNodeLabel(k), k);
  for (const k of ['kubelet.kubernetes.io/x', 'beta.kubernetes.io/os', 'plain', 'example.com/kubernetes.io']) assert.ok(!isForbiddenNodeLabel(k), k);
});
