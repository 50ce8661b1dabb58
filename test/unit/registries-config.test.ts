// registries.yaml: parsing and its errors, hosts.toml rendering, and the credentials handed to CRI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  configCredentials, loadRegistries, parseRegistries, registryCredentials, renderHostsToml, useRegistries, writeRegistryHosts,
} from '../../src/agent/runtime/registries.js';

const YAML = `
mirrors:
  docker.io:
    endpoint:
      - "https://mirror.example.com:5000"
      - "http://10.0.0.5:5000/prefix"
    rewrite:
      "^library/(.*)": "hub/library/$1"
  "*":
    endpoint: ["https://catchall.example.com"]
configs:
  mirror.example.com:5000:
    auth: { username: alice, password: "s3cret" }
    tls: { ca_file: /etc/ssl/mirror-ca.pem, cert_file: /etc/ssl/c.pem, key_file: /etc/ssl/k.pem }
  private.example.com:
    auth: { auth: "Ym9iOnB3" }
    tls: { insecure_skip_verify: true }
  docker.io:
    auth: { identitytoken: tok }
`;

test('parses mirrors (endpoints, rewrites) and configs (auth, tls)', () => {
  const cfg = parseRegistries(YAML);
  assert.deepEqual(cfg.mirrors['docker.io'], {
    endpoint: ['https://mirror.example.com:5000', 'http://10.0.0.5:5000/prefix'],
    rewrite: { '^library/(.*)': 'hub/library/$1' },
  });
  assert.deepEqual(cfg.mirrors['*'], { endpoint: ['https://catchall.example.com'] });
  assert.deepEqual(cfg.configs['mirror.example.com:5000'], {
    auth: { username: 'alice', password: 's3cret' },
    tls: { ca_file: '/etc/ssl/mirror-ca.pem', cert_file: '/etc/ssl/c.pem', key_file: '/etc/ssl/k.pem' },
  });
  assert.deepEqual(cfg.configs['private.example.com'], { auth: { auth: 'Ym9iOnB3' }, tls: { insecure_skip_verify: true } });
  assert.deepEqual(parseRegistries(''), { mirrors: {}, configs: {} });
});

test('rejects malformed files with the file and field named', () => {
  const bad: Array<[string, RegExp]> = [
    ['mirrors: [a]', /f\.yaml: mirrors must be a map/],
    ['mirror: {}', /unknown field "mirror"/],
    ['mirrors: { r: { endpoint: "https://x" } }', /mirrors\.r\.endpoint must be a list/],
    ['mirrors: { r: { endpoint: ["http://[bad"] } }', /invalid endpoint URL/],
    ['mirrors: { r: { endpoint: [], rewrite: { "(": "x" } } }', /invalid regular expression/],
    ['configs: { r: { auth: { user: u } } }', /configs\.r\.auth: unknown field "user"/],
    ['configs: { r: { tls: { insecure_skip_verify: "yes" } } }', /insecure_skip_verify must be true or false/],
    ['configs: { r: { tls: { cert_file: /c.pem } } }', /cert_file and key_file go together/],
    ['configs: { r: { auth: { password: 1 } } }', /password must be a string/],
    ['mirrors: {a: [', /f\.yaml:/],
  ];
  for (const [text, re] of bad) assert.throws(() => parseRegistries(text, 'f.yaml'), re, text);
});

test('loadRegistries: an explicit file must exist; absent default means none', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-reg-'));
  try {
    const file = join(dir, 'registries.yaml');
    writeFileSync(file, YAML);
    assert.ok(loadRegistries(file)?.mirrors['docker.io']);
    assert.throws(() => loadRegistries(join(dir, 'missing.yaml')), /ENOENT/);
    if (!existsSync('/etc/skiff/registries.yaml')) assert.equal(loadRegistries(), undefined);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('hosts.toml: server with its TLS, then mirror endpoints in order with theirs', () => {
  const cfg = parseRegistries(YAML);
  assert.equal(renderHostsToml('docker.io', cfg).split('\n').slice(1).join('\n'), [
    'server = "https://registry-1.docker.io"',
    '',
    '[host."https://mirror.example.com:5000"]',
    '  capabilities = ["pull", "resolve"]',
    '  ca = "/etc/ssl/mirror-ca.pem"',
    '  client = [["/etc/ssl/c.pem", "/etc/ssl/k.pem"]]',
    '',
    '[host."http://10.0.0.5:5000/prefix/v2"]',
    '  capabilities = ["pull", "resolve"]',
    '',
  ].join('\n'));
  assert.match(renderHostsToml('private.example.com', cfg), /^server = "https:\/\/private\.example\.com"\nskip_verify = true\n$/m);
  assert.doesNotMatch(renderHostsToml('*', cfg), /server =/);
});

test('writeRegistryHosts replaces the directory: mirrors, TLS-only registries, _default for *', () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-reg-'));
  try {
    writeFileSync(join(dir, 'stale.toml'), 'x');
    const written = writeRegistryHosts(dir, parseRegistries(YAML));
    assert.deepEqual(written.sort(), ['*', 'docker.io', 'mirror.example.com:5000', 'private.example.com']);
    assert.equal(existsSync(join(dir, 'stale.toml')), false);
    assert.match(readFileSync(join(dir, '_default', 'hosts.toml'), 'utf8'), /\[host\."https:\/\/catchall\.example\.com"\]/);
    assert.match(readFileSync(join(dir, 'mirror.example.com:5000', 'hosts.toml'), 'utf8'), /ca = "\/etc\/ssl\/mirror-ca\.pem"/);
    assert.deepEqual(writeRegistryHosts(dir, { mirrors: {}, configs: {} }), []);
    assert.equal(existsSync(join(dir, 'docker.io')), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('configCredentials: one AuthConfig per reachable host with auth, mirrors first, host-scoped', () => {
  const cfg = parseRegistries(YAML);
  assert.deepEqual(configCredentials(cfg, 'busybox'), [
    { serverAddress: 'https://mirror.example.com:5000', username: 'alice', password: 's3cret' },
    // docker.io's own entry applies to the host that serves Docker Hub.
    { serverAddress: 'https://registry-1.docker.io', identityToken: 'tok' },
  ]);
  assert.deepEqual(configCredentials(cfg, 'private.example.com/team/app:1'), [{ serverAddress: 'https://private.example.com', auth: 'Ym9iOnB3' }]);
  assert.deepEqual(configCredentials(cfg, 'other.example.com/app'), []);
  assert.deepEqual(configCredentials(undefined, 'busybox'), []);
});

test('registryCredentials follows the config each agent (data dir) installed', () => {
  const cfg = parseRegistries(YAML);
  useRegistries('/data/a', cfg);
  try {
    assert.equal(registryCredentials('/data/a', 'private.example.com/app').length, 1);
    assert.deepEqual(registryCredentials('/data/b', 'private.example.com/app'), []);
  } finally {
    useRegistries('/data/a', undefined);
  }
  assert.deepEqual(registryCredentials('/data/a', 'private.example.com/app'), []);
});
