import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import type { UserInfo } from '../../src/apiserver/authn.js';
import { RbacAuthorizer, type Attributes } from '../../src/apiserver/rbac.js';
import { bootstrapRbacObjects } from '../../src/apiserver/rbac-bootstrap.js';

function authorizerOver(extra: KObject[] = []): RbacAuthorizer {
  const objects = [...bootstrapRbacObjects(), ...extra];
  const of = (kind: string, ns?: string) => objects.filter((o) => o.kind === kind && (ns === undefined || o.metadata.namespace === ns));
  return new RbacAuthorizer({
    clusterRoles: () => of('ClusterRole'),
    clusterRoleBindings: () => of('ClusterRoleBinding'),
    roles: (ns) => of('Role', ns),
    roleBindings: (ns) => of('RoleBinding', ns),
    clusterRole: (name) => of('ClusterRole').find((o) => o.metadata.name === name),
    role: (ns, name) => of('Role', ns).find((o) => o.metadata.name === name),
  });
}

const bindIn = (ns: string, clusterRole: string, user: string): KObject => ({
  kind: 'RoleBinding', metadata: { name: `${user}-${clusterRole}`, namespace: ns },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: clusterRole },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
});

const u = (name: string, ...groups: string[]): UserInfo => ({ name, groups: [...groups, 'system:authenticated'] });
const can = (az: RbacAuthorizer, user: UserInfo, verb: string, group: string, resource: string, ns?: string, subresource?: string, name = 'x') =>
  az.authorize({ user, verb, apiGroup: group, resource, subresource, namespace: ns, name, path: '', resourceRequest: true } as Attributes).allowed;
const canUrl = (az: RbacAuthorizer, user: UserInfo, path: string, verb = 'get') =>
  az.authorize({ user, verb, apiGroup: '', resource: '', path, resourceRequest: false }).allowed;

test('every default object carries Kubernetes\' bootstrap label and autoupdate annotation, names are unique', () => {
  const objects = bootstrapRbacObjects();
  const names = new Set<string>();
  for (const o of objects) {
    assert.equal(o.apiVersion, 'rbac.authorization.k8s.io/v1');
    assert.equal(o.metadata.labels?.['kubernetes.io/bootstrapping'], 'rbac-defaults', o.metadata.name);
    assert.equal(o.metadata.annotations?.['rbac.authorization.kubernetes.io/autoupdate'], 'true', o.metadata.name);
    const key = `${o.kind}/${o.metadata.name}`;
    assert.ok(!names.has(key), `duplicate ${key}`);
    names.add(key);
  }
  for (const name of ['cluster-admin', 'admin', 'edit', 'view', 'system:basic-user', 'system:discovery', 'system:public-info-viewer', 'system:node',
    'system:node-proxier', 'system:kube-scheduler', 'system:kube-controller-manager', 'system:monitoring']) {
    assert.ok(names.has(`ClusterRole/${name}`), name);
  }
  const bindingRefs = objects.filter((o) => o.kind === 'ClusterRoleBinding').map((o) => (o.roleRef as { name: string }).name);
  for (const ref of bindingRefs) assert.ok(names.has(`ClusterRole/${ref}`), `binding refers to existing role ${ref}`);
  const admin = objects.find((o) => o.metadata.name === 'admin')!;
  assert.deepEqual(admin.aggregationRule, { clusterRoleSelectors: [{ matchLabels: { 'rbac.authorization.k8s.io/aggregate-to-admin': 'true' } }] });
  assert.equal(bootstrapRbacObjects()[0] === objects[0], false, 'fresh objects each call');
});

