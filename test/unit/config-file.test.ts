// The config file: keys named as flags, drop-ins in name order, `key+` appending, precedence below
// the environment, and which file is read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyConfig, configFileFrom, readConfig } from '../../src/cli/config-file.js';
import { envForFlag } from '../../src/cli/flags.js';

test('a file and its drop-ins merge in name order; key+ appends; the environment wins over the file', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-config-'));
  try {
    const file = join(dir, 'config.yaml');
    writeFileSync(file, 'node-label: [a=1]\nwrite-kubeconfig-mode: "0644"\ndisable-agent: true\nnode-name: first\nmystery: 1\n');
    mkdirSync(`${file}.d`);
    writeFileSync(join(`${file}.d`, '20-late.yaml'), 'node-name: last\n');
    writeFileSync(join(`${file}.d`, '10-labels.yaml'), 'node-label+: [b=2]\nnode-name: middle\n');
    const cfg = await readConfig(file, true);
    assert.deepEqual(cfg, { 'node-label': ['a=1', 'b=2'], 'write-kubeconfig-mode': '0644', 'disable-agent': true, 'node-name': 'last', mystery: 1 });
    const env: NodeJS.ProcessEnv = { SKIFF_NODE_NAME: 'from-env' };
    assert.deepEqual(applyConfig(cfg, envForFlag, env), ['mystery']);
    assert.deepEqual(env, { SKIFF_NODE_NAME: 'from-env', SKIFF_NODE_LABEL: 'a=1,b=2', SKIFF_WRITE_KUBECONFIG_MODE: '0644', SKIFF_DISABLE_AGENT: 'true' });
    const agentEnv: NodeJS.ProcessEnv = {};
    applyConfig({ server: 'https://s:6443', token: 'K10x', 'disable-agent': false }, envForFlag, agentEnv);
    assert.deepEqual(agentEnv, { SKIFF_URL: 'https://s:6443', SKIFF_TOKEN: 'K10x' }, 'agent names and false booleans');
    writeFileSync(file, 'node-label: {a: 1}\n');
    await assert.rejects(readConfig(file, true), /node-label: expected a string, number, boolean or list/);
    await assert.rejects(readConfig(join(dir, 'missing.yaml'), true), /does not exist/);
    assert.deepEqual(await readConfig(join(dir, 'missing.yaml'), false), {});
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('which file: --config, then SKIFF_CONFIG_FILE, then /etc/skiff/config.yaml', () => {
  assert.deepEqual(configFileFrom(['server', '--config', '/x.yaml'], {}), { file: '/x.yaml', explicit: true });
  assert.deepEqual(configFileFrom(['server', '--config=/y.yaml'], { SKIFF_CONFIG_FILE: '/z' }), { file: '/y.yaml', explicit: true });
  assert.deepEqual(configFileFrom(['server'], { SKIFF_CONFIG_FILE: '/z' }), { file: '/z', explicit: true });
  assert.deepEqual(configFileFrom(['server'], {}), { file: '/etc/skiff/config.yaml', explicit: false });
});
