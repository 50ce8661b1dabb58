// One label-selector matcher (src/api/selectors.ts) for string selectors, LabelSelector objects and
// label sets, replacing four copies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  compileLabelSelector, labelPredicate, matchLabelSelectorObject, matchLabelSet, parseLabelSelector, selectingIndexKeys, selectorIndexKeys, type LabelSelector,
} from '../../src/api/selectors.js';

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

test('an index by selectorIndexKeys finds every selector that selects a label set, each once', () => {
  const selectors: (LabelSelector | undefined)[] = [
    undefined,
    {},
    { matchLabels: { app: 'web' } },
    { matchLabels: { app: 'web', tier: 'front' } },
    { matchLabels: { app: 'db' } },
    { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'db'] }] },
    { matchExpressions: [{ key: 'app', operator: 'In', values: ['web', 'web'] }] },
    { matchExpressions: [{ key: 'tier', operator: 'Exists' }] },
    { matchExpressions: [{ key: 'app', operator: 'NotIn', values: ['web'] }] },
    { matchExpressions: [{ key: 'app', operator: 'DoesNotExist' }] },
    { matchExpressions: [{ key: 'app', operator: 'Bogus' }] },
    { matchLabels: { app: 'web' }, matchExpressions: [{ key: 'tier', operator: 'In', values: ['front', 'back'] }] },
  ];
  const index = new Map<string, Set<number>>();
  selectors.forEach((sel, i) => {
    for (const k of selectorIndexKeys('ns', sel)) {
      if (!index.has(k)) index.set(k, new Set());
      index.get(k)!.add(i);
    }
  });
  const labelSets: Record<string, string>[] = [{}, { app: 'web' }, { app: 'web', tier: 'front' }, { app: 'db', tier: 'back' }, { tier: 'x' }, { other: 'y' }];
  for (const labels of labelSets) {
    const found: number[] = [];
    for (const k of selectingIndexKeys('ns', labels)) found.push(...(index.get(k) ?? []));
    assert.equal(new Set(found).size, found.length, `no selector found twice for ${JSON.stringify(labels)}`);
    const selecting = selectors.flatMap((sel, i) => (matchLabelSelectorObject(sel, labels) ? [i] : []));
    for (const i of selecting) assert.ok(found.includes(i), `selector ${i} (${JSON.stringify(selectors[i])}) selects ${JSON.stringify(labels)} and is found`);
    // Another namespace's objects are never candidates.
    assert.deepEqual(selectingIndexKeys('other', labels).filter((k) => index.has(k)), []);
  }
  // Selectors that select nothing are filed nowhere.
  assert.deepEqual(selectorIndexKeys('ns', undefined), []);
  assert.deepEqual(selectorIndexKeys('ns', { matchExpressions: [{ key: 'a', operator: 'Bogus' }] }), []);
});