test('system:masters has cluster-admin through its binding, independent of the superuser shortcut', () => {
  const cr = bootstrapRbacObjects().find((o) => o.kind === 'ClusterRoleBinding' && o.metadata.name === 'cluster-admin')!;
  assert.deepEqual(cr.subjects, [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:masters' }]);
  const az = authorizerOver([{ kind: 'ClusterRoleBinding', metadata: { name: 'root' }, roleRef: { kind: 'ClusterRole', name: 'cluster-admin' }, subjects: [{ kind: 'User', name: 'root' }] }]);
  assert.ok(can(az, u('root'), 'delete', 'anything.io', 'widgets', 'ns'));
  assert.ok(canUrl(az, u('root'), '/metrics', 'get'));
});

test('view does not read secrets or exec into pods; edit does; admin adds RBAC inside the namespace', () => {
  const az = authorizerOver([bindIn('dev', 'view', 'viewer'), bindIn('dev', 'edit', 'editor'), bindIn('dev', 'admin', 'boss')]);
  const viewer = u('viewer');
  const editor = u('editor');
  const boss = u('boss');

  for (const v of ['get', 'list', 'watch']) assert.equal(can(az, viewer, v, '', 'secrets', 'dev'), false, `view must not ${v} secrets`);
  assert.equal(can(az, viewer, 'create', '', 'pods', 'dev', 'exec'), false);
  assert.equal(can(az, viewer, 'get', '', 'pods', 'dev'), true);
  assert.equal(can(az, viewer, 'get', '', 'pods', 'dev', 'log'), true);
  assert.equal(can(az, viewer, 'list', 'apps', 'deployments', 'dev'), true);
  assert.equal(can(az, viewer, 'get', 'apps', 'deployments', 'dev', 'scale'), true);
  assert.equal(can(az, viewer, 'update', 'apps', 'deployments', 'dev'), false);
  assert.equal(can(az, viewer, 'list', '', 'pods', 'prod'), false, 'only where bound');

  assert.equal(can(az, editor, 'get', '', 'secrets', 'dev'), true);
  assert.equal(can(az, editor, 'create', '', 'pods', 'dev', 'exec'), true);
  assert.equal(can(az, editor, 'patch', 'apps', 'deployments', 'dev', 'scale'), true);
  assert.equal(can(az, editor, 'list', 'batch', 'jobs', 'dev'), true, 'edit includes view');
  assert.equal(can(az, editor, 'create', 'rbac.authorization.k8s.io', 'rolebindings', 'dev'), false);
  assert.equal(can(az, editor, 'update', '', 'resourcequotas', 'dev'), false);

  assert.equal(can(az, boss, 'create', 'rbac.authorization.k8s.io', 'rolebindings', 'dev'), true);
  assert.equal(can(az, boss, 'delete', '', 'secrets', 'dev'), true, 'admin includes edit');
  assert.equal(can(az, boss, 'list', '', 'pods', 'dev'), true, 'admin includes view through edit');
  assert.equal(can(az, boss, 'create', '', 'namespaces'), false);
});

test('a CRD\'s aggregate-to-view role extends view, edit and admin', () => {
  const crontabView: KObject = {
    kind: 'ClusterRole', metadata: { name: 'crontab-view', labels: { 'rbac.authorization.k8s.io/aggregate-to-view': 'true' } },
    rules: [{ verbs: ['get', 'list', 'watch'], apiGroups: ['stable.example.com'], resources: ['crontabs'] }],
  };
  const az = authorizerOver([crontabView, bindIn('dev', 'view', 'viewer'), bindIn('dev', 'admin', 'boss')]);
  assert.ok(can(az, u('viewer'), 'list', 'stable.example.com', 'crontabs', 'dev'));
  assert.ok(can(az, u('boss'), 'get', 'stable.example.com', 'crontabs', 'dev'));
  assert.equal(can(az, u('viewer'), 'delete', 'stable.example.com', 'crontabs', 'dev'), false);
});

test('discovery and public info for authenticated users; components get their roles', () => {
  const az = authorizerOver();
  const someone = u('someone');
  for (const p of ['/api', '/api/v1', '/apis', '/apis/apps/v1', '/version', '/openapi/v3', '/openapi/v3/apis/apps/v1', '/healthz', '/livez', '/readyz']) {
    assert.ok(canUrl(az, someone, p), p);
  }
  assert.equal(canUrl(az, someone, '/metrics'), false);
  assert.equal(canUrl(az, { name: 'system:anonymous', groups: ['system:unauthenticated'] }, '/version'), true, 'public-info-viewer');
  assert.equal(canUrl(az, { name: 'system:anonymous', groups: ['system:unauthenticated'] }, '/api'), false, 'discovery needs authentication');
  assert.ok(canUrl(az, u('prom', 'system:monitoring'), '/metrics'));
  assert.ok(can(az, someone, 'create', 'authorization.k8s.io', 'selfsubjectaccessreviews'), 'kubectl auth can-i');
  assert.ok(can(az, someone, 'create', 'authorization.k8s.io', 'selfsubjectrulesreviews'));
  assert.ok(can(az, someone, 'create', 'authentication.k8s.io', 'selfsubjectreviews'), 'kubectl auth whoami');
  assert.equal(can(az, someone, 'list', '', 'pods', 'default'), false);

  const scheduler = u('system:kube-scheduler');
  assert.ok(can(az, scheduler, 'create', '', 'pods', 'default', 'binding'));
  assert.ok(can(az, scheduler, 'update', 'coordination.k8s.io', 'leases', 'kube-system', undefined, 'kube-scheduler'));
  assert.equal(can(az, scheduler, 'update', 'coordination.k8s.io', 'leases', 'kube-system', undefined, 'other'), false);
  assert.equal(can(az, scheduler, 'create', '', 'pods', 'default'), false);
  const proxy = u('system:kube-proxy');
  assert.ok(can(az, proxy, 'watch', 'discovery.k8s.io', 'endpointslices'));
  assert.equal(can(az, proxy, 'get', '', 'secrets', 'default'), false);
  const kcm = u('system:kube-controller-manager');
  assert.ok(can(az, kcm, 'list', 'apps', 'deployments'));
  assert.equal(can(az, kcm, 'update', 'apps', 'deployments', 'default'), false);
  // Kubernetes leaves system:node unbound (the Node authorizer serves nodes); so a node gets nothing from RBAC.
  assert.equal(can(az, u('system:node:n1', 'system:nodes'), 'get', '', 'pods', 'default'), false);
});
