// The server thread's raised priority while it starts (src/server/startup-priority.ts): real
// setpriority calls on this test process's own threads (node --test runs each file in its own process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getPriority, setPriority } from 'node:os';
import { Worker } from 'node:worker_threads';
import { once } from 'node:events';
import { StartupPriority, startupBoost, STARTUP_BOOST } from '../../src/server/startup-priority.js';
import { eventually } from '../helpers/wait.js';
import { logger } from '../../src/util/log.js';

const log = logger('test');

/** Whether this process may raise a thread's priority (root with CAP_SYS_NICE), found by trying. */
function mayRaise(): boolean {
  const before = getPriority(0);
  if (before <= -20) return false;
  try { setPriority(0, before - 1); } catch { return false; }
  setPriority(0, before);
  return true;
}

/** The priority raised by `steps`, as the server raises it. */
function raised(steps: number): StartupPriority {
  const p = new StartupPriority(log, steps);
  p.raise();
  return p;
}

test('SKIFF_STARTUP_BOOST: unset means the default, 0 means none, anything else but 0–39 is refused', () => {
  assert.equal(startupBoost({}), STARTUP_BOOST);
  assert.equal(startupBoost({ SKIFF_STARTUP_BOOST: '' }), STARTUP_BOOST);
  assert.equal(startupBoost({ SKIFF_STARTUP_BOOST: '0' }), 0);
  assert.equal(startupBoost({ SKIFF_STARTUP_BOOST: '5' }), 5);
  for (const bad of ['-1', '40', '2.5', 'high']) assert.throws(() => startupBoost({ SKIFF_STARTUP_BOOST: bad }), /SKIFF_STARTUP_BOOST: expected a whole number/);
});

test('no boost leaves the priority alone', () => {
  const before = getPriority(0);
  const p = raised(0);
  assert.equal(getPriority(0), before);
  p.lower();
  assert.equal(getPriority(0), before);
});

test('raised for this thread only, until readiness first holds; without the privilege nothing changes', async () => {
  const before = getPriority(0);
  const allowed = mayRaise();
  // A thread that already runs keeps its priority: Linux keeps nice values per thread.
  const worker = new Worker(`const { parentPort } = require('node:worker_threads'); const { getPriority } = require('node:os');
    parentPort.on('message', () => parentPort.postMessage(getPriority(0)));`, { eval: true });
  try {
    const p = raised(3);
    assert.equal(getPriority(0), allowed ? before - 3 : before, allowed ? 'raised by 3 steps' : 'unchanged without CAP_SYS_NICE');
    worker.postMessage('nice?');
    const [workerNice] = await once(worker, 'message') as [number];
    assert.equal(workerNice, before, 'the other thread keeps its own');

    let asked = 0;
    p.lowerWhenReady(async () => ++asked >= 3);
    if (!allowed) {
      // Nothing raised, nothing to wait for.
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(asked, 0);
      return;
    }
    await eventually(async () => asked >= 3, 'three readiness checks', 10_000);
    assert.equal(asked, 3, 'asked again until ready, then no more');
    await eventually(async () => getPriority(0) === before, 'the priority back where it was', 10_000);
    assert.equal(getPriority(0), before, 'back once ready');
    p.lower();   // a second lowering changes nothing
    assert.equal(getPriority(0), before);
  } finally {
    await worker.terminate();
    setPriority(0, before);
  }
});

test('a readiness check that fails is asked again; lower() ends the wait', async () => {
  const before = getPriority(0);
  const allowed = mayRaise();
  const p = raised(2);
  let asked = 0;
  p.lowerWhenReady(async () => { asked++; throw new Error('not yet'); });
  if (!allowed) {
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(asked, 0, 'nothing raised without CAP_SYS_NICE, nothing asked');
    return;
  }
  await eventually(async () => asked >= 2, 'two readiness checks', 10_000);
  assert.ok(asked >= 2);
  p.lower();
  assert.equal(getPriority(0), before);
  const stopped = asked;
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(asked, stopped, 'no more asking once lowered');
});

test('a server that does not get ready goes back after the longest the raise may last', async () => {
  const before = getPriority(0);
  const allowed = mayRaise();
  const p = raised(2);
  let asked = 0;
  p.lowerWhenReady(async () => { asked++; return false; }, 300);
  await eventually(async () => getPriority(0) === before, 'the priority back where it was', 10_000);
  assert.equal(getPriority(0), before, allowed ? 'lowered at the deadline' : 'never raised');
  const stopped = asked;
  await new Promise((r) => setTimeout(r, 1200));
  assert.equal(asked, stopped, 'no more asking once lowered');
  p.lower();
});
