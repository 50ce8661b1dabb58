import { test } from 'node:test';
import assert from 'node:assert/strict';
import { buildSchemaSet, loadSchemaSet } from '../../src/api/schema.js';
import { applyStrategicMergePatch, supportsStrategicMerge } from '../../src/apiserver/patch/index.js';
import { ApiError } from '../../src/api/status.js';

// A hand-built schema: a list merged by key, a merged scalar list, a replaced list, a retainKeys union.
const fixture = buildSchemaSet({
  TWidget: {
    properties: {
      items: { kind: 'array', items: { kind: 'object', ref: 'TItem' }, patchStrategy: 'merge', patchMergeKey: 'name' },
      tags: { kind: 'array', items: { kind: 'string' }, patchStrategy: 'merge' },
      plain: { kind: 'array', items: { kind: 'object', ref: 'TItem' } },
      source: { kind: 'object', ref: 'TSource', patchStrategy: 'retainKeys' },
      labels: { kind: 'map', values: { kind: 'string' } },
    },
    required: [],
  },
  TItem: { properties: { name: { kind: 'string' }, v: { kind: 'integer' }, sub: { kind: 'array', items: { kind: 'string' }, patchStrategy: 'merge' } }, required: [] },
  TSource: { properties: { type: { kind: 'string' }, a: { kind: 'string' }, b: { kind: 'string' } }, required: [] },
});
const widget = fixture.type('TWidget');

function smp(doc: unknown, patch: unknown): unknown {
  return applyStrategicMergePatch(doc, patch, widget, fixture);
}

function rejects(doc: unknown, patch: unknown, code: number, message: string | RegExp): void {
  assert.throws(() => smp(doc, patch), (e: unknown) => {
    assert.ok(e instanceof ApiError);
    assert.equal(e.code, code);
    if (typeof message === 'string') assert.equal(e.message, message);
    else assert.match(e.message, message);
    return true;
  });
}

