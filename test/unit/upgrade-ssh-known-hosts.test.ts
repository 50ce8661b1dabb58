// Host-key checking of `skiff up` (src/cli/known-hosts.ts, src/cli/ssh-session.ts): OpenSSH
// known_hosts lines (plain, [host]:port, hashed, patterns, @revoked) decide; and against a real
// Debian sshd on loopback, a listed key connects while a different or missing one fails the host
// with a clear message. Needs root and openssh-server for the sshd part.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { checkHostKey } from '../../src/cli/known-hosts.js';
import { SshSession } from '../../src/cli/ssh-session.js';

const keyA = randomBytes(51);
const keyB = randomBytes(51);
const b64 = (b: Buffer) => b.toString('base64');

test('known_hosts lines: plain, [host]:port, hashed, patterns, negation, @revoked', () => {
  const text = [
    '# comment',
    `10.0.0.1,edge1 ssh-ed25519 ${b64(keyA)}`,
    `[10.0.0.2]:2222 ssh-ed25519 ${b64(keyA)}`,
    `10.0.1.*,!10.0.1.9 ssh-ed25519 ${b64(keyA)}`,
    `@revoked 10.0.0.3 ssh-ed25519 ${b64(keyB)}`,
  ].join('\n');
  assert.deepEqual(checkHostKey(text, '10.0.0.1', 22, keyA), { ok: true });
  assert.deepEqual(checkHostKey(text, 'edge1', 22, keyA), { ok: true });
  assert.deepEqual(checkHostKey(text, '10.0.0.2', 2222, keyA), { ok: true });
  assert.match(checkHostKey(text, '10.0.0.2', 22, keyA).reason!, /10\.0\.0\.2 is not in known_hosts: add its key first \(ssh-keyscan 10\.0\.0\.2/);
  assert.match(checkHostKey(text, '10.0.0.1', 22, keyB).reason!, /HOST KEY MISMATCH for 10\.0\.0\.1/);
  assert.ok(checkHostKey(text, '10.0.1.7', 22, keyA).ok);
  assert.ok(!checkHostKey(text, '10.0.1.9', 22, keyA).ok, 'negated pattern');
  assert.match(checkHostKey(text, '10.0.0.3', 22, keyB).reason!, /@revoked/);
  const salt = randomBytes(20);
  const hashed = `|1|${b64(salt)}|${b64(createHmac('sha1', salt).update('[10.0.0.5]:2200').digest())} ssh-ed25519 ${b64(keyA)}`;
  assert.ok(checkHostKey(hashed, '10.0.0.5', 2200, keyA).ok, 'hashed entry');
  assert.ok(!checkHostKey(hashed, '10.0.0.5', 22, keyA).ok);
});

let T = '';
let port = 0;
let createdRunSshd = false;
const missing = () => [process.getuid?.() === 0 ? '' : 'root', ...['/usr/sbin/sshd', '/usr/bin/ssh-keygen'].filter((b) => !existsSync(b))].filter(Boolean);

before(async () => {
  if (missing().length) return;
  T = mkdtempSync(`/tmp/upgrade-kh${process.pid}.`);
  port = await new Promise<number>((res) => { const s = createServer().listen(0, '127.0.0.1', () => { const p = (s.address() as { port: number }).port; s.close(() => res(p)); }); });
  for (const k of ['host_key', 'other_host_key', 'id']) spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(T, k)]);
  writeFileSync(join(T, 'authorized_keys'), readFileSync(join(T, 'id.pub')));
  writeFileSync(join(T, 'sshd_config'), [
    'ListenAddress 127.0.0.1', `Port ${port}`, `HostKey ${join(T, 'host_key')}`, `PidFile ${join(T, 'sshd.pid')}`,
    `AuthorizedKeysFile ${join(T, 'authorized_keys')}`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no',
    'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no',
  ].join('\n') + '\n');
  if (!existsSync('/run/sshd')) { mkdirSync('/run/sshd', { mode: 0o755 }); createdRunSshd = true; }
  const r = spawnSync('/usr/sbin/sshd', ['-f', join(T, 'sshd_config'), '-E', join(T, 'sshd.log')], { encoding: 'utf8' });
  assert.equal(r.status, 0, `sshd: ${r.stderr}`);
});

after(() => {
  if (!T) return;
  try { process.kill(Number(readFileSync(join(T, 'sshd.pid'), 'utf8')), 'SIGTERM'); } catch { /* not started */ }
  if (createdRunSshd) { try { rmdirSync('/run/sshd'); } catch { /* in use */ } }
  rmSync(T, { recursive: true, force: true });
});

test('against a real sshd: the listed key connects, a different or missing one fails with a clear message', async () => {
  assert.deepEqual(missing(), [], 'this test needs root and openssh-server (sshd, ssh-keygen)');
  const line = (pub: string) => `[127.0.0.1]:${port} ${readFileSync(join(T, pub), 'utf8').trim().split(' ').slice(0, 2).join(' ')}\n`;
  writeFileSync(join(T, 'good'), line('host_key.pub'));
  writeFileSync(join(T, 'bad'), line('other_host_key.pub'));
  writeFileSync(join(T, 'empty'), '');
  const target = { host: '127.0.0.1', port, user: 'root', keyFile: join(T, 'id') };
  const s = await SshSession.connect({ ...target, knownHosts: join(T, 'good') });
  assert.equal((await s.exec('echo ok')).stdout.trim(), 'ok');
  s.close();
  await assert.rejects(SshSession.connect({ ...target, knownHosts: join(T, 'bad') }), new RegExp(`SSH to 127\\.0\\.0\\.1:${port} refused: HOST KEY MISMATCH for \\[127\\.0\\.0\\.1\\]:${port}`));
  await assert.rejects(SshSession.connect({ ...target, knownHosts: join(T, 'empty') }), /is not in .*empty: add its key first \(ssh-keyscan -p \d+ 127\.0\.0\.1/);
  await assert.rejects(SshSession.connect({ ...target, knownHosts: join(T, 'nope') }), /cannot read --ssh-known-hosts/);
});
