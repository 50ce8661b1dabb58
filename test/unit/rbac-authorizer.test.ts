import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import type { UserInfo } from '../../src/apiserver/authn.js';
import { RbacAuthorizer, type Attributes, type RbacSource } from '../../src/apiserver/rbac.js';
import { matchLabelSelectorObject as selectorMatches } from '../../src/api/selectors.js';

/** An RbacSource over a list of objects (read on every call, so tests can add to it). */
function memorySource(objects: KObject[]): RbacSource {
  const of = (kind: string, ns?: string) => objects.filter((o) => o.kind === kind && (ns === undefined || o.metadata.namespace === ns));
  return {
    clusterRoles: () => of('ClusterRole'),
    clusterRoleBindings: () => of('ClusterRoleBinding'),
    roles: (ns) => of('Role', ns),
    roleBindings: (ns) => of('RoleBinding', ns),
    clusterRole: (name) => of('ClusterRole').find((o) => o.metadata.name === name),
    role: (ns, name) => of('Role', ns).find((o) => o.metadata.name === name),
  };
}

type Rule = Record<string, string[]>;
const clusterRole = (name: string, rules: Rule[], extra: Record<string, unknown> = {}, labels?: Record<string, string>): KObject =>
  ({ kind: 'ClusterRole', metadata: { name, labels }, rules, ...extra });
const role = (ns: string, name: string, rules: Rule[]): KObject => ({ kind: 'Role', metadata: { name, namespace: ns }, rules });
/** 'User:alice', 'Group:system:authenticated', 'SA:ns/name' or 'SA:name' (no namespace). */
const subject = (spec: string) => {
  const i = spec.indexOf(':');
  const kind = spec.slice(0, i);
  const rest = spec.slice(i + 1);
  if (kind !== 'SA') return { kind, name: rest, apiGroup: 'rbac.authorization.k8s.io' };
  const [ns, name] = rest.includes('/') ? rest.split('/') : ['', rest];
  return { kind: 'ServiceAccount', name, ...(ns ? { namespace: ns } : {}) };
};
const crb = (name: string, roleName: string, subjects: string[]): KObject =>
  ({ kind: 'ClusterRoleBinding', metadata: { name }, roleRef: { kind: 'ClusterRole', name: roleName }, subjects: subjects.map(subject) });
const rb = (ns: string, name: string, roleKind: string, roleName: string, subjects: string[]): KObject =>
  ({ kind: 'RoleBinding', metadata: { name, namespace: ns }, roleRef: { kind: roleKind, name: roleName }, subjects: subjects.map(subject) });

