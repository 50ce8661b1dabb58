// The server's resource profiles (issue 15): `auto` is small below 2 GB of memory; unknown names fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { explicitV8Flag, PROFILES, resolveProfile, SMALL_BOARD_BYTES } from '../../src/server/profile.js';

test('profiles resolve by name, auto by total memory', () => {
  assert.equal(resolveProfile('auto', 1024 ** 3).name, 'small', 'a 1 GB board');
  assert.equal(resolveProfile('auto', SMALL_BOARD_BYTES).name, 'default');
  assert.equal(resolveProfile('auto', 24 * 1024 ** 3).name, 'default');
  assert.equal(resolveProfile('small', 24 * 1024 ** 3), PROFILES.small, 'asked for explicitly on any machine');
  assert.equal(resolveProfile('default', 1024 ** 3), PROFILES.default);
  assert.ok(PROFILES.small.watchCacheSize < PROFILES.default.watchCacheSize);
  assert.throws(() => resolveProfile('tiny', 0), /--profile: expected small, default or auto/);
});

test('a V8 flag given to node itself is found (it wins over the profile), the last one counting', () => {
  assert.equal(explicitV8Flag('heap-growing-percent', ['--cpu-prof', '--heap-growing-percent=25']), '25');
  assert.equal(explicitV8Flag('heap-growing-percent', ['--heap_growing_percent=30', '--heap-growing-percent=20']), '20');
  assert.equal(explicitV8Flag('heap-growing-percent', ['--max-old-space-size=128']), undefined);
  assert.equal(explicitV8Flag('heap-growing-percent', []), undefined);
  assert.equal(explicitV8Flag('heap-growing-percent', ['--heap-growing-percent', '40', '--trace-gc']), '40');
});