test('strategic merge: table of fixture cases', () => {
  const base = { items: [{ name: 'a', v: 1 }, { name: 'b', v: 2 }], tags: ['x', 'y'], plain: [{ name: 'p' }], labels: { k: 'v' } };
  const cases: [string, unknown, unknown][] = [
    ['merge element by key', { items: [{ name: 'b', v: 20 }] }, { ...base, items: [{ name: 'a', v: 1 }, { name: 'b', v: 20 }] }],
    ['new element goes before server-only ones', { items: [{ name: 'c' }] },
      { ...base, items: [{ name: 'c' }, { name: 'a', v: 1 }, { name: 'b', v: 2 }] }],
    ['delete element by key', { items: [{ name: 'a', $patch: 'delete' }] }, { ...base, items: [{ name: 'b', v: 2 }] }],
    ['replace whole list', { items: [{ name: 'z' }, { $patch: 'replace' }] }, { ...base, items: [{ name: 'z' }] }],
    ['null deletes a field of an element', { items: [{ name: 'a', v: null }] }, { ...base, items: [{ name: 'a' }, { name: 'b', v: 2 }] }],
    ['scalars merge as a set', { tags: ['z', 'x'] }, { ...base, tags: ['z', 'x', 'y'] }],
    ['$deleteFromPrimitiveList', { $deleteFromPrimitiveList$tags: ['x'] }, { ...base, tags: ['y'] }],
    ['list without strategy is replaced', { plain: [{ name: 'q' }] }, { ...base, plain: [{ name: 'q' }] }],
    ['null deletes a key', { labels: null }, { items: base.items, tags: base.tags, plain: base.plain }],
    ['map $patch: replace', { labels: { n: 'm', $patch: 'replace' } }, { ...base, labels: { n: 'm' } }],
    ['map $patch: delete empties it', { labels: { $patch: 'delete' } }, { ...base, labels: {} }],
    ['unknown fields merge as in merge patch', { extra: { a: 1, b: null } }, { ...base, extra: { a: 1 } }],
    ['$setElementOrder reorders and keeps server-only items',
      { $setElementOrder$items: [{ name: 'b' }, { name: 'a' }] }, { ...base, items: [{ name: 'b', v: 2 }, { name: 'a', v: 1 }] }],
    ['$setElementOrder with a change', { $setElementOrder$tags: ['y', 'x', 'w'], tags: ['w'] }, { ...base, tags: ['y', 'x', 'w'] }],
    ['nested merged list', { items: [{ name: 'a', sub: ['s'] }] }, { ...base, items: [{ name: 'a', v: 1, sub: ['s'] }, { name: 'b', v: 2 }] }],
    ['whole-object $patch: replace', { $patch: 'replace', labels: { only: 'this' } }, { labels: { only: 'this' } }],
  ];
  for (const [name, rawPatch, want] of cases) {
    // `$` and `/` are awkward in property names above; `$` + field stands for `<directive>/<field>`.
    const patch = JSON.parse(JSON.stringify(rawPatch).replace(/"\$(deleteFromPrimitiveList|setElementOrder)\$/g, '"$$$1/'));
    const input = structuredClone(base);
    assert.deepEqual(smp(input, patch), want, name);
    assert.deepEqual(input, base, `${name}: input untouched`);
  }
});

test('strategic merge: $retainKeys clears the other members of a union', () => {
  const doc = { source: { type: 'A', a: 'x' } };
  assert.deepEqual(smp(doc, { source: { $retainKeys: ['type', 'b'], type: 'B', b: 'y' } }), { source: { type: 'B', b: 'y' } });
  rejects(doc, { source: { $retainKeys: ['type'], b: 'y' } }, 400, 'invalid patch format of retainKeys');
  rejects(doc, { source: { $retainKeys: 'type' } }, 400, 'invalid patch format of retainKeys');
});

test('strategic merge: invalid patches are ApiErrors worded as Kubernetes', () => {
  const doc = { items: [{ name: 'a' }], tags: ['x'] };
  rejects(doc, [1], 400, 'json: cannot unmarshal array into Go value of type map[string]interface {}');
  rejects(doc, { items: [{ v: 1 }] }, 500, 'map: map[v:1] does not contain declared merge key: name');
  rejects(doc, { items: [{ name: 'a', $patch: 'merge' }] }, 500, 'merging lists cannot yet be specified in the patch');
  rejects(doc, { items: [{ name: 'a', $patch: 'explode' }] }, 500, 'unknown patch type: explode in map: map[$patch:explode name:a]');
  rejects({ labels: { a: 'b' } }, { labels: { $patch: 'merge' } }, 500, 'unknown patch type: merge in map: map[$patch:merge]');
  // A directive for a field the object does not have is dropped, as in Kubernetes.
  assert.deepEqual(smp(doc, { labels: { $patch: 'merge' } }), doc);
  rejects({ tags: [] }, { tags: [['nested']] }, 422, 'the server rejected our request due to an error in our request');
  rejects(doc, { tags: [1] }, 500, /^list element types are not identical/);
  rejects(doc, { '$setElementOrder': [] }, 400, 'invalid patch format of setElementOrder list');
  rejects(doc, { '$deleteFromPrimitiveList': [] }, 400, 'invalid patch format of primitive list');
  rejects(doc, { '$setElementOrder/items': [{ name: 'b' }], items: [{ name: 'a' }] }, 500, /^The order in patch list:/);
});

test('strategic merge: without a schema (custom resources) it is a 415', () => {
  assert.equal(supportsStrategicMerge(undefined), false);
  assert.throws(() => applyStrategicMergePatch({}, {}, undefined, fixture), (e: unknown) =>
    e instanceof ApiError && e.code === 415 && e.reason === 'UnsupportedMediaType' &&
    e.message === 'the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml');
});

// Real kinds, with the schema generated from client-node's models and Kubernetes' patch metadata.
const schemas = loadSchemaSet();
const deploymentType = schemas.forKind('apps', 'v1', 'Deployment');
const nodeType = schemas.forKind('', 'v1', 'Node');
const serviceType = schemas.forKind('', 'v1', 'Service');

function deployment() {
  return {
    apiVersion: 'apps/v1', kind: 'Deployment',
    metadata: { name: 'web', namespace: 'default', finalizers: ['a.io/x'], labels: { app: 'web' } },
    spec: {
      replicas: 2,
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: '25%', maxUnavailable: '25%' } },
      template: {
        metadata: { labels: { app: 'web' } },
        spec: {
          containers: [
            { name: 'app', image: 'nginx:1.25', env: [{ name: 'A', value: '1' }, { name: 'B', value: '2' }], ports: [{ containerPort: 80, protocol: 'TCP' }] },
            { name: 'sidecar', image: 'busybox', command: ['sleep', '1d'] },
          ],
        },
      },
    },
  };
}

