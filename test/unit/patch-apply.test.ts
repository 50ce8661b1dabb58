import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { loadSchemaSet } from '../../src/api/schema.js';
import { FieldSet, pathString, serverSideApply, updateManagedFields, type ApplyOptions } from '../../src/apiserver/patch/index.js';
import { ApiError } from '../../src/api/status.js';

const schemas = loadSchemaSet();
const schema = schemas.forKind('apps', 'v1', 'Deployment');
const T1 = '2024-05-01T10:00:00Z';
const T2 = '2024-05-01T11:00:00Z';
const T3 = '2024-05-01T12:00:00Z';

function opts(manager: string, extra: Partial<ApplyOptions> = {}): ApplyOptions {
  return { manager, apiVersion: 'apps/v1', kind: 'Deployment', schema, schemas, time: T2, ...extra };
}

function config(spec: Record<string, unknown>, labels?: Record<string, string>): KObject {
  return { apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'web', namespace: 'default', ...(labels ? { labels } : {}) }, spec };
}

const template = (image: string, extra: Record<string, unknown> = {}) => ({
  metadata: { labels: { app: 'web' } },
  spec: { containers: [{ name: 'app', image, ...extra }] },
});
const base = () => config({ replicas: 2, selector: { matchLabels: { app: 'web' } }, template: template('nginx:1.25') }, { app: 'web' });

function owned(obj: KObject): Record<string, string[]> {
  return Object.fromEntries((obj.metadata.managedFields ?? []).map((e) => [
    `${e.manager}/${e.operation}`, FieldSet.fromFieldsV1(e.fieldsV1).paths().map(pathString)]));
}

function conflictOf(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ApiError);
    return e;
  }
  assert.fail('expected a conflict');
}

test('apply creates a missing object and records the applier', () => {
  const obj = serverSideApply(undefined, base(), opts('kubectl'));
  assert.deepEqual(obj.spec, base().spec);
  const mf = obj.metadata.managedFields!;
  assert.equal(mf.length, 1);
  assert.deepEqual({ ...mf[0], fieldsV1: undefined }, { manager: 'kubectl', operation: 'Apply', apiVersion: 'apps/v1', time: T2, fieldsType: 'FieldsV1', fieldsV1: undefined });
  assert.deepEqual(mf[0].fieldsV1, {
    'f:metadata': { 'f:labels': { 'f:app': {} } },
    'f:spec': {
      'f:replicas': {}, 'f:selector': {},
      'f:template': {
        'f:metadata': { 'f:labels': { 'f:app': {} } },
        'f:spec': { 'f:containers': { 'k:{"name":"app"}': { '.': {}, 'f:image': {}, 'f:name': {} } } },
      },
    },
  });
});

test('apply conflicts with a field another manager set, worded as Kubernetes', () => {
  // kubectl create / client-side apply made the object (an Update by kubectl-client-side-apply).
  const created = base();
  created.metadata.managedFields = updateManagedFields(undefined, created, { manager: 'kubectl-client-side-apply', apiVersion: 'apps/v1', time: T1, schema, schemas });

  const err = conflictOf(() => serverSideApply(created, config({ replicas: 3 }), opts('kubectl')));
  assert.equal(err.code, 409);
  assert.equal(err.reason, 'Conflict');
  assert.equal(err.message, 'Apply failed with 1 conflict: conflict with "kubectl-client-side-apply" using apps/v1: .spec.replicas');
  assert.deepEqual(err.details, { causes: [{ reason: 'FieldManagerConflict', message: 'conflict with "kubectl-client-side-apply" using apps/v1', field: '.spec.replicas' }] });

  const two = conflictOf(() => serverSideApply(created, config({ replicas: 3, template: template('nginx:1.26') }), opts('kubectl')));
  assert.equal(two.message, 'Apply failed with 2 conflicts: conflicts with "kubectl-client-side-apply" using apps/v1:\n- .spec.replicas\n- .spec.template.spec.containers[name="app"].image');
  assert.deepEqual(two.details?.causes?.map((c) => c.field), ['.spec.replicas', '.spec.template.spec.containers[name="app"].image']);

  // Conflicts with another applier name it without an API version; subresources are named.
  const applied = serverSideApply(undefined, base(), opts('helm'));
  assert.equal(conflictOf(() => serverSideApply(applied, config({ replicas: 5 }), opts('kubectl'))).message,
    'Apply failed with 1 conflict: conflict with "helm": .spec.replicas');
  const withStatus = { ...created, status: { replicas: 1 } };
  withStatus.metadata.managedFields = updateManagedFields(created, withStatus, { manager: 'k3s', apiVersion: 'apps/v1', subresource: 'status', time: T1, schema, schemas });
  const statusConflict = conflictOf(() => serverSideApply(withStatus, { ...config({}), status: { replicas: 2 } }, opts('ctl', { subresource: 'status' })));
  assert.equal(statusConflict.message, 'Apply failed with 1 conflict: conflict with "k3s" with subresource "status" using apps/v1: .status.replicas');
});

