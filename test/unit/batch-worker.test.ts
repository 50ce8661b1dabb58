// The batch worker of the kernel-writing loops: one apply per round with every queued key, failed
// keys back with backoff, a throw fails the whole batch, and the first-write retry stops on shutdown.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../../src/client/workqueue.js';
import { retryUntilDone, runBatchWorker } from '../../src/client/batch-worker.js';

test('runBatchWorker: queued keys in one batch, failures retried, a throw retries every key', async () => {
  const queue = new WorkQueue<string>();
  const batches: string[][] = [];
  let round = 0;
  let resolveDone!: () => void;
  const done = new Promise<void>((r) => { resolveDone = r; });
  for (const k of ['a', 'b', 'c', 'a']) queue.add(k);
  const worker = runBatchWorker(queue, async (keys) => {
    batches.push([...keys].sort());
    round++;
    if (round === 1) return ['b'];                 // b failed: it comes back alone
    if (round === 2) throw new Error('nft said no'); // the whole batch comes back
    resolveDone();
    return [];
  }, (err, keys) => assert.deepEqual([String((err as Error).message), keys], ['nft said no', ['b']]));
  await done;
  queue.shutDown();
  await worker;
  assert.deepEqual(batches, [['a', 'b', 'c'], ['b'], ['b']]);
  assert.equal(queue.len(), 0);
});

test('retryUntilDone: retries until it works; gives up once stopped', async () => {
  let calls = 0;
  const errors: number[] = [];
  assert.equal(await retryUntilDone(async () => { if (++calls < 2) throw new Error('busy'); }, () => false, (_e, attempt) => errors.push(attempt)), true);
  assert.deepEqual([calls, errors], [2, [0]]);
  assert.equal(await retryUntilDone(async () => { throw new Error('never'); }, () => true, () => undefined), false);
});
