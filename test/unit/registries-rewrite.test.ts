// registries.yaml `rewrite`: Go-style rule matching and expansion, the pulls the agent then makes
// itself (one per mirror endpoint), and the hosts.toml that tells containerd how to reach them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { goRegExp, parseRegistries, renderHostsToml, rewritePulls, rewriteRepository } from '../../src/agent/runtime/registries.js';

test('rewriteRepository: first matching rule in file order, $1 and ${name} groups, no match unchanged', () => {
  const rules = parseRegistries(`
mirrors:
  docker.io:
    endpoint: ["https://m.example.com"]
    rewrite:
      "^rancher/(.*)": "mirrorproject/rancher-images/$1"
      "^library/(?P<img>[a-z]+)$": "hub/\${img}-official"
      "^(.*)$": "everything/$1"
`).mirrors['docker.io']!.rewrite;
  assert.equal(rewriteRepository(rules, 'rancher/coredns-coredns'), 'mirrorproject/rancher-images/coredns-coredns');
  assert.equal(rewriteRepository(rules, 'library/busybox'), 'hub/busybox-official');
  // The catch-all only gets what the earlier rules left.
  assert.equal(rewriteRepository(rules, 'team/app'), 'everything/team/app');
  assert.equal(rewriteRepository({ '^rancher/(.*)': 'x/$1' }, 'team/app'), 'team/app');
  assert.equal(rewriteRepository(undefined, 'team/app'), 'team/app');
  assert.equal(rewriteRepository({}, 'team/app'), 'team/app');
});

test('rewriteRepository expands like Go: every match, $$, ${1}x, unknown groups empty, $1x is a name', () => {
  assert.equal(rewriteRepository({ 'a': 'b' }, 'banana'), 'bbnbnb');
  assert.equal(rewriteRepository({ '^(t)eam/(.*)$': '${1}x/$2' }, 'team/app'), 'tx/app');
  assert.equal(rewriteRepository({ '^(t)eam/(.*)$': '$1x/$2' }, 'team/app'), '/app');
  assert.equal(rewriteRepository({ '^(.*)$': '$$/$9/$1' }, 'app'), '$//app');
  assert.equal(rewriteRepository({ '^(.*)$': 'cost-$' }, 'app'), 'cost-$');
  // An empty match right after a match is skipped, as in Go.
  assert.equal(rewriteRepository({ '(.*)': 'p/$1' }, 'app'), 'p/app');
  assert.equal(rewriteRepository({ '(?i)^TEAM/': 'org/' }, 'team/app'), 'org/app');
  assert.equal(goRegExp('(?P<n>x)').source, '(?<n>x)');
});

const CFG = parseRegistries(`
mirrors:
  registry.example:5000:
    endpoint:
      - "https://127.0.0.1:5443"
      - "http://plain.example:5000"
      - "https://prefixed.example/some/prefix"
    rewrite: { "^(.*)$": "mirror/library/$1" }
  docker.io:
    endpoint: ["https://hub-mirror.example"]
    rewrite: { "^rancher/(.*)": "mirrored/$1" }
  plain.io:
    endpoint: ["https://plain-mirror.example"]
configs:
  "127.0.0.1:5443":
    auth: { username: u, password: p }
    tls: { ca_file: /ca.pem }
`);

test('rewritePulls: the rewritten reference on each endpoint (no path prefix), tag or digest kept, endpoint auth', () => {
  assert.deepEqual(rewritePulls(CFG, 'registry.example:5000/app:v1'), [
    { ref: '127.0.0.1:5443/mirror/library/app:v1', auth: { serverAddress: 'https://127.0.0.1:5443', username: 'u', password: 'p' } },
    { ref: 'plain.example:5000/mirror/library/app:v1' },
  ]);
  const digest = `sha256:${'a'.repeat(64)}`;
  assert.deepEqual(rewritePulls(CFG, `registry.example:5000/team/app@${digest}`).map((p) => p.ref)[0], `127.0.0.1:5443/mirror/library/team/app@${digest}`);
  assert.deepEqual(rewritePulls(CFG, 'registry.example:5000/app').map((p) => p.ref)[0], '127.0.0.1:5443/mirror/library/app:latest');
  // Docker Hub names are matched in their full form; a rule that does not match leaves hosts.toml to it.
  assert.deepEqual(rewritePulls(CFG, 'rancher/klipper:1').map((p) => p.ref), ['hub-mirror.example/mirrored/klipper:1']);
  assert.deepEqual(rewritePulls(CFG, 'busybox'), []);
  assert.deepEqual(rewritePulls(CFG, 'plain.io/app'), []);
  assert.deepEqual(rewritePulls(CFG, 'other.example/app'), []);
  assert.deepEqual(rewritePulls(undefined, 'registry.example:5000/app'), []);
});

test('hosts.toml for rewrite endpoints: their own scheme and TLS, so containerd can pull from them by name', () => {
  assert.equal(renderHostsToml('127.0.0.1:5443', CFG).split('\n').slice(1).join('\n'), 'server = "https://127.0.0.1:5443"\nca = "/ca.pem"\n\n[host]\n');
  assert.match(renderHostsToml('plain.example:5000', CFG), /^server = "http:\/\/plain\.example:5000"$/m);
  // The mirrored registry's own file still lists the endpoints for the pulls that are not rewritten.
  assert.match(renderHostsToml('registry.example:5000', CFG), /\[host\."http:\/\/plain\.example:5000"\]/);
});