test('apply: equal values share ownership, force takes it over', () => {
  const created = base();
  created.metadata.managedFields = updateManagedFields(undefined, created, { manager: 'kubectl-client-side-apply', apiVersion: 'apps/v1', time: T1, schema, schemas });

  const shared = serverSideApply(created, config({ replicas: 2 }), opts('kubectl'));
  assert.ok(owned(shared)['kubectl/Apply'].includes('.spec.replicas'));
  assert.ok(owned(shared)['kubectl-client-side-apply/Update'].includes('.spec.replicas'));

  const forced = serverSideApply(created, config({ replicas: 7 }), opts('kubectl', { force: true }));
  assert.equal((forced.spec as Record<string, unknown>).replicas, 7);
  assert.deepEqual(owned(forced)['kubectl/Apply'], ['.spec.replicas']);
  assert.ok(!owned(forced)['kubectl-client-side-apply/Update'].includes('.spec.replicas'));
  // The rest of the object is untouched and still owned by the first manager.
  assert.deepEqual((forced.spec as Record<string, unknown>).template, template('nginx:1.25'));
  assert.equal(forced.metadata.managedFields![0].manager, 'kubectl', 'Apply entries sort first');
});

test('apply removes fields the applier stopped applying unless someone else owns them', () => {
  const first = serverSideApply(undefined, config({
    replicas: 2, selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'a', env: [{ name: 'X', value: '1' }] }, { name: 'side', image: 'b' }] } },
  }, { app: 'web', tier: 'fe' }), opts('kubectl', { time: T1 }));

  // Another manager (an HPA-like updater) takes over replicas.
  const scaled = structuredClone(first);
  (scaled.spec as Record<string, unknown>).replicas = 4;
  scaled.metadata.managedFields = updateManagedFields(first, scaled, { manager: 'hpa', apiVersion: 'apps/v1', time: T2, schema, schemas });

  // The applier drops replicas, the tier label, the env var and the sidecar.
  const next = serverSideApply(scaled, config({
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'app', image: 'a' }] } },
  }, { app: 'web' }), opts('kubectl', { time: T3 }));
  const spec = next.spec as Record<string, any>;
  assert.equal(spec.replicas, 4, 'kept: owned by hpa');
  assert.deepEqual(next.metadata.labels, { app: 'web' });
  assert.deepEqual(spec.template.spec.containers, [{ name: 'app', image: 'a' }]);
  assert.deepEqual(Object.keys(owned(next)).sort(), ['hpa/Update', 'kubectl/Apply']);
  assert.equal(next.metadata.managedFields![0].time, T3);
});

test('apply merges map-lists by key and keeps other managers\' elements in place', () => {
  const first = serverSideApply(undefined, base(), opts('kubectl', { time: T1 }));
  const other = serverSideApply(first, config({ template: { spec: { containers: [{ name: 'debug', image: 'busybox' }] } } }), opts('debugger'));
  const containers = (other.spec as any).template.spec.containers as { name: string }[];
  assert.deepEqual(containers.map((c) => c.name), ['app', 'debug']);
  // Re-applying the first configuration neither conflicts nor removes the other applier's container.
  const again = serverSideApply(other, base(), opts('kubectl', { time: T3 }));
  assert.deepEqual(((again.spec as any).template.spec.containers as { name: string }[]).map((c) => c.name), ['app', 'debug']);
  assert.deepEqual(again.spec, other.spec);
});

test('apply: ports keyed by containerPort and protocol (TCP by default), finalizers as a set', () => {
  const cfg = config({ template: template('a', { ports: [{ containerPort: 80 }, { containerPort: 53, protocol: 'UDP' }] }) });
  cfg.metadata.finalizers = ['x.io/f'];
  const obj = serverSideApply(undefined, cfg, opts('kubectl'));
  const paths = owned(obj)['kubectl/Apply'];
  assert.ok(paths.includes('.spec.template.spec.containers[name="app"].ports[containerPort=80,protocol="TCP"].containerPort'));
  assert.ok(paths.includes('.spec.template.spec.containers[name="app"].ports[containerPort=53,protocol="UDP"].protocol'));
  assert.ok(paths.includes('.metadata.finalizers[="x.io/f"]'));
});

test('apply: a no-op keeps the entry time; status is not owned through the main resource', () => {
  const first = serverSideApply(undefined, { ...base(), status: { replicas: 9 } }, opts('kubectl', { time: T1 }));
  assert.ok(!owned(first)['kubectl/Apply'].some((p) => p.startsWith('.status')));
  const again = serverSideApply(first, base(), opts('kubectl', { time: T3 }));
  assert.equal(again.metadata.managedFields![0].time, T1);
});

