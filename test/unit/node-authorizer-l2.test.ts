// Least privilege for the layer-2 announcer: a node may read the pools and advertisements, get the
// legacy pool ConfigMap, and write only `skiff-l2-<address>` Leases in kube-system (the authorizer
// for names it sees, NodeRestriction admission for the name of a Lease being created).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { authorizeNode } from '../../src/apiserver/node-authorizer.js';
import type { Attributes } from '../../src/apiserver/rbac.js';
import type { Store } from '../../src/storage/types.js';
import { LocalClient } from '../../src/apiserver/local-client.js';
import { Resources } from '../../src/client/types.js';
import { startLocalApi } from '../helpers/local-api.js';

const user = { name: 'system:node:n1', groups: ['system:nodes', 'system:authenticated'] };
const attrs = (verb: string, apiGroup: string, resource: string, namespace?: string, name?: string): Attributes => ({
  user: user as any, verb, apiGroup, resource, namespace, name, path: '/', resourceRequest: true,
});
const noPods = { list: () => ({ items: [] }), get: () => undefined } as unknown as Store;
const allowed = (a: Attributes) => authorizeNode(noPods, a)?.allowed;

test('node authorizer: layer-2 leases, pools, advertisements and the legacy ConfigMap, nothing more', () => {
  assert.equal(allowed(attrs('update', 'coordination.k8s.io', 'leases', 'kube-system', 'skiff-l2-10-0-0-51')), true);
  assert.equal(allowed(attrs('create', 'coordination.k8s.io', 'leases', 'kube-system')), true);
  assert.equal(allowed(attrs('update', 'coordination.k8s.io', 'leases', 'kube-system', 'kube-scheduler')), false);
  assert.equal(allowed(attrs('update', 'coordination.k8s.io', 'leases', 'default', 'skiff-l2-10-0-0-51')), false);
  assert.equal(allowed(attrs('list', 'metallb.io', 'ipaddresspools')), true);
  assert.equal(allowed(attrs('watch', 'metallb.io', 'l2advertisements')), true);
  assert.equal(allowed(attrs('update', 'metallb.io', 'ipaddresspools', 'metallb-system', 'p')), false);
  assert.equal(allowed(attrs('get', '', 'configmaps', 'metallb-system', 'config')), true);
  assert.equal(allowed(attrs('get', '', 'configmaps', 'metallb-system', 'other')), false);
  assert.equal(allowed(attrs('create', 'metallb.io', 'servicel2statuses', 'default')), true);
  assert.equal(allowed(attrs('delete', 'metallb.io', 'servicel2statuses', 'default', 'l2-web')), false);
});

test('NodeRestriction: a node creates skiff-l2 leases in kube-system, no other lease there', async (t) => {
  const api = await startLocalApi(t);
  const node = new LocalClient(api.objects, { user: user.name, groups: user.groups, manager: 'kubelet' });
  t.after(() => node.close());
  const lease = (name: string) => ({ apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: 'kube-system' }, spec: { holderIdentity: 'n1' } });
  await node.create(Resources.leases, 'kube-system', lease('skiff-l2-10-0-0-51'));
  await assert.rejects(node.create(Resources.leases, 'kube-system', lease('kube-controller-manager')), /forbidden/);
});