const OBJECTS: KObject[] = [
  clusterRole('pod-reader', [{ verbs: ['get', 'list', 'watch'], apiGroups: [''], resources: ['pods'] }]),
  clusterRole('deploy-scaler', [{ verbs: ['get', 'update', 'patch'], apiGroups: ['apps'], resources: ['deployments/scale'] }]),
  clusterRole('any-scale', [{ verbs: ['get'], apiGroups: ['*'], resources: ['*/scale'] }]),
  clusterRole('one-cm', [{ verbs: ['get', 'update'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['app-config'] }]),
  clusterRole('health', [{ verbs: ['get'], nonResourceURLs: ['/healthz', '/logs/*'] }]),
  clusterRole('everything-in-apps', [{ verbs: ['*'], apiGroups: ['apps'], resources: ['*'] }]),
  role('team-a', 'secret-reader', [{ verbs: ['get'], apiGroups: [''], resources: ['secrets'] }]),

  crb('readers', 'pod-reader', ['User:alice', 'Group:auditors']),
  crb('health', 'health', ['Group:system:authenticated']),
  crb('scalers', 'deploy-scaler', ['SA:ci/deployer']),
  crb('ns-less-sa', 'pod-reader', ['SA:orphan']),
  crb('any-scale', 'any-scale', ['User:hpa']),
  rb('team-a', 'secrets', 'Role', 'secret-reader', ['User:bob', 'SA:robot']),
  rb('team-a', 'apps-admin', 'ClusterRole', 'everything-in-apps', ['Group:team-a-devs']),
  rb('team-a', 'config', 'ClusterRole', 'one-cm', ['User:carol']),
  rb('team-a', 'dangling', 'Role', 'no-such-role', ['User:dave']),
];

const authz = new RbacAuthorizer(memorySource(OBJECTS));
const user = (name: string, ...groups: string[]): UserInfo => ({ name, groups: [...groups, 'system:authenticated'] });

function res(u: UserInfo, verb: string, group: string, resource: string, ns?: string, name?: string, subresource?: string): Attributes {
  return { user: u, verb, apiGroup: group, resource, subresource, namespace: ns, name, path: '', resourceRequest: true };
}
function url(u: UserInfo, verb: string, path: string): Attributes {
  return { user: u, verb, apiGroup: '', resource: '', path, resourceRequest: false };
}

test('allow/deny table', () => {
  const sa = (ns: string, name: string) => user(`system:serviceaccount:${ns}:${name}`, 'system:serviceaccounts', `system:serviceaccounts:${ns}`);
  const cases: [string, Attributes, boolean][] = [
    ['ClusterRoleBinding to a user, any namespace', res(user('alice'), 'list', '', 'pods', 'x'), true],
    ['... cluster-wide too', res(user('alice'), 'watch', '', 'pods'), true],
    ['... but not another verb', res(user('alice'), 'delete', '', 'pods', 'x', 'p'), false],
    ['... nor another group\'s resource of the same name', res(user('alice'), 'get', 'metrics.k8s.io', 'pods', 'x', 'p'), false],
    ['... nor a subresource of it', res(user('alice'), 'get', '', 'pods', 'x', 'p', 'log'), false],
    ['group subject', res(user('eve', 'auditors'), 'get', '', 'pods', 'y', 'p'), true],
    ['unbound user', res(user('mallory'), 'get', '', 'pods', 'y', 'p'), false],
    ['system:masters bypasses RBAC', res({ name: 'root', groups: ['system:masters'] }, 'delete', 'x.io', 'anything', 'z', 'n'), true],
    ['RoleBinding → Role grants in its namespace', res(user('bob'), 'get', '', 'secrets', 'team-a', 's1'), true],
    ['... not in another namespace', res(user('bob'), 'get', '', 'secrets', 'team-b', 's1'), false],
    ['... not cluster-wide', res(user('bob'), 'get', '', 'secrets'), false],
    ['RoleBinding → ClusterRole is namespaced', res(user('frank', 'team-a-devs'), 'delete', 'apps', 'deployments', 'team-a', 'web'), true],
    ['... with * resources covering subresources', res(user('frank', 'team-a-devs'), 'patch', 'apps', 'deployments', 'team-a', 'web', 'scale'), true],
    ['... but only there', res(user('frank', 'team-a-devs'), 'delete', 'apps', 'deployments', 'default', 'web'), false],
    ['SA subject in a ClusterRoleBinding', res(sa('ci', 'deployer'), 'update', 'apps', 'deployments', 'prod', 'web', 'scale'), true],
    ['... subresource rule does not grant the parent', res(sa('ci', 'deployer'), 'update', 'apps', 'deployments', 'prod', 'web'), false],
    ['... same SA name, other namespace', res(sa('other', 'deployer'), 'update', 'apps', 'deployments', 'prod', 'web', 'scale'), false],
    ['SA without namespace in a RoleBinding means the binding\'s namespace', res(sa('team-a', 'robot'), 'get', '', 'secrets', 'team-a', 's'), true],
    ['... not an SA of that name elsewhere', res(sa('team-b', 'robot'), 'get', '', 'secrets', 'team-a', 's'), false],
    ['SA without namespace in a ClusterRoleBinding matches nobody', res(sa('default', 'orphan'), 'get', '', 'pods', 'default', 'p'), false],
    ['*/scale matches any resource\'s scale', res(user('hpa'), 'get', 'apps', 'statefulsets', 'x', 's', 'scale'), true],
    ['*/scale is not the resource itself', res(user('hpa'), 'get', 'apps', 'statefulsets', 'x', 's'), false],
    ['*/scale is not another subresource', res(user('hpa'), 'get', 'apps', 'statefulsets', 'x', 's', 'status'), false],
    ['resourceNames: the named object', res(user('carol'), 'update', '', 'configmaps', 'team-a', 'app-config'), true],
    ['resourceNames: another object', res(user('carol'), 'update', '', 'configmaps', 'team-a', 'other'), false],
    ['resourceNames: a request without a name (list)', res(user('carol'), 'list', '', 'configmaps', 'team-a'), false],
    ['nonResourceURL exact', url(user('anyone'), 'get', '/healthz'), true],
    ['nonResourceURL exact does not prefix-match', url(user('anyone'), 'get', '/healthz/etcd'), false],
    ['nonResourceURL trailing *', url(user('anyone'), 'get', '/logs/kubelet.log'), true],
    ['nonResourceURL prefix base itself', url(user('anyone'), 'get', '/logs/'), true],
    ['nonResourceURL verb', url(user('anyone'), 'post', '/healthz'), false],
    ['resource rules never grant URLs', url(user('alice'), 'get', '/api/v1/pods'), false],
    ['URL rules never grant resources', res(user('anyone'), 'get', '', 'healthz'), false],
    ['binding to a missing role grants nothing', res(user('dave'), 'get', '', 'secrets', 'team-a', 's'), false],
  ];
  for (const [name, attrs, want] of cases) assert.equal(authz.authorize(attrs).allowed, want, name);
});

test('reasons name the granting binding as Kubernetes does; missing roles are reported on deny', () => {
  assert.equal(authz.authorize(res(user('alice'), 'get', '', 'pods', 'x', 'p')).reason,
    'RBAC: allowed by ClusterRoleBinding "readers" of ClusterRole "pod-reader" to User "alice"');
  assert.equal(authz.authorize(res(user('system:serviceaccount:team-a:robot'), 'get', '', 'secrets', 'team-a', 's')).reason,
    'RBAC: allowed by RoleBinding "secrets/team-a" of Role "secret-reader" to ServiceAccount "team-a/robot"');
  assert.equal(authz.authorize(res(user('mallory'), 'get', '', 'pods', 'x', 'p')).reason, '');
  assert.equal(authz.authorize(res(user('dave'), 'get', '', 'secrets', 'team-a', 's')).reason,
    'RBAC: role.rbac.authorization.k8s.io "no-such-role" not found in namespace "team-a"');
});

test('aggregated ClusterRoles take the rules of every role their selectors match, transitively', () => {
  const objects: KObject[] = [
    clusterRole('my-admin', [], { aggregationRule: { clusterRoleSelectors: [{ matchLabels: { 'example.com/aggregate-to-admin': 'true' } }] } }),
    clusterRole('my-view', [{ verbs: ['stale'], apiGroups: [''], resources: ['ignored'] }],
      { aggregationRule: { clusterRoleSelectors: [{ matchExpressions: [{ key: 'example.com/aggregate-to-view', operator: 'Exists' }] }] } },
      { 'example.com/aggregate-to-admin': 'true' }),
    clusterRole('crontabs-view', [{ verbs: ['get', 'list'], apiGroups: ['stable.example.com'], resources: ['crontabs'] }], {}, { 'example.com/aggregate-to-view': '' }),
    clusterRole('crontabs-admin', [{ verbs: ['*'], apiGroups: ['stable.example.com'], resources: ['crontabs'] }], {}, { 'example.com/aggregate-to-admin': 'true' }),
    clusterRole('unrelated', [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }], {}, { 'example.com/aggregate-to-admin': 'false' }),
    rb('ns', 'viewers', 'ClusterRole', 'my-view', ['User:v']),
    rb('ns', 'admins', 'ClusterRole', 'my-admin', ['User:a']),
  ];
  const az = new RbacAuthorizer(memorySource(objects));
  assert.equal(az.authorize(res(user('v'), 'list', 'stable.example.com', 'crontabs', 'ns')).allowed, true);
  assert.equal(az.authorize(res(user('v'), 'delete', 'stable.example.com', 'crontabs', 'ns', 'c')).allowed, false);
  assert.equal(az.authorize(res(user('v'), 'stale', '', 'ignored', 'ns')).allowed, false, 'an aggregated role\'s own rules are controller-owned, not used');
  assert.equal(az.authorize(res(user('a'), 'delete', 'stable.example.com', 'crontabs', 'ns', 'c')).allowed, true);
  assert.equal(az.authorize(res(user('a'), 'get', '', 'secrets', 'ns', 's')).allowed, false, 'a label value that does not match selects nothing');

  // A role added later (a new CRD's aggregate-to-view role) is picked up by the next decision.
  objects.push(clusterRole('widgets-view', [{ verbs: ['get'], apiGroups: ['w.io'], resources: ['widgets'] }], {}, { 'example.com/aggregate-to-view': 'true' }));
  assert.equal(az.authorize(res(user('a'), 'get', 'w.io', 'widgets', 'ns', 'w')).allowed, true, 'through my-admin ⊇ my-view');
});