test('strategic merge on real kinds: kubectl-shaped patches', () => {
  const dep = (patch: unknown) => applyStrategicMergePatch(deployment(), patch, deploymentType, schemas) as ReturnType<typeof deployment>;

  // kubectl apply's 3-way patch changing one image.
  let out = dep({ spec: { template: { spec: { '$setElementOrder/containers': [{ name: 'app' }, { name: 'sidecar' }], containers: [{ image: 'nginx:1.26', name: 'app' }] } } } });
  assert.deepEqual(out.spec.template.spec.containers.map((c) => [c.name, c.image]), [['app', 'nginx:1.26'], ['sidecar', 'busybox']]);
  assert.deepEqual(out.spec.template.spec.containers[0].env, deployment().spec.template.spec.containers[0].env);

  // kubectl apply removing the sidecar and reordering.
  out = dep({ spec: { template: { spec: { '$setElementOrder/containers': [{ name: 'app' }], containers: [{ $patch: 'delete', name: 'sidecar' }] } } } });
  assert.deepEqual(out.spec.template.spec.containers.map((c) => c.name), ['app']);

  // env merged by name (live-only A keeps its place before the patched ones), ports by containerPort.
  out = dep({ spec: { template: { spec: { containers: [{ name: 'app', env: [{ name: 'B', value: '3' }, { name: 'C', value: 'c' }], ports: [{ containerPort: 443 }] }] } } } });
  const app = out.spec.template.spec.containers[0];
  assert.deepEqual(app.env, [{ name: 'A', value: '1' }, { name: 'B', value: '3' }, { name: 'C', value: 'c' }]);
  assert.deepEqual(app.ports, [{ containerPort: 443 }, { containerPort: 80, protocol: 'TCP' }]);

  // An atomic list (command) is replaced; kubectl set image / rollout restart shapes.
  out = dep({ spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': 't' } }, spec: { containers: [{ name: 'sidecar', command: ['true'] }] } } } });
  assert.deepEqual(out.spec.template.spec.containers[1].command, ['true']);
  assert.deepEqual((out.spec.template.metadata as Record<string, unknown>).annotations, { 'kubectl.kubernetes.io/restartedAt': 't' });

  // finalizers are a merged primitive list.
  out = dep({ metadata: { finalizers: ['b.io/y'] } });
  assert.deepEqual(out.metadata.finalizers, ['b.io/y', 'a.io/x']);
  out = dep({ metadata: { '$deleteFromPrimitiveList/finalizers': ['a.io/x'] } });
  assert.deepEqual(out.metadata.finalizers, []);

  // strategy has retainKeys: switching to Recreate drops rollingUpdate.
  out = dep({ spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } });
  assert.deepEqual(out.spec.strategy, { type: 'Recreate' });
});

test('strategic merge on real kinds: taints are replaced whole, Service ports merge by port', () => {
  const node = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1' }, spec: { podCIDR: '10.42.0.0/24', taints: [{ key: 'a', effect: 'NoSchedule' }] } };
  const tainted = applyStrategicMergePatch(node, { spec: { taints: [{ key: 'a', effect: 'NoSchedule' }, { key: 'b', value: 'v', effect: 'NoExecute' }] } }, nodeType, schemas) as typeof node;
  assert.deepEqual(tainted.spec.taints, [{ key: 'a', effect: 'NoSchedule' }, { key: 'b', value: 'v', effect: 'NoExecute' }]);
  const untainted = applyStrategicMergePatch(tainted, { spec: { taints: [{ key: 'b', value: 'v', effect: 'NoExecute' }] } }, nodeType, schemas) as typeof node;
  assert.deepEqual(untainted.spec.taints, [{ key: 'b', value: 'v', effect: 'NoExecute' }]);
  const cordoned = applyStrategicMergePatch(node, { spec: { unschedulable: true } }, nodeType, schemas) as Record<string, Record<string, unknown>>;
  assert.equal(cordoned.spec.unschedulable, true);

  const svc = { apiVersion: 'v1', kind: 'Service', metadata: { name: 's' }, spec: { ports: [{ name: 'http', port: 80, targetPort: 8080 }, { name: 'https', port: 443 }] } };
  const patched = applyStrategicMergePatch(svc, { spec: { ports: [{ port: 80, targetPort: 9090 }] } }, serviceType, schemas) as typeof svc;
  assert.deepEqual(patched.spec.ports, [{ name: 'http', port: 80, targetPort: 9090 }, { name: 'https', port: 443 }]);
});
