// Bookmarks that keep a quiet watcher resumable (issue 15): a node's pod watch sees few events of its
// own while other pods churn, and the minute between regular bookmarks can be longer than the pods
// ring's history. `sendResumeBookmarks` bookmarks a watcher before its revision falls out of what the
// ring, or the rings a restart fills from history, can replay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ApiContext, BookmarkWatch } from '../../src/apiserver/context.js';
import { sendResumeBookmarks } from '../../src/apiserver/server.js';
import { CompactedError, type Store } from '../../src/storage/types.js';
import { dbFile, openCache } from '../helpers/storage-temp.js';

const PODS = '/core/pods/';

/** A watcher as list-watch.ts registers it; `sent` collects its bookmarks' revisions. */
function watcher(from: number): BookmarkWatch & { sent: number[] } {
  const w = { prefix: PODS, lastRevision: from, sent: [] as number[], send(rev: number) { w.sent.push(rev); w.lastRevision = rev; } };
  return w;
}

const resumable = (store: Store, rev: number) => {
  try { store.watch(PODS, rev, () => {}).stop(); return true; } catch (e) { if (e instanceof CompactedError) return false; throw e; }
};

test('a quiet watcher is bookmarked before the churn of other pods leaves it too old, and resumes after a restart', async (t) => {
  const file = dbFile(t);
  const opts = { ringSize: 8, prefillRevisions: 16 };
  const first = await openCache(t, file, opts);
  const { store } = first;
  let pod = await store.create(`${PODS}ns/busy`, { metadata: { name: 'busy', namespace: 'ns' }, spec: { nodeName: 'a' } });
  const quiet = watcher(store.revision());
  const unbookmarked = watcher(store.revision());
  const ctx = { store, bookmarks: new Set([quiet]) } as unknown as ApiContext;
  for (let i = 0; i < 40; i++) {
    pod = await store.update(pod.key, { metadata: { name: 'busy', namespace: 'ns' }, spec: { nodeName: 'a' }, status: { n: i } }, pod.modRevision);
    sendResumeBookmarks(ctx);
    assert.ok(resumable(store, quiet.lastRevision), `the bookmarked watcher can resume after write ${i}`);
  }
  assert.ok(!resumable(store, unbookmarked.lastRevision), 'without bookmarks the watcher fell out of the ring');
  assert.ok(quiet.sent.length > 0 && quiet.sent.length <= 10, `a bookmark now and then, not one per write (${quiet.sent.length})`);
  assert.equal(sendResumeBookmarks(ctx), 0, 'nothing more to send while nothing changed');

  // A kill and a restart: the new rings come from the datastore's history.
  await store.close();
  const again = await openCache(t, file, opts);
  assert.ok(resumable(again.store, quiet.lastRevision), 'the watcher resumes from the restarted server\'s rings');
});
