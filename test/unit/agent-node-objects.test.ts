import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nodeConditions, RUNTIME_NOT_READY } from '../../src/agent/node-objects.js';
import { statusDiffers } from '../../src/agent/node-status.js';

test('node conditions: Ready only once the runtime is up, with the kubelet\'s reason and message before', () => {
  const ready = (c: Record<string, unknown>[]) => c.find((x) => x.type === 'Ready')!;
  const starting = ready(nodeConditions('2026-01-01T00:00:05Z', '2026-01-01T00:00:00Z', RUNTIME_NOT_READY));
  assert.deepEqual([starting.status, starting.reason, starting.message], ['False', 'KubeletNotReady', RUNTIME_NOT_READY]);
  const up = nodeConditions('2026-01-01T00:00:09Z', '2026-01-01T00:00:08Z');
  assert.deepEqual([ready(up).status, ready(up).reason, ready(up).lastTransitionTime], ['True', 'KubeletReady', '2026-01-01T00:00:08Z']);
  assert.deepEqual(up.map((c) => c.type), ['MemoryPressure', 'DiskPressure', 'PIDPressure', 'Ready']);
});

test('node status is reposted only when it differs in more than heartbeat times (key and condition order aside)', () => {
  const ours = {
    capacity: { cpu: '2', memory: '4Gi' },
    conditions: nodeConditions('2026-01-01T00:05:00Z', '2026-01-01T00:00:00Z'),
    addresses: [{ type: 'InternalIP', address: '10.0.0.5' }],
  };
  // What the server holds from an earlier post: older heartbeats, keys and conditions in another order.
  const server = {
    addresses: [{ address: '10.0.0.5', type: 'InternalIP' }],
    conditions: nodeConditions('2026-01-01T00:00:10Z', '2026-01-01T00:00:00Z').reverse(),
    capacity: { memory: '4Gi', cpu: '2' },
    images: [],
  };
  assert.equal(statusDiffers(server, ours), false);
  // The node lifecycle marked it Unknown while the node was silent: the kubelet must say Ready again.
  const unknown = structuredClone(server);
  Object.assign(unknown.conditions.find((c) => c.type === 'Ready')!, { status: 'Unknown', reason: 'NodeStatusUnknown' });
  assert.equal(statusDiffers(unknown, ours), true);
  assert.equal(statusDiffers({ ...server, capacity: { cpu: '4', memory: '4Gi' } }, ours), true);
  assert.equal(statusDiffers(undefined, ours), true);
});
