// The Deployment controller's pure rules: pod-template-hash, template equality, surge/unavailable
// rounding, rollout step sizes, proportional scaling, revisions and history cleanup.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeHash, equalIgnoreHash, fnv32a, safeEncode } from '../../src/controllers/deployment/hash.js';
import {
  maxSurge, maxUnavailable, newRSNewReplicas, proportion, resolveFenceposts, scaledValue, type Obj,
} from '../../src/controllers/deployment/sizes.js';
import { replicaSetsToCleanUp, setNewReplicaSetAnnotations } from '../../src/controllers/deployment/revisions.js';
import { rolloutStatus, progressCheckDelayMs } from '../../src/controllers/deployment/progress.js';

const template = { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'nginx:1' }] } };

function dep(replicas: number, rollingUpdate: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): Obj {
  return { metadata: { name: 'd', generation: 1 }, spec: { replicas, strategy: { type: 'RollingUpdate', rollingUpdate }, template, ...extra } };
}
function rs(name: string, replicas: number, annotations: Record<string, string> = {}, status: Record<string, unknown> = {}, created = 0): Obj {
  return { metadata: { name, annotations, creationTimestamp: new Date(created).toISOString(), generation: 1 }, spec: { replicas }, status: { observedGeneration: 1, ...status } };
}

test('pod-template-hash: FNV-1a 32, vowel-free alphabet, stable, moved by the collision count', () => {
  assert.equal(fnv32a(Buffer.from('')), 0x811c9dc5);
  assert.equal(fnv32a(Buffer.from('a')), 0xe40c292c);          // the FNV-1a reference value
  assert.equal(safeEncode('0159'), '459f');                    // char code modulo 27 into the alphabet
  const h = computeHash(template);
  assert.match(h, /^[bcdfghjklmnpqrstvwxz2456789]{1,10}$/);
  assert.equal(computeHash(structuredClone(template)), h);
  // Key order and empty values do not change the template's meaning, so not its hash either.
  assert.equal(computeHash({ spec: template.spec, metadata: { labels: { app: 'web' }, annotations: {} } }), h);
  assert.notEqual(computeHash(template, 1), h);
  assert.notEqual(computeHash(template, 1), computeHash(template, 2));
  assert.notEqual(computeHash({ ...template, spec: { containers: [{ name: 'c', image: 'nginx:2' }] } }), h);
});

test('template equality ignores the hash label and the null creationTimestamp kubectl sends back', () => {
  const fromRS = { metadata: { labels: { app: 'web', 'pod-template-hash': 'abc' }, creationTimestamp: null }, spec: template.spec };
  assert.ok(equalIgnoreHash(fromRS, template));
  assert.ok(!equalIgnoreHash({ ...fromRS, metadata: { labels: { app: 'api' } } }, template));
});

test('maxSurge rounds up, maxUnavailable rounds down; both zero means one unavailable', () => {
  assert.equal(scaledValue('25%', 10, true), 3);
  assert.equal(scaledValue('25%', 10, false), 2);
  assert.equal(scaledValue(4, 10, false), 4);
  assert.throws(() => scaledValue('25', 10, true), /not a percentage/);
  assert.deepEqual(resolveFenceposts(dep(3, { maxSurge: '0%', maxUnavailable: '10%' })), { surge: 0, unavailable: 1 });
  assert.equal(maxSurge(dep(3)), 1);                 // defaults 25%: ceil(0.75)
  assert.equal(maxUnavailable(dep(3)), 0);           // floor(0.75)
  assert.equal(maxUnavailable(dep(2, { maxUnavailable: 5 })), 2);   // never more than replicas
  assert.equal(maxSurge({ ...dep(3), spec: { ...dep(3).spec, strategy: { type: 'Recreate' } } }), 0);
});

test('the new ReplicaSet grows only into the surge budget', () => {
  const d = dep(10, { maxSurge: 2, maxUnavailable: 0 });
  const newRS = rs('new', 0);
  assert.equal(newRSNewReplicas(d, [rs('old', 10), newRS], newRS), 2);
  assert.equal(newRSNewReplicas(d, [rs('old', 12), newRS], newRS), 0);
  const almost = rs('new', 9);
  assert.equal(newRSNewReplicas(d, [rs('old', 1), almost], almost), 10);
});

