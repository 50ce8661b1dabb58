// One exact parseQuantity (src/api/quantity.ts): what the float copy it replaced got wrong, and
// Kubernetes' rounding (up, to nano precision) and format errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareQuantities, isQuantity, parseQuantity, quantityNanos, toMillis, tryParseQuantity } from '../../src/api/quantity.js';

test('0.1 and 100m are the same quantity', () => {
  assert.equal(compareQuantities('0.1', '100m'), 0);
  assert.equal(toMillis('0.1'), 100); // 0.1 * 1000 in floating point is 100.00000000000001 and rounded up to 101
  assert.equal(toMillis(0.1), 100);
  assert.equal(parseQuantity('0.3', 3), 300);
  assert.equal(compareQuantities('1', '1000m'), 0);
  assert.equal(compareQuantities('1Gi', '1024Mi'), 0);
  assert.equal(compareQuantities('1G', '1Gi'), -1);
});

test('suffixes and exponents', () => {
  assert.equal(parseQuantity('1Gi'), 1073741824);
  assert.equal(parseQuantity('128Mi'), 134217728);
  assert.equal(parseQuantity('1e3'), 1000);
  assert.equal(parseQuantity('1E3'), 1000);
  assert.equal(parseQuantity('1.5k'), 1500);
  assert.equal(parseQuantity('2M'), 2_000_000);
  assert.equal(parseQuantity('250u', 9), 250_000);
  assert.equal(parseQuantity('7n', 9), 7);
  assert.equal(parseQuantity('1.'), 1);
  assert.equal(parseQuantity('.5', 3), 500);
  assert.equal(parseQuantity(' 2 '), 2, 'JSON decoding trims');
  assert.equal(parseQuantity('-1.5'), -2, 'rounded away from zero, as Kubernetes rounds up');
});

test('rounded up to the requested scale, and to 1n below nano precision', () => {
  assert.equal(parseQuantity('1m'), 1);
  assert.equal(parseQuantity('1001m'), 2);
  assert.equal(parseQuantity('0.5m', 3), 1);
  assert.equal(quantityNanos('1e-12'), 1n);
  assert.equal(quantityNanos('0.0000000001'), 1n);
  assert.equal(quantityNanos('0e-30'), 0n);
});

test('big values stay exact', () => {
  assert.equal(quantityNanos('1Ei'), (1n << 60n) * 1_000_000_000n);
  assert.equal(compareQuantities('8Ei', '9223372036854775808'), 0);
  assert.equal(compareQuantities('9223372036854775807', '9223372036854775808'), -1, 'one apart at 2^63 (floats say equal)');
  assert.equal(compareQuantities('1e100', '1e99'), 1);
  assert.equal(parseQuantity('1Pi'), 2 ** 50);
});

test('malformed quantities', () => {
  for (const bad of ['', '.', 'abc', '1K', '1 Gi', '1Gi1', '1e', '--1', '1.2.3', '1e100000']) {
    assert.equal(isQuantity(bad), false, bad);
    assert.equal(tryParseQuantity(bad), undefined, bad);
  }
  assert.throws(() => parseQuantity('1K'), /quantities must match the regular expression/);
  assert.equal(tryParseQuantity(undefined), undefined);
  assert.equal(tryParseQuantity(Number.NaN), undefined);
});
