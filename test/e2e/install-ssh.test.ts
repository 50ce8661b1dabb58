// Issue 14 item 4: `skiff up` installs over SSH. Two test hosts (network namespaces) each run Debian's
// sshd (key auth, host keys and config in a temp dir, listening on the host's address). A plan file
// installs a server on the first and an agent on the second (joining the first with its token); two
// more entries fail (a key not in authorized_keys, a port where nothing listens) with clear messages
// while the others complete. The kubeconfig is merged into an existing one under the given context
// and kubectl reaches the server through it; the agent's node is Ready. `skiff down` uninstalls.
// The remote installs run on this machine's filesystem: every path goes into the temp dir (env passed
// over SSH). Needs root, sshd, iproute2, containerd; removes everything it creates, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { parse } from 'yaml';
import { type NetnsHost } from '../helpers/netns-host.js';
import { SshHosts, skiffBin as skiff, skiffBuilt, sshHostsRequirements } from '../helpers/ssh-hosts.js';

const run = process.pid % 1000;
const hosts: NetnsHost[] = ['a', 'b'].map((n, i) => ({
  name: `up-${run}-${n}`, netns: `skup${run}${n}`, hostIf: `skuv${run}${n}`, hostIp: `10.195.${(run % 120) * 2 + i}.1`, ip: `10.195.${(run % 120) * 2 + i}.2`, dir: '',
}));
const lab = new SshHosts(hosts, `/tmp/skup${run}.`);
const exec = promisify(execFile);
const hostEnv = (h: NetnsHost) => lab.env(h);
const logTails = () => hosts.map((h) => lab.logTail(h, h === hosts[0] ? 'server' : 'agent')).join('\n');

before(() => {
  const missing = sshHostsRequirements();
  if (missing.length) throw new Error(`install-ssh test needs: ${missing.join(', ')}`);
  if (!skiffBuilt()) throw new Error('run npm run build first (the test runs bin/skiff up)');
  lab.setUp();
});

after(() => lab.tearDown());

test('skiff up: a server and an agent over SSH from a plan, failures per host, kubeconfig merged', async (t) => {
  const [a, b] = hosts as [NetnsHost, NetnsHost];
  const T = lab.dir;
  const kc = join(T, 'kubeconfig');
  writeFileSync(kc, 'apiVersion: v1\nkind: Config\nclusters: [{name: other, cluster: {server: "https://192.0.2.1:6443"}}]\nusers: [{name: other, user: {token: x}}]\ncontexts: [{name: other, context: {cluster: other, user: other}}]\ncurrent-context: other\n');
  const plan = join(T, 'plan.yaml');
  writeFileSync(plan, JSON.stringify({
    hosts: [
      { host: a.ip, role: 'server', env: hostEnv(a) },
      { host: b.ip, role: 'agent', env: hostEnv(b) },
      { host: a.ip, role: 'agent', sshKey: join(T, 'wrong_id'), env: hostEnv(b) },
      { host: b.ip, role: 'agent', port: 2, env: hostEnv(b) },
    ],
  }));
  const t0 = performance.now();
  const r = spawnSync(skiff(), ['up', '--plan', plan, '--ssh-key', join(T, 'id'), '--release', join(T, 'rel'), '--local-path', kc, '--merge', '--context', 'up-test'],
    { encoding: 'utf8', timeout: 600_000 });
  t.diagnostic(`skiff up (server, then 3 agents in parallel of which 2 fail): ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  for (const line of r.stderr.split('\n').filter((l) => / (done|FAILED) in /.test(l))) t.diagnostic(line);
  assert.equal(r.status, 1, `one or more hosts failed: exit 1\n${r.stderr}`);
  const rows = r.stdout.split('\n').filter((l) => l.includes('\t')).map((l) => l.split('\t'));
  assert.equal(rows.length, 4, r.stdout);
  assert.deepEqual(rows[0]!.slice(0, 2), [a.ip, 'ok'], r.stderr);
  const agentRows = rows.slice(1);
  assert.ok(agentRows.some((x) => x[0] === b.ip && x[1] === 'ok'), `the agent installed\n${r.stdout}\n${logTails()}`);
  assert.ok(agentRows.some((x) => x[1] === 'failed' && /SSH authentication as root@.* failed with key .*wrong_id/.test(x[2]!)), r.stdout);
  assert.ok(agentRows.some((x) => x[1] === 'failed' && /SSH to .*:2 failed: ECONNREFUSED/.test(x[2]!)), r.stdout);
  assert.match(r.stderr, new RegExp(`\\[${a.ip.replace(/\./g, '\\.')}\\] running install.sh \\(server\\)`), 'progress per host');

  const merged = parse(readFileSync(kc, 'utf8'));
  assert.deepEqual(merged.contexts.map((c: any) => c.name).sort(), ['other', 'up-test'], 'merged, the existing context kept');
  assert.equal(merged['current-context'], 'up-test');
  assert.equal(merged.clusters.find((c: any) => c.name === 'up-test').cluster.server, `https://${a.ip}:6443`);
  // kubectl from this machine through the merged kubeconfig; both nodes Ready.
  const deadline = Date.now() + 180_000;
  let nodes = '';
  while (Date.now() < deadline) {
    nodes = await exec('kubectl', ['--kubeconfig', kc, '--context', 'up-test', 'get', 'nodes', '--no-headers'], { encoding: 'utf8' }).then((x) => x.stdout, (e) => String(e));
    if (new RegExp(`${a.name}\\s+Ready`).test(nodes) && new RegExp(`${b.name}\\s+Ready`).test(nodes)) break;
    await new Promise((res) => setTimeout(res, 1000));
  }
  assert.match(nodes, new RegExp(`${b.name}\\s+Ready`), `agent Ready\n${nodes}\n${logTails()}`);
  assert.match(nodes, new RegExp(`${a.name}\\s+Ready`), `server node Ready\n${nodes}`);

  for (const h of [b, a]) {
    const down = spawnSync(skiff(), ['down', '--host', h.ip, '--ssh-key', join(T, 'id'), '--bin-dir', join(T, h.name, 'usr', 'bin')], { encoding: 'utf8', timeout: 300_000 });
    assert.equal(down.status, 0, down.stderr);
    assert.ok(!existsSync(join(T, h.name, 'usr')), `${h.name}: program removed`);
    assert.ok(!existsSync(join(T, h.name, 'd')), `${h.name}: data removed`);
  }
});
