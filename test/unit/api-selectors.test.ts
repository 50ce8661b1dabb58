// One label-selector matcher (src/api/selectors.ts) for string selectors, LabelSelector objects and
// label sets, replacing four copies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compileLabelSelector, labelPredicate, matchLabelSelectorObject, matchLabelSet, parseLabelSelector } from '../../src/api/selectors.js';

const labels = { app: 'web', tier: 'front', env: 'prod' };

test('LabelSelector operators', () => {
  const m = (matchExpressions: any[]) => matchLabelSelectorObject({ matchExpressions }, labels);
  assert.equal(m([{ key: 'env', operator: 'In', values: ['prod', 'stage'] }]), true);
  assert.equal(m([{ key: 'env', operator: 'In', values: ['stage'] }]), false);
  assert.equal(m([{ key: 'missing', operator: 'In', values: ['x'] }]), false);
  assert.equal(m([{ key: 'env', operator: 'NotIn', values: ['prod'] }]), false);
  assert.equal(m([{ key: 'env', operator: 'NotIn', values: ['stage'] }]), true);
  assert.equal(m([{ key: 'missing', operator: 'NotIn', values: ['x'] }]), true, 'NotIn matches an absent key');
  assert.equal(m([{ key: 'app', operator: 'Exists' }]), true);
  assert.equal(m([{ key: 'missing', operator: 'Exists' }]), false);
  assert.equal(m([{ key: 'missing', operator: 'DoesNotExist' }]), true);
  assert.equal(m([{ key: 'app', operator: 'DoesNotExist' }]), false);
});

test('matchLabels and matchExpressions are ANDed; absent selects nothing, empty everything', () => {
  assert.equal(matchLabelSelectorObject({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front'] }] }, labels), true);
  assert.equal(matchLabelSelectorObject({ matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['back'] }] }, labels), false);
  assert.equal(matchLabelSelectorObject({ matchLabels: { app: 'api' }, matchExpressions: [{ key: 'tier', operator: 'Exists' }] }, labels), false);
  assert.equal(matchLabelSelectorObject({}, labels), true);
  assert.equal(matchLabelSelectorObject({}, undefined), true);
  assert.equal(matchLabelSelectorObject(undefined, labels), false);
  assert.equal(matchLabelSelectorObject(null, labels), false);
});

test('a selector that cannot be parsed selects nothing', () => {
  assert.equal(matchLabelSelectorObject({ matchExpressions: [{ key: 'app', operator: 'Bogus' }] }, labels), false);
  assert.equal(matchLabelSelectorObject({ matchExpressions: [{ key: 'app', operator: 'In', values: [] }] }, labels), false);
  assert.equal(matchLabelSelectorObject({ matchExpressions: [{ key: 'app', operator: 'NotIn' }] }, labels), false);
  assert.equal(matchLabelSelectorObject({ matchExpressions: [{ key: 'app', operator: 'Exists', values: ['web'] }] }, labels), false);
});

test('only own labels count: a key named like an Object.prototype member is not present by accident', () => {
  assert.equal(matchLabelSelectorObject({ matchExpressions: [{ key: 'constructor', operator: 'Exists' }] }, labels), false);
  assert.equal(matchLabelSelectorObject({ matchExpressions: [{ key: 'toString', operator: 'DoesNotExist' }] }, labels), true);
});

test('string selectors and objects agree', () => {
  const cases: [string, any][] = [
    ['app=web,tier in (front,back)', { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] }],
    ['env notin (prod),app', { matchExpressions: [{ key: 'env', operator: 'NotIn', values: ['prod'] }, { key: 'app', operator: 'Exists' }] }],
    ['!canary', { matchExpressions: [{ key: 'canary', operator: 'DoesNotExist' }] }],
  ];
  for (const [s, obj] of cases) {
    const fromString = labelPredicate(parseLabelSelector(s))!;
    const fromObject = compileLabelSelector(obj);
    const samples: Record<string, string>[] = [labels, { app: 'web', tier: 'back' }, { canary: 'yes', app: 'x' }, {}];
    for (const l of samples) {
      assert.equal(fromString(l), fromObject(l), `${s} on ${JSON.stringify(l)}`);
    }
  }
});

test('label sets (Service selectors, nodeSelector)', () => {
  assert.equal(matchLabelSet({ app: 'web' }, labels), true);
  assert.equal(matchLabelSet({ app: 'web', tier: 'back' }, labels), false);
  assert.equal(matchLabelSet({}, labels), true);
  assert.equal(matchLabelSet({ app: 'web' }, undefined), false);
});

test('a stored (frozen) selector is compiled once; a mutable one every time, so a change is seen', () => {
  const stored = Object.freeze({ matchLabels: Object.freeze({ app: 'web' }) });
  const first = compileLabelSelector(stored);
  assert.equal(compileLabelSelector(stored), first);
  assert.equal(first({ app: 'web' }), true);
  const live: { matchLabels: Record<string, string> } = { matchLabels: { app: 'web' } };
  assert.equal(matchLabelSelectorObject(live, { app: 'web' }), true);
  live.matchLabels.app = 'db';
  assert.equal(matchLabelSelectorObject(live, { app: 'web' }), false);
  assert.notEqual(compileLabelSelector(live), compileLabelSelector(live));
});
