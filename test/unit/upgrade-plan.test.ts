// The rolling upgrade's decisions (src/controllers/upgrade/plan.ts): servers first and one at a time,
// agents by concurrency, the health gate pausing the plan, the window, nodes not Ready; and the
// version-skew rule of joins (src/release-version.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inWindow, letGoPatch, planStep, type PlanNode } from '../../src/controllers/upgrade/plan.js';
import { ANN, type UpgradeSpec } from '../../src/controllers/upgrade/api.js';
import { agentSkewRefusal, minorOf, minorsBehind } from '../../src/release-version.js';

const NOW = Date.parse('2026-12-05T12:00:00Z');   // a Saturday
const server = (name: string, ann: Record<string, string> = {}, ready = true): PlanNode =>
  ({ name, labels: { 'node-role.kubernetes.io/control-plane': 'true' }, annotations: { [ANN.runningVersion]: '0.1.0', ...ann }, ready });
const agent = (name: string, ann: Record<string, string> = {}, ready = true, labels: Record<string, string> = {}): PlanNode =>
  ({ name, labels, annotations: { [ANN.runningVersion]: '0.1.0', ...ann }, ready });
const spec: UpgradeSpec = { version: '0.2.0' };
const upgraded = { [ANN.runningVersion]: '0.2.0' };
const targeted = (at = NOW) => ({ [ANN.plan]: 'p', [ANN.targetVersion]: '0.2.0', [ANN.targetTime]: new Date(at).toISOString() });

test('servers first, one at a time; agents only once every server runs the version', () => {
  let s = planStep('p', spec, [agent('a1'), server('s2'), server('s1'), agent('a2')], NOW);
  assert.equal(s.state, 'InProgress');
  assert.deepEqual(s.start, ['s1']);
  s = planStep('p', { ...spec, concurrency: 5 }, [agent('a1'), server('s1', targeted()), server('s2'), agent('a2')], NOW);
  assert.deepEqual(s.start, [], 'no second server while one upgrades, whatever the concurrency');
  s = planStep('p', { ...spec, concurrency: 5 }, [agent('a1'), server('s1', upgraded), server('s2'), agent('a2')], NOW);
  assert.deepEqual(s.start, ['s2']);
  s = planStep('p', spec, [agent('a2'), server('s1', upgraded), agent('a1')], NOW);
  assert.deepEqual(s.start, ['a1'], 'then agents, by name');
});

test('agents by concurrency: started ones count against it', () => {
  const nodes = [server('s1', upgraded), agent('a1', targeted()), agent('a2'), agent('a3'), agent('a4')];
  assert.deepEqual(planStep('p', spec, nodes, NOW).start, []);
  assert.deepEqual(planStep('p', { ...spec, concurrency: 3 }, nodes, NOW).start, ['a2', 'a3']);
  const s = planStep('p', { ...spec, concurrency: 3 }, nodes, NOW);
  assert.deepEqual(s.nodes.map((n) => n.phase), ['Upgrading', 'Pending', 'Pending', 'Pending', 'Upgraded']);
});

test('a node claimed for cordon/drain is active; one not Ready is not started', () => {
  const s = planStep('p', spec, [server('s1', upgraded), agent('a1', { [ANN.plan]: 'p', [ANN.cordoned]: 'true' }), agent('a2')], NOW);
  assert.equal(s.nodes.find((n) => n.name === 'a1')!.phase, 'Draining');
  assert.deepEqual(s.start, []);
  const w = planStep('p', spec, [server('s1', upgraded), agent('a1', {}, false)], NOW);
  assert.equal(w.state, 'Waiting');
  assert.match(w.message, /a1 to be Ready/);
});

test('the health gate: a rolled-back node pauses the plan with its message', () => {
  const failed = { [ANN.state]: 'RolledBack', [ANN.stateVersion]: '0.2.0', [ANN.message]: '0.2.0 did not become Ready within 60s; rolled back to 0.1.0' };
  const s = planStep('p', spec, [server('s1', upgraded), agent('a1', failed), agent('a2')], NOW);
  assert.equal(s.state, 'Paused');
  assert.deepEqual(s.start, []);
  assert.match(s.message, /health gate: node a1: 0\.2\.0 did not become Ready within 60s; rolled back to 0\.1\.0/);
  // A new version starts afresh (the rollback was of 0.2.0).
  assert.deepEqual(planStep('p', { version: '0.2.1' }, [server('s1', { [ANN.runningVersion]: '0.2.1' }), agent('a1', failed)], NOW).start, ['a1']);
});

