// The server's resource profiles (issue 15): `auto` is small below 2 GB of memory; unknown names fail.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyProfile, explicitV8Flag, PROFILES, resolveProfile, SMALL_BOARD_BYTES } from '../../src/server/profile.js';

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

test('applying the profile ends with a full collection: what the load left as garbage goes at once', async () => {
  let held: { i: number; s: string }[] | undefined = Array.from({ length: 500_000 }, (_, i) => ({ i, s: `x${i}` }));
  // Young collections promote what survives them: `held` is in the old generation after these.
  for (let i = 0; i < 5; i++) {
    Array.from({ length: 200_000 }, () => ({}));
    await new Promise(setImmediate);
  }
  assert.equal(held.length, 500_000);
  held = undefined;
  const before = process.memoryUsage().heapUsed;
  applyProfile('default', 1000);
  const after = process.memoryUsage().heapUsed;
  assert.ok(before - after > 10 * 2 ** 20, `heap used ${before} → ${after} bytes`);
});
