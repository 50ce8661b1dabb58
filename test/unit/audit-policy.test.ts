// The audit policy's rule matching (first match wins, as kube-apiserver's checker) and the log
// writer's batching and lumberjack-style rotation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { evaluate, parsePolicy, type AuditAttributes } from '../../src/apiserver/audit/policy.js';
import { AuditWriter } from '../../src/apiserver/audit/writer.js';

const POLICY = `
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
  - level: None
    users: ["system:kube-proxy"]
    verbs: ["watch"]
  - level: None
    nonResourceURLs: ["/healthz*", "/version"]
  - level: Metadata
    resources: [{ group: "", resources: ["secrets", "configmaps"] }]
  - level: Request
    resources: [{ group: "", resources: ["pods/log", "pods/status"] }]
    namespaces: ["kube-system"]
  - level: RequestResponse
    resources: [{ group: "apps", resources: ["*/scale"] }]
    omitStages: [ResponseStarted]
  - level: Metadata
    resources: [{ group: "", resources: ["nodes"], resourceNames: ["n1"] }]
  - level: RequestResponse
    userGroups: ["system:masters"]
  - level: Metadata
`;

const attrs = (o: Partial<AuditAttributes>): AuditAttributes => ({
  user: { name: 'alice', groups: ['system:authenticated'] }, verb: 'get', resourceRequest: true, path: '/api/v1/x',
  apiGroup: '', resource: 'pods', subresource: '', namespace: 'default', name: '', ...o,
});

test('first matching rule wins; users, groups, verbs, resources, subresources, namespaces, names, URLs', () => {
  const p = parsePolicy(POLICY);
  const level = (o: Partial<AuditAttributes>) => evaluate(p, attrs(o)).level;
  assert.equal(level({ user: { name: 'system:kube-proxy', groups: [] }, verb: 'watch', resource: 'services' }), 'None');
  assert.equal(level({ user: { name: 'system:kube-proxy', groups: [] }, verb: 'list', resource: 'services' }), 'Metadata');
  assert.equal(level({ resourceRequest: false, path: '/healthz/etcd', verb: 'get', resource: '' }), 'None');
  assert.equal(level({ resourceRequest: false, path: '/metrics', verb: 'get', resource: '' }), 'Metadata');
  assert.equal(level({ resource: 'secrets', user: { name: 'admin', groups: ['system:masters'] } }), 'Metadata', 'secrets before the admin rule');
  assert.equal(level({ resource: 'pods', subresource: 'log', namespace: 'kube-system' }), 'Request');
  assert.equal(level({ resource: 'pods', subresource: 'log', namespace: 'default' }), 'Metadata');
  assert.equal(level({ resource: 'pods', namespace: 'kube-system' }), 'Metadata', 'pods/log does not match pods');
  assert.equal(level({ apiGroup: 'apps', resource: 'deployments', subresource: 'scale' }), 'RequestResponse');
  assert.equal(level({ apiGroup: 'apps', resource: 'deployments' }), 'Metadata');
  assert.equal(level({ resource: 'nodes', name: 'n1', namespace: '' }), 'Metadata');
  assert.equal(level({ resource: 'nodes', name: 'n2', namespace: '', user: { name: 'a', groups: ['system:masters'] } }), 'RequestResponse');
  const omit = evaluate(p, attrs({ apiGroup: 'apps', resource: 'statefulsets', subresource: 'scale' })).omitStages;
  assert.deepEqual([...omit].sort(), ['RequestReceived', 'ResponseStarted']);
});

test('malformed policies are refused with the reason', () => {
  assert.throws(() => parsePolicy('kind: Policy\napiVersion: v1\nrules: [{level: None}]'), /audit\.k8s\.io\/v1/);
  assert.throws(() => parsePolicy('kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: Everything}]'), /rules\[0\]\.level/);
  assert.throws(() => parsePolicy('kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: None, omitStages: [Later]}]'), /unknown stage/);
  assert.throws(() => parsePolicy('kind: Policy\napiVersion: audit.k8s.io/v1\nrules: [{level: None, resources: [{}], nonResourceURLs: ["/x"]}]'), /mutually exclusive/);
});

test('the writer batches lines and rotates by size, keeping maxbackup files', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-audit-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'audit.log');
  const w = new AuditWriter({ path, maxSizeMb: 1, maxBackups: 2, flushMs: 5 });
  const line = JSON.stringify({ kind: 'Event', pad: 'x'.repeat(10_000) });
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 80; i++) w.write(line);   // ~800 KB a round: every round but the first rotates
    await w.flush();
  }
  await w.close();
  const files = readdirSync(dir).sort();
  assert.equal(files.length, 3, `current + 2 backups: ${files.join(', ')}`);
  assert.ok(files.every((f) => f === 'audit.log' || /^audit-\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d\.\d{3}\.log$/.test(f)), files.join(', '));
  const lines = readFileSync(path, 'utf8').trimEnd().split('\n');
  assert.equal(lines.length, 80);
  assert.ok(lines.every((l) => JSON.parse(l).kind === 'Event'));
});
