// The watch cache shares short strings across objects (src/storage/stored.ts): a thousand pods of one
// Deployment hold one image name. Strings compare by content in JavaScript, so only the heap can tell
// instances apart: this test counts them in a heap snapshot of its own process.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getHeapSnapshot } from 'node:v8';
import { dbFile, openCache } from '../helpers/storage-temp.js';

/** How many distinct string instances in this process's heap have exactly the text `s`. */
async function instances(s: string): Promise<number> {
  let json = '';
  for await (const chunk of getHeapSnapshot()) json += chunk;
  const snap = JSON.parse(json);
  const fields: string[] = snap.snapshot.meta.node_fields;
  const types: string[] = snap.snapshot.meta.node_types[0];
  const [iType, iName] = [fields.indexOf('type'), fields.indexOf('name')];
  let n = 0;
  for (let i = 0; i < snap.nodes.length; i += fields.length) {
    if (types[snap.nodes[i + iType]] === 'string' && snap.strings[snap.nodes[i + iName]] === s) n++;
  }
  return n;
}

test('a short string is one instance across stored objects and across an object\'s versions', async (t) => {
  const { store } = await openCache(t, dbFile(t));
  // Built at run time, so that the test's own source holds no instance of the whole text.
  const image = ['registry.example', 'shared-strings-probe:1.0'].join('/');
  const phase = ['Probe', 'Phase', 'Running'].join('-');
  const pods = [];
  for (let i = 0; i < 200; i++) {
    pods.push(await store.create(`/core/pods/default/p${i}`, {
      apiVersion: 'v1', kind: 'Pod', metadata: { name: `p${i}`, namespace: 'default' },
      spec: { containers: [{ name: 'c', image }] }, status: { phase: 'Pending' },
    }));
  }
  // A second version of each (a status write) shares its unchanged strings with the first, and its new ones across pods.
  for (const p of pods) await store.update(p.key, { ...p.obj, status: { phase } }, p.modRevision);
  // The test's own `image` and `phase`, and at most one shared instance each (not 200 or 400).
  assert.ok(await instances(image) <= 2, `${await instances(image)} instances of the image name`);
  assert.ok(await instances(phase) <= 2, `${await instances(phase)} instances of the new phase`);
});
