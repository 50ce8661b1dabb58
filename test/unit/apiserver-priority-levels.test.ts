// Priority levels of the in-flight limit (issue 15): nodes' heartbeats (Leases, Node objects) have a
// budget of their own that a burst of workload requests cannot exhaust, as Kubernetes' API priority
// and fairness gives them the node-high level.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { InflightLimiter, priorityLevel } from '../../src/apiserver/connection-limits.js';
import { ApiError } from '../../src/api/status.js';

const node = { groups: ['system:nodes', 'system:authenticated'] };
const ri = (group: string, resource: string, namespace = '') => ({ group, resource, namespace });

test('requests are classed as the default FlowSchemas class them', () => {
  assert.equal(priorityLevel(node, ri('coordination.k8s.io', 'leases', 'kube-node-lease')), 'node-high');
  assert.equal(priorityLevel(node, ri('', 'nodes')), 'node-high');
  assert.equal(priorityLevel(node, ri('', 'pods', 'default')), 'system');
  assert.equal(priorityLevel(node, ri('coordination.k8s.io', 'leases', 'default')), 'system');
  assert.equal(priorityLevel({ groups: ['system:masters', 'system:authenticated'] }, ri('', 'pods', 'default')), 'exempt');
  assert.equal(priorityLevel({ groups: ['system:serviceaccounts', 'system:authenticated'] }, ri('coordination.k8s.io', 'leases', 'kube-node-lease')), 'workload');
  assert.equal(priorityLevel({ groups: [] }, ri('', 'nodes')), 'workload');
});

test('a full workload level answers 429 while node heartbeats still get in', () => {
  const l = new InflightLimiter(100, { maxInflightWorkload: 3, maxInflightSystem: 2, maxInflightNodeHigh: 5 });
  const held = [l.enter('alice', 'workload'), l.enter('bob', 'workload'), l.enter('carol', 'workload')];
  assert.throws(() => l.enter('dave', 'workload'), (e: unknown) => e instanceof ApiError && e.code === 429);
  const beats = Array.from({ length: 5 }, (_, i) => l.enter(`system:node:n${i}`, 'node-high'));
  assert.equal(l.inFlight('node-high'), 5);
  assert.throws(() => l.enter('system:node:n9', 'node-high'), (e: unknown) => e instanceof ApiError && e.code === 429);
  // Nodes' pod status writes have their own level too: they neither starve nor are starved by heartbeats.
  l.enter('system:node:n0', 'system');
  // The admin is exempt from level budgets (bounded per user only).
  for (let i = 0; i < 50; i++) l.enter('system:admin', 'exempt');
  held[0]!();
  held[0]!();   // leaving twice counts once
  assert.equal(l.inFlight('workload'), 2);
  l.enter('dave', 'workload');
  for (const b of beats) b();
  assert.equal(l.inFlight('node-high'), 0);
});
