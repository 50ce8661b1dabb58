// The work queue's guarantees (coalescing, one worker per key, delays, backoff, shutdown) and the
// default rate limiter's numbers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WorkQueue } from '../../src/client/workqueue.js';
import {
  BucketRateLimiter, ExponentialFailureRateLimiter, MaxOfRateLimiter, defaultControllerRateLimiter, type RateLimiter,
} from '../../src/client/rate-limit.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The queue's next key, or 'timeout' if none came within `ms`. A get() cannot be withdrawn, so an
 * unanswered one is kept and answers the next call, as a worker's would.
 */
function reader(q: WorkQueue<string>) {
  let pending: Promise<string | undefined> | undefined;
  return async (ms = 200): Promise<string | undefined | 'timeout'> => {
    pending ??= q.get();
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<'timeout'>((r) => { timer = setTimeout(() => r('timeout'), ms); });
    const got = await Promise.race([pending, timeout]);
    clearTimeout(timer);
    if (got !== 'timeout') pending = undefined;
    return got;
  };
}

test('a key added many times is queued once, in first-added order', async (t) => {
  const q = new WorkQueue<string>();
  t.after(() => q.shutDown());
  q.add('a'); q.add('b'); q.add('a'); q.add('c'); q.add('b');
  assert.equal(q.len(), 3);
  assert.equal(await q.get(), 'a');
  assert.equal(await q.get(), 'b');
  assert.equal(await q.get(), 'c');
  assert.equal(q.len(), 0);
});

test('a key added while processing is handed out again only after done()', async (t) => {
  const q = new WorkQueue<string>();
  t.after(() => q.shutDown());
  const next = reader(q);
  q.add('a');
  const key = await q.get();
  assert.equal(key, 'a');
  q.add('a');
  q.add('a');
  assert.equal(q.len(), 0, 'not queued while a worker holds it');
  assert.equal(await next(50), 'timeout', 'never handed to a second worker at once');
  q.done('a');
  assert.equal(await next(), 'a', 'processed again after, exactly once');
  q.done('a');
  assert.equal(await next(50), 'timeout');
});

test('get() waits for a key; a waiting worker receives a new key directly', async (t) => {
  const q = new WorkQueue<string>();
  t.after(() => q.shutDown());
  const waiting = q.get();
  q.add('x');
  assert.equal(await waiting, 'x');
  q.add('x');   // still processing: held back
  q.done('x');
  assert.equal(await q.get(), 'x');
});

test('addAfter delays a key, an earlier request wins, and an immediate add is not held back', async (t) => {
  const q = new WorkQueue<string>();
  t.after(() => q.shutDown());
  const next = reader(q);
  const t0 = Date.now();
  q.addAfter('slow', 60);
  q.addAfter('slow', 10_000);   // later than pending: ignored
  assert.equal(await next(30), 'timeout');
  assert.equal(await next(500), 'slow');
  assert.ok(Date.now() - t0 >= 55, 'not before its time');
  q.done('slow');

  q.addAfter('k', 10_000);
  q.addAfter('k', 20);          // earlier: replaces the pending one
  assert.equal(await next(500), 'k');
  q.done('k');
  q.addAfter('now', 0);
  assert.equal(q.len(), 1);
});

test('addRateLimited backs off per key until forget()', async (t) => {
  const asked: string[] = [];
  const fake: RateLimiter<string> = {
    when: (k) => { asked.push(k); return 30; },
    forget: (k) => { asked.push(`forget ${k}`); },
    numRequeues: () => 7,
  };
  const q = new WorkQueue<string>(fake);
  t.after(() => q.shutDown());
  const next = reader(q);
  q.addRateLimited('a');
  assert.equal(q.len(), 0);
  assert.equal(await next(300), 'a');
  q.forget('a');
  assert.equal(q.numRequeues('a'), 7);
  assert.deepEqual(asked, ['a', 'forget a']);
});

test('shutDown releases waiting workers, drops queued and delayed keys, and leaves no timer', async () => {
  const q = new WorkQueue<string>();
  const waiting = q.get();
  q.shutDown();
  assert.equal(await waiting, undefined);
  const q2 = new WorkQueue<string>();
  q2.add('a');
  q2.addAfter('b', 60_000);     // would keep the test process alive if its timer survived
  q2.addRateLimited('c');
  q2.shutDown();
  assert.equal(await q2.get(), undefined);
  q2.add('d');
  assert.equal(q2.len(), 0);
  assert.ok(q2.isShutDown());
  await sleep(10);
});

test('exponential failure limiter: 5 ms doubling to a 1000 s cap, per key, reset by forget', () => {
  const l = new ExponentialFailureRateLimiter<string>();
  assert.deepEqual([1, 2, 3, 4].map(() => l.when('a')), [5, 10, 20, 40]);
  assert.equal(l.when('b'), 5);
  assert.equal(l.numRequeues('a'), 4);
  for (let i = 0; i < 40; i++) l.when('a');
  assert.equal(l.when('a'), 1_000_000);
  for (let i = 0; i < 2000; i++) l.when('a');
  assert.equal(l.when('a'), 1_000_000, 'stays finite however often it fails');
  l.forget('a');
  assert.equal(l.numRequeues('a'), 0);
  assert.equal(l.when('a'), 5);
});

test('bucket limiter: a burst of 100 passes, then 10 per second', () => {
  let now = 0;
  const l = new BucketRateLimiter<string>(10, 100, () => now);
  for (let i = 0; i < 100; i++) assert.equal(l.when(`k${i}`), 0);
  assert.equal(l.when('x'), 100);
  assert.equal(l.when('y'), 200);
  now = 1000;   // 10 tokens refilled, 2 already owed
  for (let i = 0; i < 8; i++) assert.equal(l.when(`z${i}`), 0);
  assert.equal(l.when('w'), 100);
});

test('the default limiter takes the larger of the two', () => {
  let now = 0;
  const l = new MaxOfRateLimiter<string>(new ExponentialFailureRateLimiter<string>(5, 1_000_000), new BucketRateLimiter<string>(10, 1, () => now));
  assert.equal(l.when('a'), 5);     // bucket had a token; per-key backoff wins
  assert.equal(l.when('b'), 100);   // bucket empty; its wait wins
  assert.equal(l.numRequeues('a'), 1);
  l.forget('a');
  assert.equal(l.numRequeues('a'), 0);
  assert.equal(defaultControllerRateLimiter<string>().when('a'), 5);
});
