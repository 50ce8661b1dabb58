import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { writeKubeconfig } from '../../src/pki/kubeconfig.js';

const dirs: string[] = [];
after(() => { for (const d of dirs) rmSync(d, { recursive: true, force: true }); });

const CREDS = { server: 'https://127.0.0.1:6443', caPem: 'CA PEM\n', certPem: 'CERT PEM\n', keyPem: 'KEY PEM\n' };

test('writes a standard kubeconfig named default with embedded data, creating parent dirs, mode 0600', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-kubeconfig-'));
  dirs.push(dir);
  const path = join(dir, 'etc', 'skiff', 'skiff.yaml');
  writeKubeconfig(path, CREDS);
  assert.equal(statSync(path).mode & 0o777, 0o600);
  const cfg = parse(readFileSync(path, 'utf8'));
  assert.equal(cfg.apiVersion, 'v1');
  assert.equal(cfg.kind, 'Config');
  assert.equal(cfg['current-context'], 'default');
  assert.deepEqual(cfg.contexts, [{ name: 'default', context: { cluster: 'default', user: 'default' } }]);
  assert.equal(cfg.clusters[0].name, 'default');
  assert.equal(cfg.clusters[0].cluster.server, CREDS.server);
  const b64 = (s: string) => Buffer.from(s, 'base64').toString();
  assert.equal(b64(cfg.clusters[0].cluster['certificate-authority-data']), CREDS.caPem);
  assert.equal(cfg.users[0].name, 'default');
  assert.equal(b64(cfg.users[0].user['client-certificate-data']), CREDS.certPem);
  assert.equal(b64(cfg.users[0].user['client-key-data']), CREDS.keyPem);
});

test('the requested mode is applied even when the file already existed with another one', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-kubeconfig-'));
  dirs.push(dir);
  const path = join(dir, 'kubeconfig');
  writeFileSync(path, 'old', { mode: 0o600 });
  writeKubeconfig(path, { ...CREDS, mode: 0o644 });
  assert.equal(statSync(path).mode & 0o777, 0o644);
  writeKubeconfig(path, { ...CREDS, mode: 0o640 });
  assert.equal(statSync(path).mode & 0o777, 0o640);
  assert.match(readFileSync(path, 'utf8'), /certificate-authority-data/);
});
