import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LoopBudget, loopBudgetFromEnv } from '../../src/util/loop-budget.js';

/** A write that settles when told to. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((r) => { open = r; });
  return { promise, open };
}

test('writes beyond the bound wait, first come first served, and take a seat as one settles', async () => {
  const budget = new LoopBudget({ initial: 2, min: 1, sampleLag: false });
  const gates = [gate(), gate(), gate(), gate()];
  const order: number[] = [];
  const runs = gates.map((g, i) => budget.run(async () => { order.push(i); await g.promise; return i; }));
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [0, 1]);
  assert.deepEqual(budget.stats(), { limit: 2, inFlight: 2, waiting: 2, waitedTotal: 2, decreases: 0 });
  gates[1].open();
  await runs[1];
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, [0, 1, 2]);
  // A failed write frees its seat too.
  const failing = budget.run(async () => { throw new Error('conflict'); });
  gates[0].open();
  gates[2].open();
  await Promise.all([runs[0], runs[2]]);
  await assert.rejects(failing, /conflict/);
  gates[3].open();
  assert.equal(await runs[3], 3);
  assert.equal(budget.stats().inFlight, 0);
});

test('lag over the target halves the bound down to the minimum; calm and full periods grow it back', async () => {
  const budget = new LoopBudget({ initial: 64, min: 4, max: 80, targetLagMs: 100, sampleLag: false });
  budget.sample(250);
  budget.adjust();
  assert.equal(budget.stats().limit, 32);
  for (let i = 0; i < 10; i++) { budget.sample(500); budget.adjust(); }
  assert.equal(budget.stats().limit, 4);
  assert.equal(budget.stats().decreases, 4);
  // Calm but idle: no reason to grow.
  budget.sample(10);
  budget.adjust();
  assert.equal(budget.stats().limit, 4);
  // Calm and every seat taken, with writes waiting: grows, and a waiter gets the new seat at once.
  const gates = Array.from({ length: 6 }, gate);
  let started = 0;
  const runs = gates.map((g) => budget.run(async () => { started++; await g.promise; }));
  await new Promise((r) => setImmediate(r));
  assert.equal(started, 4);
  budget.sample(20);
  budget.adjust();
  assert.equal(budget.stats().limit, 5);
  await new Promise((r) => setImmediate(r));
  assert.equal(started, 5);
  // Lag between half the target and the target: the bound holds.
  budget.sample(70);
  budget.adjust();
  assert.equal(budget.stats().limit, 5);
  // With a hundred writes waiting, calm periods grow it by an eighth at a time, up to the maximum.
  const held = gate();
  const more = Array.from({ length: 100 }, () => budget.run(() => held.promise));
  for (let i = 0; i < 40; i++) { budget.sample(0); budget.adjust(); }
  assert.equal(budget.stats().limit, 80);
  await new Promise((r) => setImmediate(r));
  assert.equal(budget.stats().inFlight, 80);
  for (const g of gates) g.open();
  held.open();
  await Promise.all([...runs, ...more]);
  assert.deepEqual({ ...budget.stats(), waitedTotal: 0 }, { limit: 80, inFlight: 0, waiting: 0, waitedTotal: 0, decreases: 4 });
});

test('a stopped budget lets every waiting write through', async () => {
  const budget = new LoopBudget({ initial: 1, min: 1, sampleLag: false });
  const g = gate();
  const first = budget.run(() => g.promise);
  let second = false;
  const next = budget.run(async () => { second = true; });
  await new Promise((r) => setImmediate(r));
  assert.equal(second, false);
  budget.stop();
  await next;
  assert.equal(second, true);
  g.open();
  await first;
});

test('the timer measures the event loop lag: a blocked loop shrinks the bound', async () => {
  const budget = new LoopBudget({ initial: 64, targetLagMs: 100, periodMs: 400 });
  try {
    const until = performance.now() + 300;
    while (performance.now() < until) { /* block the event loop past the target */ }
    // The sampler sees the late tick, the next adjustment halves the bound.
    for (let i = 0; i < 40 && budget.stats().limit === 64; i++) await new Promise((r) => setTimeout(r, 50));
    assert.ok(budget.stats().limit < 64, `limit still ${budget.stats().limit}`);
  } finally {
    budget.stop();
  }
});

test('SKIFF_LOOP_BUDGET: unset for the defaults, off for none, JSON fields checked', () => {
  assert.deepEqual(loopBudgetFromEnv({}), {});
  assert.equal(loopBudgetFromEnv({ SKIFF_LOOP_BUDGET: 'off' }), false);
  assert.deepEqual(loopBudgetFromEnv({ SKIFF_LOOP_BUDGET: '{"targetLagMs":500,"min":2}' }), { targetLagMs: 500, min: 2 });
  assert.throws(() => loopBudgetFromEnv({ SKIFF_LOOP_BUDGET: 'fast' }), /neither "off" nor JSON/);
  assert.throws(() => loopBudgetFromEnv({ SKIFF_LOOP_BUDGET: '{"qps":5}' }), /unknown field qps/);
  assert.throws(() => loopBudgetFromEnv({ SKIFF_LOOP_BUDGET: '{"min":-1}' }), /min must be a positive number/);
});
