// Issue 14 items 1-3 end to end: `npm run release` builds the tarball once; its install.sh installs a
// server (with its embedded agent) into a test prefix, inside a network namespace that stands for the
// host: every path comes from INSTALL_SKIFF_* variables pointing into a temp dir, so the machine's own
// /usr/local, /etc and /var/lib/skiff are never touched. No init system here, so the install falls
// back to the supervised background mode: kubectl works with the printed kubeconfig, a pod runs, a
// server killed with SIGKILL is restarted by the supervisor. A tampered tarball and an install over a
// different version are refused (the latter leaving every file of the install as it was). The systemd units it writes pass `systemd-analyze verify`. Uninstall
// leaves no file under the prefix, no process, no mount, no skiff nftables table or iptables chain,
// no skiff network device and no route to the pod network (each listed to check).
// Needs root, iproute2, nftables, containerd; removes everything it creates, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/cluster.js';
import { createHostNetwork, netnsAgentRequirements, removeHostNetwork, type NetnsHost } from '../helpers/netns-host.js';
import { TEST_IMAGE, writeBusyboxImage } from '../helpers/images.js';
import { eventually } from '../helpers/wait.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

const run = process.pid % 1000;
const host: NetnsHost = { name: `inst-${run}`, netns: `skins${run}`, hostIf: `skiv${run}`, hostIp: `10.196.${run % 250}.1`, ip: `10.196.${run % 250}.2`, dir: '' };
const VERSION_A = `0.1.0-test${run}`;
const VERSION_B = `0.2.0-test${run}`;
let T = '';
const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm' } as Record<string, string>)[process.arch] ?? process.arch;
const tarName = (v: string) => `skiff-${v}-linux-${arch}.tar.gz`;
const exec = promisify(execFile);

/** Every path of the install under T (the host's "/"). */
function installEnv(extra: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root',
    INSTALL_SKIFF_PREFIX: join(T, 'usr'), INSTALL_SKIFF_SYSTEMD_DIR: join(T, 'systemd'), INSTALL_SKIFF_OPENRC_DIR: join(T, 'init.d'),
    INSTALL_SKIFF_CONFIG_DIR: join(T, 'etc'), INSTALL_SKIFF_DATA_DIR: join(T, 'd'), INSTALL_SKIFF_RUN_DIR: join(T, 'run'),
    INSTALL_SKIFF_LOG_DIR: join(T, 'log'), SKIFF_NODE_NAME: host.name,
    ...extra,
  };
  // On a machine with systemd the test must still not write real units: force the supervised mode.
  if (existsSync('/run/systemd/system') && !env.INSTALL_SKIFF_INIT) env.INSTALL_SKIFF_INIT = 'none';
  return env;
}

