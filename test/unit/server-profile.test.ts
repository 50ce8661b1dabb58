// The server's resource profiles (issue 15): `auto` is small below 2 GB of memory; unknown names fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PROFILES, resolveProfile, SMALL_BOARD_BYTES } from '../../src/server/profile.js';

test('profiles resolve by name, auto by total memory', () => {
  assert.equal(resolveProfile('auto', 1024 ** 3).name, 'small', 'a 1 GB board');
  assert.equal(resolveProfile('auto', SMALL_BOARD_BYTES).name, 'default');
  assert.equal(resolveProfile('auto', 24 * 1024 ** 3).name, 'default');
  assert.equal(resolveProfile('small', 24 * 1024 ** 3), PROFILES.small, 'asked for explicitly on any machine');
  assert.equal(resolveProfile('default', 1024 ** 3), PROFILES.default);
  assert.ok(PROFILES.small.watchCacheSize < PROFILES.default.watchCacheSize);
  assert.throws(() => resolveProfile('tiny', 0), /--profile: expected small, default or auto/);
});
