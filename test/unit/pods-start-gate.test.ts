import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StartGate } from '../../src/agent/pods/start-gate.js';

const tick = () => new Promise((r) => setImmediate(r));

test('start gate: at most `limit` run at once, admitted first come first served', async () => {
  const gate = new StartGate(2);
  const started: number[] = [];
  const release: (() => void)[] = [];
  const runs = [0, 1, 2, 3, 4].map((i) => gate.run(async () => {
    started.push(i);
    await new Promise<void>((r) => { release[i] = r; });
    return i;
  }));
  await tick();
  assert.deepEqual(started, [0, 1]);
  assert.equal(gate.queued, 3);
  release[1]!();
  await tick();
  assert.deepEqual(started, [0, 1, 2]);
  // A newcomer while others wait queues behind them.
  const late = gate.run(async () => { started.push(9); return 9; });
  release[0]!();
  await tick();
  assert.deepEqual(started, [0, 1, 2, 3]);
  for (const i of [2, 3]) release[i]!();
  await tick(); await tick();
  release[4]!();
  assert.deepEqual(await Promise.all([...runs, late]), [0, 1, 2, 3, 4, 9]);
  assert.deepEqual(started, [0, 1, 2, 3, 4, 9]);
});

test('start gate: a failing run frees its slot', async () => {
  const gate = new StartGate(1);
  await assert.rejects(gate.run(async () => { throw new Error('boom'); }), /boom/);
  assert.equal(await gate.run(async () => 'next'), 'next');
  assert.throws(() => new StartGate(0), /at least 1/);
});
