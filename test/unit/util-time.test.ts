import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isKnownTimeZone, microTime, rfc3339 } from '../../src/util/time.js';

test('metav1.Time drops fractions; MicroTime keeps six digits', () => {
  assert.equal(rfc3339(Date.parse('2024-03-04T05:06:07.999Z')), '2024-03-04T05:06:07Z');
  assert.equal(rfc3339(new Date('2024-03-04T05:06:07Z')), '2024-03-04T05:06:07Z');
  assert.equal(microTime(new Date('2024-03-04T05:06:07.123Z')), '2024-03-04T05:06:07.123000Z');
});

test('time zones', () => {
  assert.equal(isKnownTimeZone('Europe/Berlin'), true);
  assert.equal(isKnownTimeZone('UTC'), true);
  assert.equal(isKnownTimeZone('Mars/Olympus'), false);
});
