// `skiff up --merge --context NAME`: the fetched kubeconfig's entries are renamed NAME and point at the
// installed host; merging replaces entries of that name and keeps the others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse } from 'yaml';
import { mergeKubeconfig, renameKubeconfig } from '../../src/cli/kubeconfig-merge.js';

const fetched = `apiVersion: v1
kind: Config
clusters: [{name: default, cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: Q0E=}}]
users: [{name: default, user: {client-certificate-data: Q0VSVA==, client-key-data: S0VZ}}]
contexts: [{name: default, context: {cluster: default, user: default}}]
current-context: default
`;

test('the fetched kubeconfig is renamed and points at the host', () => {
  const kc = renameKubeconfig(fetched, 'edge1', 'https://10.0.0.1:6443') as any;
  assert.deepEqual(kc.clusters, [{ name: 'edge1', cluster: { server: 'https://10.0.0.1:6443', 'certificate-authority-data': 'Q0E=' } }]);
  assert.deepEqual(kc.users, [{ name: 'edge1', user: { 'client-certificate-data': 'Q0VSVA==', 'client-key-data': 'S0VZ' } }]);
  assert.deepEqual(kc.contexts, [{ name: 'edge1', context: { cluster: 'edge1', user: 'edge1' } }]);
  assert.equal(kc['current-context'], 'edge1');
});

test('merging keeps other entries, replaces same-named ones, sets the current context', () => {
  const existing = `apiVersion: v1
kind: Config
clusters: [{name: other, cluster: {server: "https://192.0.2.1"}}, {name: edge1, cluster: {server: "https://old"}}]
users: [{name: other, user: {token: t}}]
contexts: [{name: other, context: {cluster: other, user: other}}]
current-context: other
`;
  const out = parse(mergeKubeconfig(existing, renameKubeconfig(fetched, 'edge1', 'https://10.0.0.1:6443')));
  assert.deepEqual(out.clusters.map((c: any) => [c.name, c.cluster.server]), [['other', 'https://192.0.2.1'], ['edge1', 'https://10.0.0.1:6443']]);
  assert.deepEqual(out.users.map((u: any) => u.name), ['other', 'edge1']);
  assert.equal(out['current-context'], 'edge1');
});

test('merging into nothing makes a complete kubeconfig', () => {
  const out = parse(mergeKubeconfig(undefined, renameKubeconfig(fetched, 'c', 'https://h:6443')));
  assert.equal(out.kind, 'Config');
  assert.equal(out.contexts.length, 1);
});

test('a kubeconfig without cluster or user is refused with a clear message', () => {
  assert.throws(() => renameKubeconfig('apiVersion: v1\nkind: Config\n', 'c', 'https://h'), /no cluster or user/);
});