/** A command inside the host's network namespace (nsenter --net only: keeps the cgroup mounts). */
function inHost(cmd: string[], env?: Record<string, string>, timeout = 300_000) {
  return spawnSync('nsenter', [`--net=/var/run/netns/${host.netns}`, ...cmd], { encoding: 'utf8', env: env ?? { PATH: process.env.PATH! }, timeout });
}
const kubeconfig = () => join(T, 'etc', 'skiff.yaml');
async function kubectl(args: string[]): Promise<string> {
  const r = await exec('nsenter', [`--net=/var/run/netns/${host.netns}`, 'kubectl', '--kubeconfig', kubeconfig(), ...args], { encoding: 'utf8', timeout: 60_000 });
  return r.stdout;
}
const logTail = () => { try { return readFileSync(join(T, 'log', 'skiff.log'), 'utf8').split('\n').slice(-25).join('\n'); } catch { return '(no log)'; } };
/** Processes whose command line names the test dir (the supervisor, the server, containerd, shims). */
function processesOf(dir: string): string[] {
  const out: string[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try { const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0').join(' '); if (argv.includes(dir)) out.push(`${p} ${argv}`); } catch { /* gone */ }
  }
  return out;
}
const mountsUnder = (dir: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m && m.startsWith(dir));

before(() => {
  const missing = netnsAgentRequirements();
  for (const bin of ['/usr/sbin/nft', '/usr/bin/sha256sum', '/usr/bin/tar', '/usr/bin/kubectl']) if (!existsSync(bin)) missing.push(bin);
  if (missing.length) throw new Error(`install-release test needs: ${missing.join(', ')}`);
  T = mkdtempSync(`/tmp/skin${run}.`);
  for (const [v, dir] of [[VERSION_A, 'rel'], [VERSION_B, 'rel2']] as const) {
    const r = spawnSync('node', [join(REPO_ROOT, 'scripts', 'release.mjs'), '--version', v, '--out', join(T, dir)], { encoding: 'utf8', timeout: 600_000 });
    assert.equal(r.status, 0, `release ${v}: ${r.stderr}${r.stdout}`);
  }
  createHostNetwork(host);
  // The agent's test image, imported at start as an air-gapped node imports its image tarballs.
  mkdirSync(join(T, 'd', 'agent', 'images'), { recursive: true });
  writeBusyboxImage(join(T, 'd', 'agent', 'images'), 'busybox.tar');
});

after(async () => {
  if (!T) return;
  const uninstall = join(T, 'usr', 'bin', 'skiff-uninstall.sh');
  if (existsSync(uninstall)) inHost([uninstall], { PATH: process.env.PATH! });
  for (const line of processesOf(T)) { try { process.kill(Number(line.split(' ')[0]), 'SIGKILL'); } catch { /* gone */ } }
  await teardownRuntime({ dataDir: join(T, 'd'), cgroupParents: ['/kubepods'] }).catch(() => undefined);
  for (const m of mountsUnder(T).reverse()) spawnSync('umount', ['-l', m]);
  removeHostNetwork(host);
  rmSync(T, { recursive: true, force: true });
});

test('the release tarball holds the bundle, its addon, scripts and checksums, and no node_modules', () => {
  const list = spawnSync('tar', ['-tzf', join(T, 'rel', tarName(VERSION_A))], { encoding: 'utf8' }).stdout.split('\n');
  const root = `skiff-${VERSION_A}-linux-${arch}/`;
  for (const f of ['bin/skiff', 'bin/skiff-supervise', 'lib/skiff/main.js', 'lib/skiff/pki-worker.js', 'lib/skiff/better_sqlite3.node',
    'generated/schemas.json', 'install.sh', 'skiff-uninstall.sh', 'debian-packages.txt', 'SHA256SUMS', 'VERSION']) {
    assert.ok(list.includes(root + f), `${f} in the tarball`);
  }
  assert.ok(!list.some((f) => f.includes('node_modules')), 'no node_modules in the tarball');
  assert.match(readFileSync(join(T, 'rel', 'SHA256SUMS'), 'utf8'), new RegExp(`^[0-9a-f]{64}  ${tarName(VERSION_A).replace(/\./g, '\\.')}$`, 'm'));
});

test('a tampered tarball is refused before anything is installed', () => {
  const bad = join(T, 'bad');
  mkdirSync(bad);
  for (const f of [tarName(VERSION_A), 'SHA256SUMS', 'install.sh']) copyFileSync(join(T, 'rel', f), join(bad, f));
  const data = readFileSync(join(bad, tarName(VERSION_A)));
  data[Math.floor(data.length / 2)]! ^= 0xff;
  writeFileSync(join(bad, tarName(VERSION_A)), data);
  const r = inHost([join(bad, 'install.sh')], installEnv());
  assert.notEqual(r.status, 0, 'install.sh fails');
  assert.match(r.stderr, /checksum mismatch .*nothing was installed/);
  assert.ok(!existsSync(join(T, 'usr')), 'nothing under the prefix');
});

test('the systemd units it writes pass systemd-analyze verify', (t) => {
  const analyze = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
  if (analyze.status !== 0) { t.skip('systemd-analyze is not installed'); return; }
  const sd = join(T, 'sd');
  const env = (extra: Record<string, string>) => ({
    PATH: process.env.PATH!, INSTALL_SKIFF_PREFIX: join(sd, 'usr'), INSTALL_SKIFF_SYSTEMD_DIR: join(sd, 'systemd'), INSTALL_SKIFF_CONFIG_DIR: join(sd, 'etc'),
    INSTALL_SKIFF_DATA_DIR: join(sd, 'd'), INSTALL_SKIFF_INIT: 'systemd', INSTALL_SKIFF_SKIP_START: 'true', INSTALL_SKIFF_SKIP_ENABLE: 'true', ...extra,
  });
  const server = inHost([join(T, 'rel', 'install.sh')], env({}));
  assert.equal(server.status, 0, server.stderr);
  const agent = inHost([join(T, 'rel', 'install.sh')], env({ SKIFF_URL: 'https://10.0.0.1:6443', SKIFF_TOKEN: 'K10abc::server:secret' }));
  assert.equal(agent.status, 0, agent.stderr);
  for (const unit of ['skiff.service', 'skiff-agent.service']) {
    const text = readFileSync(join(sd, 'systemd', unit), 'utf8');
    for (const line of ['KillMode=process', 'Delegate=yes', 'Restart=always', 'LimitNOFILE=1048576', `EnvironmentFile=-${join(sd, 'etc')}/`]) assert.ok(text.includes(line), `${unit}: ${line}`);
    const v = spawnSync('systemd-analyze', ['verify', '--man=no', join(sd, 'systemd', unit)], { encoding: 'utf8' });
    // Lines about the machine's own units (no systemd runs here) are not about ours.
    const ours = (v.stderr + v.stdout).split('\n').filter((l) => l.includes(unit) || l.includes(sd));
    assert.deepEqual(ours, [], `systemd-analyze verify ${unit}`);
  }
  assert.match(readFileSync(join(sd, 'etc', 'skiff-agent.env'), 'utf8'), /^SKIFF_URL=https:\/\/10\.0\.0\.1:6443$/m);
  // In the test host's namespace: uninstall removes skiff's devices and tables of the host it runs on.
  const un = inHost([join(sd, 'usr', 'bin', 'skiff-uninstall.sh')]);
  assert.equal(un.status, 0, un.stderr);
  assert.deepEqual(readdirSync(sd), [], 'the systemd-mode install removed');
});

test('install from the tarball: supervised server, kubectl with the printed kubeconfig, a pod, restart after kill -9', async (t) => {
  const pre = inHost([join(T, 'rel', 'install.sh')], installEnv({ INSTALL_SKIFF_SKIP_START: 'true' }));
  assert.equal(pre.status, 0, pre.stderr);
  // check-config of the host before the server runs: what it needs is there, ports are free.
  const check = inHost([join(T, 'usr', 'bin', 'skiff'), 'check-config', '--json']);
  const results = JSON.parse(check.stdout) as { name: string; ok: boolean; required: boolean }[];
  assert.deepEqual(results.filter((c) => c.required && !c.ok), [], 'check-config: nothing required missing');
  assert.equal(check.status, 0);

  const t0 = performance.now();
  const r = inHost([join(T, 'rel', 'install.sh')], installEnv());
  const seconds = (performance.now() - t0) / 1000;
  assert.equal(r.status, 0, `install.sh: ${r.stderr}\n${logTail()}`);
  if (!existsSync('/run/systemd/system')) assert.match(r.stderr, /no init system found.*supervised background process/);
  assert.match(r.stderr, /kubeconfig: (\S+)/);
  assert.equal(r.stderr.match(/kubeconfig: (\S+)/)![1], kubeconfig());
  assert.match(r.stderr, /join token: K10[0-9a-f]+::server:/);
  assert.equal(readFileSync(join(T, 'usr', 'lib', 'skiff', 'VERSION'), 'utf8').trim(), VERSION_A);

  await eventually(async () => (await kubectl(['get', 'node', host.name, '-o', 'jsonpath={.status.conditions[?(@.type=="Ready")].status}']).catch(() => '')) === 'True',
    'the node Ready', 180_000, logTail);
  t.diagnostic(`tarball to server ready (install.sh): ${seconds.toFixed(1)} s; to node Ready: ${((performance.now() - t0) / 1000).toFixed(1)} s`);

  await kubectl(['run', 'sleeper', `--image=${TEST_IMAGE}`, '--image-pull-policy=Never', '--restart=Never', '--command', '--', 'sleep', '3600']);
  await eventually(async () => (await kubectl(['get', 'pod', 'sleeper', '-o', 'jsonpath={.status.phase}']).catch(() => '')) === 'Running',
    'the pod Running', 180_000, logTail);

  // check-config now sees the server's port taken: a required check fails, exit 1.
  const busy = inHost([join(T, 'usr', 'bin', 'skiff'), 'check-config']);
  assert.equal(busy.status, 1);
  assert.match(busy.stdout, /port 6443: MISSING \(in use/);

  const childFile = join(T, 'run', 'skiff.child.pid');
  const first = Number(readFileSync(childFile, 'utf8'));
  process.kill(first, 'SIGKILL');
  await eventually(async () => { try { const p = Number(readFileSync(childFile, 'utf8')); return p !== first && existsSync(`/proc/${p}`); } catch { return false; } },
    'the supervisor to start a new server', 60_000, logTail);
  await eventually(async () => (await kubectl(['get', 'pod', 'sleeper', '-o', 'jsonpath={.status.phase}']).catch(() => '')) === 'Running',
    'kubectl answering again, the pod still Running', 120_000, logTail);
});

/** Every file and link of the install (program, units, config, env and pid files) with its size and mtime. */
function installTree(): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) { out.push(`${p}/`); walk(p); } else { const st = lstatSync(p); out.push(`${p} ${st.size} ${st.mtimeMs}`); }
    }
  };
  for (const d of ['usr', 'systemd', 'init.d', 'etc']) walk(join(T, d));
  // The run dir's pid files only (the supervisor's, its child's): the runtime's state beside them changes by itself.
  for (const f of existsSync(join(T, 'run')) ? readdirSync(join(T, 'run')).filter((x) => x.endsWith('.pid')) : []) out.push(`${f} ${readFileSync(join(T, 'run', f), 'utf8').trim()}`);
  return out.sort();
}

