// A stored object's API text is the text a write stored with its resourceVersion put in
// (storage/stored.ts): it must be exactly what encoding the object would give.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { encodeForStorage, keepStorageText, storedFromKv, withResourceVersion } from '../../src/storage/stored.js';

const objects: Record<string, any>[] = [
  { apiVersion: 'v1', kind: 'Pod', metadata: { name: 'a', namespace: 'default', resourceVersion: '7', labels: { app: 'web' } }, spec: { nodeName: 'n1' } },
  { apiVersion: 'v1', kind: 'ConfigMap', metadata: {}, data: { x: '}' } },
  { kind: 'List', items: [{ metadata: { name: 'nested' } }], metadata: { name: 'last' } },
  { apiVersion: 'v1', kind: 'Secret', data: { '"metadata"': 'a\\"}{[', 'b\\': '\\' }, metadata: { name: 'q"uo\\te', annotations: { 'x/y': '{"metadata":{}}' } } },
  { apiVersion: 'v1', metadata: { name: 'u', annotations: { s: '\u2028é😀\\\\"', t: '' }, managedFields: [{ manager: 'm', fieldsV1: { 'f:spec': { '.': {}, 'k:{"name":"c"}': {} } } }] }, spec: { n: [1, -2.5e-7, true, null, [], {}] } },
  { metadata: { name: 'only' } },
  { apiVersion: 'v1', kind: 'Event', count: 3, metadata: { name: 'e', namespace: 'ns' }, firstTimestamp: null },
  { '1': 'integer key first', metadata: { '2': 'x', name: 'int' } },
];

test('the text derived from the stored text is the object encoded', () => {
  let rev = 100;
  for (const o of objects) {
    const value = encodeForStorage(o);
    const s = storedFromKv({ key: '/k/x', value, createRevision: 1, modRevision: ++rev });
    assert.equal(withResourceVersion(value, String(rev)), JSON.stringify(s.obj), value);
    keepStorageText(s, value);
    assert.equal(s.json(), JSON.stringify(s.obj));
  }
});

test('texts it cannot read leave the object to be encoded', () => {
  for (const text of ['{"kind":"Pod"}', '{}', '[]', '{"metadata":"str"}', '{ "metadata": {} }', '{"metadata":{"name":"x"', 'null']) {
    assert.equal(withResourceVersion(text, '5'), undefined, text);
  }
  // The stored object still has its text: encoded, with metadata added as the object got it.
  const s = storedFromKv({ key: '/k/y', value: '{"kind":"Pod"}', createRevision: 1, modRevision: 9 });
  keepStorageText(s, '{"kind":"Pod"}');
  assert.equal(s.json(), '{"kind":"Pod","metadata":{"resourceVersion":"9"}}');
});
