import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyJsonPatch, applyMergePatch, MAX_JSON_PATCH_OPERATIONS } from '../../src/apiserver/patch/index.js';
import { ApiError } from '../../src/api/status.js';

const doc = () => ({ metadata: { name: 'a', labels: { app: 'web' } }, spec: { replicas: 1, ports: [80, 443] } });

test('json patch: operations apply in order to a copy', () => {
  const cases: [string, unknown[], unknown][] = [
    ['add member', [{ op: 'add', path: '/metadata/labels/tier', value: 'fe' }],
      { ...doc(), metadata: { name: 'a', labels: { app: 'web', tier: 'fe' } } }],
    ['add to list end', [{ op: 'add', path: '/spec/ports/-', value: 8080 }], { ...doc(), spec: { replicas: 1, ports: [80, 443, 8080] } }],
    ['insert in list', [{ op: 'add', path: '/spec/ports/0', value: 1 }], { ...doc(), spec: { replicas: 1, ports: [1, 80, 443] } }],
    ['negative index counts from the end', [{ op: 'remove', path: '/spec/ports/-1' }], { ...doc(), spec: { replicas: 1, ports: [80] } }],
    ['replace', [{ op: 'replace', path: '/spec/replicas', value: 3 }], { ...doc(), spec: { replicas: 3, ports: [80, 443] } }],
    ['replace of a missing member adds it', [{ op: 'replace', path: '/spec/paused', value: true }],
      { ...doc(), spec: { replicas: 1, ports: [80, 443], paused: true } }],
    ['remove', [{ op: 'remove', path: '/metadata/labels' }], { ...doc(), metadata: { name: 'a' } }],
    ['escaped tokens', [{ op: 'add', path: '/metadata/labels/a~1b~0c', value: 'x' }],
      { ...doc(), metadata: { name: 'a', labels: { app: 'web', 'a/b~c': 'x' } } }],
    ['move', [{ op: 'move', from: '/spec/replicas', path: '/spec/count' }], { ...doc(), spec: { ports: [80, 443], count: 1 } }],
    ['copy', [{ op: 'copy', from: '/metadata/name', path: '/metadata/generateName' }],
      { ...doc(), metadata: { name: 'a', labels: { app: 'web' }, generateName: 'a' } }],
    ['passing tests', [{ op: 'test', path: '/spec/replicas', value: 1 }, { op: 'test', path: '/nope', value: null },
      { op: 'test', path: '/metadata/labels', value: { app: 'web' } }], doc()],
    ['kubectl-style label removal', [{ op: 'test', path: '/metadata/labels/app', value: 'web' },
      { op: 'remove', path: '/metadata/labels/app' }], { ...doc(), metadata: { name: 'a', labels: {} } }],
  ];
  for (const [name, ops, want] of cases) {
    const input = doc();
    assert.deepEqual(applyJsonPatch(input, ops), want, name);
    assert.deepEqual(input, doc(), `${name}: input untouched`);
  }
});

test('json patch: failing operations reject the whole patch with Kubernetes 422', () => {
  const failing: [string, unknown[]][] = [
    ['failed test', [{ op: 'replace', path: '/spec/replicas', value: 5 }, { op: 'test', path: '/spec/replicas', value: 2 }]],
    ['test of a missing member for a value', [{ op: 'test', path: '/spec/paused', value: false }]],
    ['add under a missing parent', [{ op: 'add', path: '/status/replicas', value: 1 }]],
    ['remove a missing member', [{ op: 'remove', path: '/spec/paused' }]],
    ['index out of range', [{ op: 'add', path: '/spec/ports/5', value: 1 }]],
    ['not an index', [{ op: 'replace', path: '/spec/ports/x', value: 1 }]],
    ['unknown op', [{ op: 'frobnicate', path: '/spec' }]],
    ['missing op', [{ path: '/spec' }]],
    ['missing path', [{ op: 'add', value: 1 }]],
    ['move from missing', [{ op: 'move', from: '/spec/nope/x', path: '/spec/y' }]],
  ];
  for (const [name, ops] of failing) {
    assert.throws(() => applyJsonPatch(doc(), ops), (e: unknown) => {
      assert.ok(e instanceof ApiError, name);
      assert.equal(e.code, 422, name);
      assert.equal(e.reason, 'Invalid', name);
      assert.equal(e.message, 'the server rejected our request due to an error in our request', name);
      assert.equal(typeof e.cause, 'string', `${name}: library reason kept for logs`);
      return true;
    }, name);
  }
});

test('json patch: a body that is not a list of operations is a 400', () => {
  const bad: [unknown, string][] = [
    [{ op: 'add' }, 'json: cannot unmarshal object into Go value of type jsonpatch.Patch'],
    ['x', 'json: cannot unmarshal string into Go value of type jsonpatch.Patch'],
    [[1], 'json: cannot unmarshal number into Go value of type jsonpatch.Operation'],
  ];
  for (const [body, message] of bad) {
    assert.throws(() => applyJsonPatch(doc(), body), (e: unknown) =>
      e instanceof ApiError && e.code === 400 && e.reason === 'BadRequest' && e.message === message);
  }
});

test('json patch: too many operations is a 413', () => {
  const ops = Array.from({ length: MAX_JSON_PATCH_OPERATIONS + 1 }, () => ({ op: 'test', path: '/spec/replicas', value: 1 }));
  assert.throws(() => applyJsonPatch(doc(), ops), (e: unknown) =>
    e instanceof ApiError && e.code === 413 && e.message === `The allowed maximum operations in a JSON patch is 10000, got 10001`);
});

test('merge patch: RFC 7386 semantics', () => {
  const cases: [string, unknown, unknown][] = [
    ['label (kubectl label)', { metadata: { labels: { tier: 'fe' } } },
      { ...doc(), metadata: { name: 'a', labels: { app: 'web', tier: 'fe' } } }],
    ['null deletes (kubectl label app-)', { metadata: { labels: { app: null } } }, { ...doc(), metadata: { name: 'a', labels: {} } }],
    ['scale', { spec: { replicas: 4 } }, { ...doc(), spec: { replicas: 4, ports: [80, 443] } }],
    ['lists replace', { spec: { ports: [1] } }, { ...doc(), spec: { replicas: 1, ports: [1] } }],
    ['object replaces scalar, nulls inside new objects vanish', { spec: { replicas: { a: 1, b: null } } },
      { ...doc(), spec: { replicas: { a: 1 }, ports: [80, 443] } }],
    ['null for a missing key is a no-op', { status: null }, doc()],
    ['null patch is a no-op', null, doc()],
  ];
  for (const [name, patch, want] of cases) {
    const input = doc();
    assert.deepEqual(applyMergePatch(input, patch), want, name);
    assert.deepEqual(input, doc(), `${name}: input untouched`);
  }
});

test('merge patch: a patch that is not an object is a 400', () => {
  for (const [patch, word] of [[[1], 'array'], ['x', 'string'], [3, 'number'], [true, 'bool']] as const) {
    assert.throws(() => applyMergePatch(doc(), patch), (e: unknown) => e instanceof ApiError && e.code === 400 &&
      e.message === `error decoding patch: json: cannot unmarshal ${word} into Go value of type map[string]interface {}`);
  }
});
