// CrashLoopBackOff timing: first retry free, then doubling to the cap, forgotten after 2×cap idle;
// and Go's duration format used in the kubelet's messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, goDuration } from '../../src/agent/pods/backoff.js';

test('delays double from 10 s to the 5 min cap', () => {
  const b = new Backoff();
  const delays = [0, 1, 2, 3, 4, 5, 6].map((i) => b.next('k', i * 1000));
  assert.deepEqual(delays, [10_000, 20_000, 40_000, 80_000, 160_000, 300_000, 300_000]);
});

test('remaining counts from the exit; no entry means no wait', () => {
  const b = new Backoff({ initialMs: 1_000, maxMs: 8_000 });
  assert.equal(b.remaining('k', 0, 0), 0);
  b.next('k', 0);
  assert.equal(b.remaining('k', 500, 600), 900);
  assert.equal(b.remaining('k', 500, 2_000), 0);
});

test('an entry untouched for twice the cap (10 min by default) starts over', () => {
  const b = new Backoff();
  b.next('k', 0);
  b.next('k', 1);
  assert.equal(b.delay('k', 2), 20_000);
  assert.equal(b.next('k', 1 + 600_001), 10_000);
  b.resetPrefix('k');
  assert.equal(b.delay('k', 0), 0);
});

test('goDuration prints like Go', () => {
  assert.deepEqual([500, 1_000, 10_000, 80_000, 160_000, 300_000, 3_600_000].map(goDuration),
    ['500ms', '1s', '10s', '1m20s', '2m40s', '5m0s', '1h0m0s']);
});
