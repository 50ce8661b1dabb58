// Watch resumption across a restart with a churning resource (issue 15): thousands of Leases renewing
// fill one ring's worth of revisions in seconds; reading several rings' worth of history at start lets
// a quiet resource (pods) replay from an older revision, while each ring still keeps ringSize events.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CompactedError } from '../../src/storage/types.js';
import { dbFile, openCache } from '../helpers/storage-temp.js';

test('a quiet resource resumes from before a burst of lease renewals; the churning one keeps only its ring', async (t) => {
  const file = dbFile(t);
  const first = await openCache(t, file);
  await first.store.create('/core/pods/ns/a', { metadata: { name: 'a', namespace: 'ns' } });   // 1
  await first.store.create('/core/pods/ns/b', { metadata: { name: 'b', namespace: 'ns' } });   // 2
  let lease = await first.store.create('/coordination.k8s.io/leases/kube-node-lease/n', { metadata: { name: 'n' }, spec: { renewTime: '0' } });   // 3
  for (let i = 1; i <= 20; i++) lease = await first.store.update(lease.key, { metadata: { name: 'n' }, spec: { renewTime: String(i) } }, lease.modRevision);   // 4..23
  await first.store.close();

  // One ring's worth of history (the default): the pods' revision 2 is too old to resume from.
  const shallow = await openCache(t, file, { ringSize: 5 });
  assert.throws(() => shallow.store.watch('/core/pods/', 2, () => {}), CompactedError);
  await shallow.store.close();

  const { store } = await openCache(t, file, { ringSize: 5, prefillRevisions: 25 });
  const pods: number[] = [];
  store.watch('/core/pods/', 1, (e) => pods.push(e.revision));
  assert.deepEqual(pods, [2], 'the pods watch replays from revision 1');
  const noop: number[] = [];
  store.watch('/core/pods/', 2, (e) => noop.push(e.revision));
  assert.deepEqual(noop, [], 'nothing happened to pods since revision 2');
  // The leases ring kept its newest 5 events only.
  assert.throws(() => store.watch('/coordination.k8s.io/leases/', 10, () => {}), CompactedError);
  const leases: number[] = [];
  store.watch('/coordination.k8s.io/leases/', 18, (e) => leases.push(e.revision));
  assert.deepEqual(leases, [19, 20, 21, 22, 23]);
  await store.close();
});
