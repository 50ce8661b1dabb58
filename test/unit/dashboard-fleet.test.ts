// The dashboard's fleet pages' pure parts (src/dashboard/web/fleet-state.ts): where each partition of
// a staged rollout stands, how one cluster's BundleDeployment is described, the clusters' counts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { clusterCounts, deploymentStateOf, partitionCounts, partitionStates, type DeploymentView } from '../../src/dashboard/web/fleet-state.js';
import type { PartitionP } from '../../src/dashboard/web/hub.js';

const part = (name: string, count: number, ready: number, offline = 0, maxUnavailable = 1): PartitionP => ({
  name, count, maxUnavailable, unavailable: count - ready,
  summary: { desiredReady: count, ready, notReady: count - ready - offline, pending: 0, waitApplied: 0, errApplied: 0, offline },
});

test('partitions: Ready ones, then the one the rollout is at (paused or rolling out), then Waiting', () => {
  const ps = [part('canary', 2, 0), part('early', 2, 0), part('rest', 2, 0)];
  assert.deepEqual(partitionStates(ps, true), ['RolloutPaused', 'Waiting', 'Waiting']);
  assert.deepEqual(partitionStates([part('canary', 2, 2), part('early', 2, 1), part('rest', 2, 0)], false), ['Ready', 'Rolling out', 'Waiting']);
  assert.deepEqual(partitionStates([part('canary', 2, 2), part('early', 2, 2)], false), ['Ready', 'Ready']);
  // An offline cluster: skipped by default, one of maxUnavailable with CountUnavailable.
  assert.deepEqual(partitionStates([part('a', 2, 1, 1)], false), ['Ready']);
  assert.deepEqual(partitionStates([part('a', 2, 1, 1, 1)], false, 'CountUnavailable'), ['Ready']);
  assert.deepEqual(partitionStates([part('a', 3, 1, 2, 1)], false, 'CountUnavailable'), ['Rolling out']);
  assert.equal(partitionCounts(part('a', 3, 1, 1)), '1/3 ready, 1 offline');
  assert.deepEqual(partitionStates([], false), []);
});

test('a cluster\'s deployment: Offline with its cluster, Waiting for its partition, else what the site reported', () => {
  const d = (o: Partial<DeploymentView>): DeploymentView => ({ cluster: 'c', bundle: 'b', staged: 'v2', released: 'v2', applied: 'v2', ready: true, state: 'Ready', message: '', ...o });
  assert.equal(deploymentStateOf(d({}), 'Ready'), 'Ready');
  assert.equal(deploymentStateOf(d({}), 'Offline'), 'Offline', 'the last report of an offline cluster is not current');
  assert.equal(deploymentStateOf(d({}), 'Pending'), 'Pending');
  assert.equal(deploymentStateOf(d({ released: 'v1', applied: 'v1' }), 'Ready'), 'Waiting');
  assert.equal(deploymentStateOf(d({ applied: 'v1', state: 'Ready' }), 'Ready'), 'WaitApplied');
  assert.equal(deploymentStateOf(d({ ready: false, state: 'NotReady', message: 'ErrImagePull' }), 'Ready'), 'NotReady');
  assert.equal(deploymentStateOf(d({ applied: 'v1', state: 'ErrApplied' }), 'Ready'), 'ErrApplied');
  assert.equal(deploymentStateOf(d({ applied: '', state: '' }), undefined), 'WaitApplied');
  assert.deepEqual(clusterCounts(['Ready', 'Offline', 'Ready', 'Pending']), { total: 4, ready: 2, offline: 1, other: 1 });
});