test('apply on a custom resource without schema merges maps and replaces lists', () => {
  const o = { manager: 'kubectl', apiVersion: 'example.com/v1', kind: 'Widget', schemas, time: T1 };
  const cr = (spec: Record<string, unknown>) => ({ apiVersion: 'example.com/v1', kind: 'Widget', metadata: { name: 'w' }, spec });
  const first = serverSideApply(undefined, cr({ a: 1, list: [1, 2] }), o);
  const second = serverSideApply(first, cr({ b: 2, list: [3] }), { ...o, manager: 'other', force: true });
  assert.deepEqual(second.spec, { a: 1, b: 2, list: [3] });
});

test('apply rejects unusable configurations', () => {
  const cases: [unknown, Partial<ApplyOptions>, number, string | RegExp][] = [
    [[1], {}, 400, 'error decoding YAML: error unmarshaling JSON: while decoding JSON: json: cannot unmarshal array into Go value of type map[string]interface {}'],
    [{ ...base(), kind: 'StatefulSet' }, {}, 400, 'invalid object type: apps/v1, Kind=StatefulSet'],
    [{ ...base(), apiVersion: 'apps/v1beta1' }, { kind: undefined }, 400, 'Incorrect version specified in apply patch. Specified patch version: apps/v1beta1, expected: apps/v1'],
    [{ ...base(), metadata: { name: 'web', managedFields: [] } }, {}, 400, 'metadata.managedFields must be nil'],
    [config({ template: { spec: { containers: [{ name: 'a' }, { name: 'a' }] } } }), {}, 500,
      /^failed to create typed patch object \(default\/web; apps\/v1, Kind=Deployment\): \.spec\.template\.spec\.containers: duplicate entries for key \[name="a"\]$/],
    [config({ template: { spec: { containers: [{ image: 'x' }] } } }), {}, 500, /omits all key fields \["name"\]/],
  ];
  for (const [cfg, extra, code, message] of cases) {
    assert.throws(() => serverSideApply(undefined, cfg, opts('kubectl', extra)), (e: unknown) => {
      assert.ok(e instanceof ApiError);
      assert.equal(e.code, code);
      if (typeof message === 'string') assert.equal(e.message, message);
      else assert.match(e.message, message);
      return true;
    });
  }
});

test('kubectl\'s server-side apply takes over what client-side apply set (last-applied annotation), others still conflict', () => {
  // As `kubectl apply` (client-side) leaves it: the annotation and an Update entry of its own.
  const csa = base();
  csa.metadata.annotations = { 'kubectl.kubernetes.io/last-applied-configuration': JSON.stringify(base()) };
  const created = { ...csa, metadata: { ...csa.metadata, managedFields: updateManagedFields(undefined, csa, { manager: 'kubectl-client-side-apply', apiVersion: 'apps/v1', time: T1, schema, schemas }) } } as KObject;
  const changed = config({ replicas: 5, selector: { matchLabels: { app: 'web' } }, template: template('nginx:1.25') }, { app: 'web' });
  // Another manager gets a conflict on replicas; `kubectl` does not, and ends up owning it.
  assert.equal(conflictOf(() => serverSideApply(created, changed, opts('helm'))).code, 409);
  const out = serverSideApply(created, changed, opts('kubectl'));
  assert.equal((out.spec as any).replicas, 5);
  assert.ok(owned(out)['kubectl/Apply']!.includes('.spec.replicas'));
  assert.ok(!(owned(out)['kubectl-client-side-apply/Update'] ?? []).includes('.spec.replicas'));
  // The annotation now holds what kubectl applied (Go's encoding: sorted keys).
  const annotation = out.metadata.annotations!['kubectl.kubernetes.io/last-applied-configuration']!;
  assert.deepEqual(JSON.parse(annotation), changed);
  assert.ok(annotation.startsWith('{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"labels":'), annotation);
  // Other managers leave it alone.
  const byHelm = serverSideApply(created, config({ paused: true }), opts('helm'));
  assert.equal(byHelm.metadata.annotations!['kubectl.kubernetes.io/last-applied-configuration'], JSON.stringify(base()));
  // A field changed since (live differs from the annotation) is no longer client-side apply's: a conflict.
  const edited = structuredClone(created) as any;
  edited.spec.replicas = 7;
  edited.metadata.managedFields = updateManagedFields(created, edited, { manager: 'kubectl-edit', apiVersion: 'apps/v1', time: T3, schema, schemas });
  const err = conflictOf(() => serverSideApply(edited, changed, opts('kubectl')));
  assert.match(err.message, /conflict with "kubectl-edit" using apps\/v1: \.spec\.replicas/);
});