test('proportional scaling mid-rollout splits by size and rounds half away from zero', () => {
  // 10 replicas, surge 3: sets sized 8 and 5 before; the Deployment goes to 20 (surge 5 at 25%).
  const d = { ...dep(20, { maxSurge: '25%', maxUnavailable: '25%' }), status: { replicas: 13 } };
  const ann = { 'deployment.kubernetes.io/max-replicas': '13' };
  const big = rs('big', 8, ann), small = rs('small', 5, ann);
  const toAdd = 25 - 13;
  const first = proportion(big, d, toAdd, 0);
  const second = proportion(small, d, toAdd, first);
  assert.equal(first, 7);     // round(8 * 25 / 13) - 8 = round(15.38) - 8
  assert.equal(second, 5);    // round(5 * 25 / 13) - 5 = round(9.62) - 5
  assert.equal(proportion(rs('zero', 0, ann), d, toAdd, 0), 0);
});

test('a rollback moves the old ReplicaSet to the next revision and keeps its old number in the history', () => {
  const d = { metadata: { name: 'd', annotations: { 'kubernetes.io/change-cause': 'undo', 'deployment.kubernetes.io/revision': '2' } }, spec: { replicas: 2 } };
  const back = rs('first', 0, { 'deployment.kubernetes.io/revision': '1' });
  assert.ok(setNewReplicaSetAnnotations(d, back, 3, true, 1));
  assert.equal(back.metadata.annotations!['deployment.kubernetes.io/revision'], '3');
  assert.equal(back.metadata.annotations!['deployment.kubernetes.io/revision-history'], '1');
  assert.equal(back.metadata.annotations!['kubernetes.io/change-cause'], 'undo');
  // Existing sets keep their replica annotations; a lower revision never replaces a higher one.
  assert.equal(back.metadata.annotations!['deployment.kubernetes.io/desired-replicas'], undefined);
  assert.ok(!setNewReplicaSetAnnotations(d, back, 2, true, 1));
  setNewReplicaSetAnnotations(d, back, 5, true, 1);
  assert.equal(back.metadata.annotations!['deployment.kubernetes.io/revision-history'], '1,3');
});

test('history cleanup deletes the lowest revisions beyond the limit, only when scaled down and observed', () => {
  const rev = (n: number) => ({ 'deployment.kubernetes.io/revision': String(n) });
  const d = { metadata: { name: 'd' }, spec: { revisionHistoryLimit: 1 } };
  const old = [rs('r3', 0, rev(3)), rs('r1', 0, rev(1)), rs('r2', 1, rev(2), { replicas: 1 })];
  assert.deepEqual(replicaSetsToCleanUp(d, old).map((r) => r.metadata.name), ['r1']);
  assert.deepEqual(replicaSetsToCleanUp({ ...d, spec: {} }, old), []);
});

test('progress: a timed-out rollout is reported once the deadline passed, and checked again just after it', () => {
  const now = Date.parse('2025-01-01T00:10:00Z');
  const d: Obj = {
    ...dep(1), spec: { ...dep(1).spec, progressDeadlineSeconds: 60 },
    status: { observedGeneration: 1, replicas: 1, updatedReplicas: 1, conditions: [
      { type: 'Progressing', status: 'True', reason: 'NewReplicaSetCreated', lastUpdateTime: '2025-01-01T00:09:30Z', lastTransitionTime: '2025-01-01T00:09:30Z' },
    ] },
  };
  const newRS = rs('d-abc', 1, {}, { replicas: 1 });
  const early = rolloutStatus([newRS], newRS, d, now);
  assert.equal(early.conditions.find((c: any) => c.type === 'Progressing').reason, 'NewReplicaSetCreated');
  assert.equal(progressCheckDelayMs(d, early, now), 31_000);
  const late = rolloutStatus([newRS], newRS, d, now + 31_000);
  const c = late.conditions.find((x: any) => x.type === 'Progressing');
  assert.deepEqual([c.status, c.reason, c.message], ['False', 'ProgressDeadlineExceeded', 'ReplicaSet "d-abc" has timed out progressing.']);
});
