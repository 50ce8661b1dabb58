// Field selectors are parsed in one pass (issue 11: the regex backtracked quadratically on long runs
// of spaces, and 40 such requests held /readyz for seconds). Correctness on pathological input; the
// large input runs within the test's generous timeout rather than against a duration.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fieldPredicate, parseFieldSelector } from '../../src/api/selectors.js';

test('field selector terms: operators, spaces and escapes', () => {
  assert.deepEqual(parseFieldSelector(' spec.nodeName = n1 , status.phase!=Failed,metadata.name==a\\,b '), [
    { field: 'spec.nodeName', op: '=', value: 'n1' },
    { field: 'status.phase', op: '!=', value: 'Failed' },
    { field: 'metadata.name', op: '=', value: 'a,b' },
  ]);
  assert.deepEqual(parseFieldSelector('metadata.name='), [{ field: 'metadata.name', op: '=', value: '' }]);
  assert.throws(() => parseFieldSelector('metadata.name'), /invalid selector/);
  assert.throws(() => parseFieldSelector('=x'), /invalid selector/);
});

test('a pathological selector (long runs of spaces inside the value) parses and matches correctly', { timeout: 60_000 }, () => {
  const value = 'x' + ' '.repeat(200_000) + 'y';
  for (let i = 0; i < 20; i++) {
    const reqs = parseFieldSelector(`metadata.name=${value}   ,metadata.namespace!=${' '.repeat(100_000)}z`);
    assert.equal(reqs[0].value, value);
    assert.equal(reqs[1].value, 'z');
    const p = fieldPredicate(reqs, '/configmaps')!;
    assert.equal(p({ metadata: { name: value, namespace: 'default' } }), true);
    assert.equal(p({ metadata: { name: 'x y', namespace: 'default' } }), false);
  }
  assert.throws(() => parseFieldSelector('a' + ' '.repeat(200_000) + 'b'), /invalid selector/);
});