test('a node silent past its deadline fails the plan; an upgraded but not Ready node is not done', () => {
  const late = planStep('p', { ...spec, healthTimeoutSeconds: 60 }, [server('s1', targeted(NOW - 1000 * (60 + 301)))], NOW);
  assert.equal(late.state, 'Paused');
  assert.match(late.message, /no report from the node's agent within 360 s/);
  const notReady = planStep('p', spec, [server('s1', { ...targeted(), ...upgraded }, false)], NOW);
  assert.equal(notReady.nodes[0]!.phase, 'Upgrading');
  assert.equal(notReady.state, 'InProgress');
});

test('complete, paused, selector', () => {
  assert.equal(planStep('p', spec, [server('s1', upgraded), agent('a1', upgraded)], NOW).state, 'Complete');
  const paused = planStep('p', { ...spec, paused: true }, [server('s1')], NOW);
  assert.equal(paused.state, 'Paused');
  assert.deepEqual(paused.start, []);
  const sel = planStep('p', { ...spec, nodeSelector: { matchLabels: { pool: 'edge' } } }, [server('s1'), agent('a1', {}, true, { pool: 'edge' })], NOW);
  assert.deepEqual(sel.nodes.map((n) => n.name), ['a1']);
  assert.deepEqual(sel.start, ['a1'], 'servers outside the selector do not hold agents back');
  assert.equal(planStep('p', spec, [server('s1')], NOW, 'no release skiff-0.2.0-linux-amd64.tar.gz').state, 'Invalid');
});

test('a node held by another existing plan is left to it', () => {
  const held = agent('a1', { [ANN.plan]: 'other', [ANN.targetVersion]: '0.3.0' });
  const s = planStep('p', spec, [server('s1', upgraded), held, agent('a2')], NOW, undefined, new Set(['other']));
  assert.deepEqual(s.start, ['a2']);
  assert.equal(s.nodes.find((n) => n.name === 'a1')!.message, 'held by plan other');
  assert.deepEqual(planStep('p', spec, [server('s1', upgraded), held], NOW, undefined, new Set()).start, ['a1'], 'a deleted plan holds nothing');
});

test('the maintenance window', () => {
  assert.ok(inWindow(undefined, NOW));
  assert.ok(inWindow({ days: ['saturday'], startTime: '11:00', endTime: '13:00' }, NOW));
  assert.ok(!inWindow({ days: ['monday', 'tue'] }, NOW));
  assert.ok(inWindow({ days: ['sat'] }, NOW));
  assert.ok(!inWindow({ startTime: '13:00', endTime: '14:00' }, NOW));
  assert.ok(inWindow({ startTime: '22:00', endTime: '13:00' }, NOW), 'spans midnight');
  assert.ok(!inWindow({ startTime: '11:00', endTime: '13:00', timeZone: 'America/New_York' }, NOW), '07:00 in New York');
  const s = planStep('p', { ...spec, window: { startTime: '13:00', endTime: '14:00' } }, [server('s1')], NOW);
  assert.equal(s.state, 'Waiting');
  assert.deepEqual(s.start, []);
});

test('version skew: a newer agent is refused, older ones join', () => {
  assert.deepEqual(minorOf('v0.3.1-rc1'), [0, 3]);
  assert.equal(agentSkewRefusal('0.2.0', '0.2.5'), undefined, 'patch versions never matter');
  assert.equal(agentSkewRefusal('0.2.0', '0.1.9'), undefined, 'one minor behind');
  assert.equal(agentSkewRefusal('0.2.0', undefined), undefined, 'an agent predating the rule');
  assert.match(agentSkewRefusal('0.2.0', '0.3.0')!, /agent version 0\.3\.0 is newer than the server's 0\.2\.0.*upgrade the servers first/);
  assert.match(agentSkewRefusal('1.9.0', '2.0.0')!, /newer/);
  assert.equal(minorsBehind('0.4.0', '0.2.0'), 2);
  assert.equal(minorsBehind('0.2.0', '0.2.0'), 0);
});

test('letting go of a node: only the plan\'s own, its annotations cleared, uncordoned only if the plan cordoned it', () => {
  const ours = { [ANN.plan]: 'p', [ANN.targetVersion]: '0.2.0', [ANN.cordoned]: 'true', [ANN.state]: 'Restarting', [ANN.runningVersion]: '0.1.0' };
  const patch = letGoPatch('p', ours) as any;
  assert.deepEqual(patch.spec, { unschedulable: null });
  for (const k of [ANN.plan, ANN.targetVersion, ANN.targetFile, ANN.targetSha256, ANN.healthTimeout, ANN.targetTime, ANN.cordoned]) assert.equal(patch.metadata.annotations[k], null, k);
  assert.ok(!(ANN.state in patch.metadata.annotations) && !(ANN.runningVersion in patch.metadata.annotations), 'the agent\'s reports stay');
  assert.equal(letGoPatch('p', { ...ours, [ANN.cordoned]: 'already' })!.spec, undefined, 'cordoned before the plan: stays cordoned');
  assert.equal(letGoPatch('p', { ...ours, [ANN.cordoned]: '' })!.spec, undefined);
  assert.equal(letGoPatch('other', ours), undefined, 'another plan\'s node is left alone');
  assert.equal(letGoPatch('p', {}), undefined);
});