test('an install over a different installed version is refused without INSTALL_SKIFF_FORCE; nothing half-installed', async () => {
  const tree = installTree();
  mkdirSync(join(T, 'tmp'), { recursive: true });
  const r = inHost([join(T, 'rel2', 'install.sh')], installEnv({ TMPDIR: join(T, 'tmp') }));
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, new RegExp(`skiff ${VERSION_A} is installed .*refusing to install ${VERSION_B}.*INSTALL_SKIFF_FORCE`));
  assert.equal(readFileSync(join(T, 'usr', 'lib', 'skiff', 'VERSION'), 'utf8').trim(), VERSION_A, 'the installed version is untouched');
  assert.deepEqual(installTree(), tree, 'no file of the install added, removed or changed (program, units, config, env, pid files)');
  assert.deepEqual(readdirSync(join(T, 'tmp')), [], 'its unpacked copy removed');
  assert.match(await kubectl(['get', 'pod', 'sleeper', '-o', 'name']), /pod\/sleeper/, 'the server still answers');
});

test('uninstall leaves no file, process, mount, nftables table, iptables chain, device or route', () => {
  const r = inHost([join(T, 'usr', 'bin', 'skiff'), 'uninstall'], { PATH: process.env.PATH! });
  assert.equal(r.status, 0, r.stderr);
  for (const d of ['usr', 'etc', 'd', 'run', 'log', 'systemd']) assert.ok(!existsSync(join(T, d)), `${d} removed`);
  assert.deepEqual(processesOf(T), [], 'no process of the install');
  assert.deepEqual(mountsUnder(T), [], 'no mount under the install');
  const tables = inHost(['nft', 'list', 'tables']).stdout.split('\n').filter((l) => /skiff/i.test(l));
  assert.deepEqual(tables, [], 'no skiff nftables table');
  assert.ok(!/SKIFF-/.test(inHost(['iptables-save']).stdout), 'no SKIFF- iptables chain');
  const links = inHost(['ip', '-o', 'link', 'show']).stdout.split('\n').filter(Boolean).map((l) => l.split(': ')[1]!.split('@')[0]);
  assert.deepEqual(links.sort(), ['eth0', 'lo'], 'only the host\'s own links');
  assert.ok(!/10\.42\./.test(inHost(['ip', 'route', 'show']).stdout), 'no route to the pod network');
});
