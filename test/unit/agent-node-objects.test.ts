import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeConditions, RUNTIME_NOT_READY } from '../../src/agent/node-objects.js';

test('node conditions: Ready only once the runtime is up, with the kubelet\'s reason and message before', () => {
  const ready = (c: Record<string, unknown>[]) => c.find((x) => x.type === 'Ready')!;
  const starting = ready(nodeConditions('2026-01-01T00:00:05Z', '2026-01-01T00:00:00Z', RUNTIME_NOT_READY));
  assert.deepEqual([starting.status, starting.reason, starting.message], ['False', 'KubeletNotReady', RUNTIME_NOT_READY]);
  const up = nodeConditions('2026-01-01T00:00:09Z', '2026-01-01T00:00:08Z');
  assert.deepEqual([ready(up).status, ready(up).reason, ready(up).lastTransitionTime], ['True', 'KubeletReady', '2026-01-01T00:00:08Z']);
  assert.deepEqual(up.map((c) => c.type), ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready']);
});
