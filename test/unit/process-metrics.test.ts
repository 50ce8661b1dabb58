// Node.js process metrics (src/util/process-metrics.ts): prom-client's defaults, with the open
// descriptors counted off the event loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, openSync } from 'node:fs';
import { Registry } from 'prom-client';
import { collectProcessMetrics } from '../../src/util/process-metrics.js';

const openFds = async (r: Registry) => {
  const line = (await r.metrics()).split('\n').find((l) => l.startsWith('process_open_fds '));
  assert.ok(line, 'process_open_fds is reported');
  return Number(line.split(' ')[1]);
};

test('process_open_fds counts descriptors, and its collection does not block (it returns a promise)', { skip: process.platform !== 'linux' && 'Linux only' }, async () => {
  const r = new Registry();
  collectProcessMetrics(r);
  const metric = r.getSingleMetric('process_open_fds') as unknown as { collect: () => unknown };
  const pending = metric.collect();
  assert.ok(pending instanceof Promise, 'collected asynchronously');
  await pending;
  const before = await openFds(r);
  const fds = Array.from({ length: 40 }, () => openSync('/dev/null', 'r'));
  try {
    const during = await openFds(r);
    assert.ok(during >= before + 40, `40 more descriptors are counted (${before} → ${during})`);
  } finally {
    for (const fd of fds) closeSync(fd);
  }
  // The other defaults are still there.
  const text = await r.metrics();
  for (const name of ['process_cpu_seconds_total', 'nodejs_eventloop_lag_p99_seconds', 'nodejs_heap_size_used_bytes']) assert.match(text, new RegExp(`^${name} `, 'm'));
});
