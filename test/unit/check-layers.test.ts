// The layer check itself: it must fail when a lower layer imports an upper one (issue 8's rule that
// the agent never imports the API server or the controllers, and api/ never imports apiserver/).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const script = new URL('../../scripts/check-layers.mjs', import.meta.url).pathname;

function check(files: Record<string, string>): { code: number | null; out: string } {
  const root = mkdtempSync(join(tmpdir(), 'skiff-layers-'));
  try {
    for (const [file, text] of Object.entries(files)) {
      mkdirSync(join(root, file, '..'), { recursive: true });
      writeFileSync(join(root, file), text);
    }
    const r = spawnSync(process.execPath, [script, '--root', root], { encoding: 'utf8' });
    return { code: r.status, out: r.stdout + r.stderr };
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

test('downward imports pass', () => {
  const r = check({
    'src/agent/a.ts': "import { x } from '../client/x.js';\nimport { y } from '../api/y.js';\n",
    'src/client/x.ts': "export const x = 1;\n", 'src/api/y.ts': "export const y = 1;\n",
  });
  assert.equal(r.code, 0, r.out);
});

for (const [from, to] of [['agent', 'apiserver'], ['agent', 'controllers'], ['api', 'apiserver'], ['controllers', 'storage'], ['client', 'apiserver']] as const) {
  test(`src/${from} importing src/${to} fails and names the import`, () => {
    const r = check({ [`src/${from}/a.ts`]: `import type { T } from '../${to}/t.js';\nexport const a = 1;\n`, [`src/${to}/t.ts`]: 'export type T = 1;\n' });
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, new RegExp(`src/${from}/a\\.ts: src/${from} must not import src/${to}`));
  });
}

test('a dynamic import counts too', () => {
  const r = check({ 'src/agent/a.ts': "export const load = () => import('../controllers/c.js');\n", 'src/controllers/c.ts': 'export const c = 1;\n' });
  assert.equal(r.code, 1, r.out);
});
