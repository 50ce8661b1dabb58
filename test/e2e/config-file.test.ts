// `skiff server --config FILE` with the real binary: flags come from the YAML file and its drop-in
// folder (the kubeconfig is written where and with the mode they say, the server listens on their
// port), and a config file that was asked for but is missing stops the server with a clear error.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort, REPO_ROOT } from '../helpers/cluster.js';
import { ok, runKubectl } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';

const dir = mkdtempSync(join(tmpdir(), 'skiff-cfg-'));
let proc: ChildProcess | undefined;
after(async () => {
  if (proc && proc.exitCode === null) {
    proc.kill('SIGTERM');
    await new Promise((r) => proc!.once('exit', r));
  }
  rmSync(dir, { recursive: true, force: true });
});

test('flags from the config file and its drop-ins', async () => {
  const port = await freePort();
  const kubeconfig = join(dir, 'kubeconfig.yaml');
  const file = join(dir, 'config.yaml');
  writeFileSync(file, [
    `data-dir: ${join(dir, 'data')}`, `https-listen-port: ${port}`, 'bind-address: 127.0.0.1',
    `write-kubeconfig: ${kubeconfig}`, 'write-kubeconfig-mode: "0600"', 'disable-agent: true', 'tls-san: [edge.example]', '',
  ].join('\n'));
  mkdirSync(`${file}.d`);
  writeFileSync(join(`${file}.d`, '50-mode.yaml'), 'write-kubeconfig-mode: "0640"\n');
  proc = spawn(join(REPO_ROOT, 'bin', 'skiff'), ['server', '--config', file], { stdio: 'ignore', env: { ...process.env, SKIFF_LOG_LEVEL: 'warn' } });
  await eventually(async () => existsSync(kubeconfig), 'the kubeconfig written', 30_000);
  assert.equal(statSync(kubeconfig).mode & 0o777, 0o640, 'the drop-in overrode the mode');
  const ready = await eventually(async () => {
    const r = await runKubectl(['--kubeconfig', kubeconfig], ['get', '--raw', '/readyz']);
    return r.code === 0 && r;
  }, 'the server ready on the configured port', 30_000);
  assert.equal(ok(ready), 'ok');
  assert.match(ok(await runKubectl(['--kubeconfig', kubeconfig], ['config', 'view', '-o', 'jsonpath={.clusters[0].cluster.server}'])), new RegExp(`:${port}$`));
});

test('a config file asked for but missing is an error', () => {
  const r = spawnSync(join(REPO_ROOT, 'bin', 'skiff'), ['server', '--config', join(dir, 'nope.yaml')], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /config file .*nope\.yaml does not exist/);
});
