// The node-wide pod masquerade rules, installed for real with iptables inside a throwaway network
// namespace (needs root), twice to show the rebuild is idempotent and follows a changed pod CIDR.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { masqueradeRules, MASQUERADE_CHAIN } from '../../src/agent/network/masquerade.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

test('masquerade rules: pod CIDR to outside, not pod-to-pod nor multicast', () => {
  const rules = masqueradeRules('10.42.3.0/24');
  assert.deepEqual(rules.map((r) => r.at(-1)), ['RETURN', 'RETURN', 'MASQUERADE']);
  assert.ok(rules.every((r) => r.includes('10.42.3.0/24')));
  assert.ok(masqueradeRules('fd00:42::/64')[1]!.includes('ff00::/8'));
});

test('ensurePodMasquerade installs one chain and one jump, rebuilt idempotently', (t) => {
  assert.equal(process.getuid?.(), 0, 'this test needs root (iptables in a network namespace)');
  const ns = `skmasq${process.pid}`;
  execFileSync('ip', ['netns', 'add', ns]);
  t.after(() => spawnSync('ip', ['netns', 'del', ns]));
  const install = (cidr: string) => {
    const code = `import('./src/agent/network/masquerade.ts').then(async (m) => { if (!(await m.ensurePodMasquerade('${cidr}'))) process.exit(3); })`;
    const r = spawnSync('nsenter', [`--net=/run/netns/${ns}`, process.execPath, '--import', 'tsx', '-e', code], { cwd: ROOT, encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  };
  const rules = () => execFileSync('nsenter', [`--net=/run/netns/${ns}`, 'iptables', '-w', '-t', 'nat', '-S'], { encoding: 'utf8' });
  install('10.42.3.0/24');
  install('10.42.7.0/24');
  const text = rules();
  assert.equal(text.split('\n').filter((l) => l === `-A POSTROUTING -j ${MASQUERADE_CHAIN}`).length, 1, text);
  assert.match(text, new RegExp(`-A ${MASQUERADE_CHAIN} -s 10.42.7.0/24 .*-j MASQUERADE`));
  assert.doesNotMatch(text, /10\.42\.3\.0/, 'the old pod CIDR is gone');
});