test('aggregation cycles terminate', () => {
  const sel = (l: string) => ({ aggregationRule: { clusterRoleSelectors: [{ matchLabels: { [l]: 'true' } }] } });
  const objects = [
    clusterRole('a', [], sel('to-a'), { 'to-b': 'true' }),
    clusterRole('b', [], sel('to-b'), { 'to-a': 'true' }),
    clusterRole('leaf', [{ verbs: ['get'], apiGroups: [''], resources: ['pods'] }], {}, { 'to-a': 'true' }),
    crb('x', 'b', ['User:u']),
  ];
  assert.equal(new RbacAuthorizer(memorySource(objects)).authorize(res(user('u'), 'get', '', 'pods', 'n', 'p')).allowed, true);
});

test('rulesFor lists cluster-wide and namespaced grants, and wildcard for system:masters', () => {
  const r = authz.rulesFor(user('bob'), 'team-a');
  assert.deepEqual(r.resourceRules, [{ verbs: ['get'], apiGroups: [''], resources: ['secrets'] }]);
  assert.deepEqual(r.nonResourceRules, [{ verbs: ['get'], nonResourceURLs: ['/healthz', '/logs/*'] }]);
  assert.equal(r.incomplete, false);
  assert.deepEqual(authz.rulesFor(user('bob'), 'team-b').resourceRules, []);
  const carol = authz.rulesFor(user('carol'), 'team-a');
  assert.deepEqual(carol.resourceRules, [{ verbs: ['get', 'update'], apiGroups: [''], resources: ['configmaps'], resourceNames: ['app-config'] }]);
  const dave = authz.rulesFor(user('dave'), 'team-a');
  assert.equal(dave.incomplete, true);
  assert.match(dave.evaluationError ?? '', /no-such-role/);
  assert.deepEqual(authz.rulesFor({ name: 'admin', groups: ['system:masters'] }, 'x'), {
    resourceRules: [{ verbs: ['*'], apiGroups: ['*'], resources: ['*'] }],
    nonResourceRules: [{ verbs: ['*'], nonResourceURLs: ['*'] }],
    incomplete: false,
  });
});

test('label selectors: matchLabels and every matchExpressions operator', () => {
  const labels = { tier: 'web', env: 'prod' };
  assert.equal(selectorMatches({}, labels), true, 'empty selector selects everything');
  assert.equal(selectorMatches({ matchLabels: { tier: 'web' } }, labels), true);
  assert.equal(selectorMatches({ matchLabels: { tier: 'db' } }, labels), false);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'env', operator: 'In', values: ['prod', 'stage'] }] }, labels), true);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }] }, labels), false);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'NotIn', values: ['x'] }] }, labels), true);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'Exists' }] }, labels), false);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'team', operator: 'DoesNotExist' }] }, labels), true);
  assert.equal(selectorMatches({ matchExpressions: [{ key: 'tier', operator: 'Bogus' }] }, labels), false);
});
