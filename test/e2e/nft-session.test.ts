// The long-lived `nft -i` session against the real nft in a throwaway network namespace (needs root):
// transactions apply, a refused one changes nothing and leaves the session usable, changes made by
// another process in between are seen, and the session survives its nft being killed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';

test('NftSession: transactions, refusals, outside changes and a killed nft', async (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root (nftables in a network namespace)');
  const ns = `sknfts${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  const dir = mkdtempSync('/tmp/skiff-nfts-');
  t.after(() => { spawnSync('ip', ['netns', 'del', ns]); rmSync(dir, { recursive: true, force: true }); });
  // The session runs $SKIFF_NFT_BINARY; this one is the real nft, inside the test's namespace.
  const wrapper = join(dir, 'nft');
  writeFileSync(wrapper, `#!/bin/sh\nexec ip netns exec ${ns} nft "$@"\n`);
  chmodSync(wrapper, 0o755);
  process.env.SKIFF_NFT_BINARY = wrapper;
  const { NftSession } = await import('../../src/agent/network/nft-session.js');
  const nft = (...args: string[]) => spawnSync('ip', ['netns', 'exec', ns, 'nft', ...args], { encoding: 'utf8' });

  const s = new NftSession();
  t.after(() => s.close());
  await s.run('add table ip t\nadd chain ip t a\nadd rule ip t a counter accept comment "skiff:1"\n');
  assert.match(nft('list', 'chain', 'ip', 't', 'a').stdout, /counter packets 0 bytes 0 accept comment "skiff:1"/);

  // All or nothing: the chain of a refused transaction does not exist afterwards.
  await assert.rejects(s.run('add chain ip t b\nadd rule ip t nosuchchain accept'), /Error: .*No such file or directory/);
  assert.notEqual(nft('list', 'chain', 'ip', 't', 'b').status, 0, 'nothing of the refused transaction applied');
  await s.run('add chain ip t c\nadd rule ip t c goto a');

  // Another process changes the ruleset: the session's cache follows.
  assert.equal(nft('add', 'chain', 'ip', 't', 'outside').status, 0);
  await s.run('add chain ip t d\nadd rule ip t d goto outside');
  assert.match(nft('list', 'chain', 'ip', 't', 'd').stdout, /goto outside/);

  // Concurrent callers are serialized, each with its own result.
  await Promise.all(Array.from({ length: 20 }, (_, i) => s.run(`add chain ip t p${i}\nadd rule ip t p${i} goto a`)));
  assert.equal(nft('list', 'chains', 'ip').stdout.match(/chain p\d+/g)?.length, 20);

  // Its nft killed: the next transaction starts a new one.
  // (every exec in the chain keeps the pid: the session's nft is this process's own child)
  assert.equal(spawnSync('pkill', ['-KILL', '-P', String(process.pid), '-x', 'nft']).status, 0, 'the session\'s nft was running');
  await new Promise((r) => setTimeout(r, 200));
  await s.run('add chain ip t e\nadd rule ip t e goto a');
  assert.equal(nft('list', 'chain', 'ip', 't', 'e').status, 0);

  // A `#` or a huge script goes through a one-shot `nft -f` instead.
  await s.run('add chain ip t f # a comment\nadd rule ip t f goto a');
  assert.equal(nft('list', 'chain', 'ip', 't', 'f').status, 0);
});
