// The server's resource profiles through the real launcher (issue 15): `bin/skiff server --profile
// small` must reach node with the small profile's V8 flags and malloc arenas (they can only be given
// when node starts, so the launcher passes them), and the server must work under them; the default
// profile passes none of them. Both get malloc's mmap threshold (a TLS connection's read buffer mmapped
// on its own: docs/scale.md item 31).
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { cleanupAll, startServer, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';

after(cleanupAll);

const SMALL_FLAGS = ['--max-old-space-size=128', '--max-semi-space-size=1', '--optimize-for-size', '--no-opt'];

/** The node flags (before the script) and the environment the server process runs with. */
function processOf(s: TestServer): { nodeFlags: string[]; env: Map<string, string> } {
  const argv = readFileSync(`/proc/${s.proc.pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  const script = argv.findIndex((a) => a.endsWith('dist/cli/main.js'));
  assert.ok(script > 0, `the launcher runs node on dist/cli/main.js: ${argv.join(' ')}`);
  const env = new Map(readFileSync(`/proc/${s.proc.pid}/environ`, 'utf8').split('\0').filter(Boolean)
    .map((kv) => [kv.slice(0, kv.indexOf('=')), kv.slice(kv.indexOf('=') + 1)] as [string, string]));
  return { nodeFlags: argv.slice(1, script), env };
}

test('--profile small: the launcher passes its V8 flags and malloc settings, and the server serves', async () => {
  const [small, standard] = await Promise.all([
    startServer({ args: ['--profile', 'small'] }),
    startServer({ args: ['--profile', 'default'] }),
  ]);
  const s = processOf(small);
  for (const f of SMALL_FLAGS) assert.ok(s.nodeFlags.includes(f), `small profile: node runs with ${f} (has: ${s.nodeFlags.join(' ')})`);
  assert.equal(s.env.get('MALLOC_ARENA_MAX'), '2');
  assert.equal(s.env.get('MALLOC_MMAP_THRESHOLD_'), '65536');
  assert.match(readFileSync(small.logPath, 'utf8'), /"profile":"small","watchCacheSize":1000/);

  const d = processOf(standard);
  assert.deepEqual(d.nodeFlags, [], 'the default profile leaves V8 its own limits');
  assert.equal(d.env.get('MALLOC_MMAP_THRESHOLD_'), '65536');
  assert.match(readFileSync(standard.logPath, 'utf8'), /"profile":"default","watchCacheSize":10000/);

  // Under the small profile's flags the API works end to end (the optimizing compiler is off).
  ok(await small.kubectl(['create', 'configmap', 'c1', '--from-literal=k=v']));
  const got = ok(await small.kubectl(['get', 'configmap', 'c1', '-o', 'jsonpath={.data.k}']));
  assert.equal(got.trim(), 'v');
});
