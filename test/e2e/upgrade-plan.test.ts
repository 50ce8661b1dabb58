// Issue 14 items 5 and 6 end to end: rolling upgrades without SSH. One release build (version A) is
// repacked as B (another version string), B' (its launcher exits at once: a release that cannot
// start) and a tampered C (its bytes changed after its checksum was written). Three test hosts
// (network namespaces with their own prefix and data dir, as install-release.test.ts): A installed as
// a server and two agents (installed in parallel), each running a pod that serves HTTP. Then, through
// the server's release dir and Upgrade objects applied with kubectl:
// - a plan naming a missing version is refused; a tampered artifact is refused by
//   `skiff release upload` and, copied into the release dir anyway, by the node; clear messages,
//   nothing installed;
// - an Upgrade to B' over the agents (cordon: true) is rolled back to A on its first node by that
//   node's own health gate, the plan pauses with a clear condition and the other agent is never
//   touched (never cordoned, never targeted); deleting the paused plan uncordons the node it held
//   (the finalizer);
// - an Upgrade to B upgrades the server, then each agent, one node at a time (from the agents' own
//   logs: each node's download-to-Ready interval ends before the next one starts); the pods keep
//   running on all three (same container IDs, no restart since the start; their HTTP answers probed
//   throughout) and `kubectl get nodes` shows B;
// - an agent of a newer minor is refused at join (version skew).
// Needs root, iproute2, nftables, containerd; removes everything it creates, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT } from '../helpers/cluster.js';
import { createHostNetwork, netnsAgentRequirements, removeHostNetwork, type NetnsHost } from '../helpers/netns-host.js';
import { TEST_IMAGE, writeBusyboxImage } from '../helpers/images.js';
import { eventually } from '../helpers/wait.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

const run = process.pid % 1000;
const net = (run % 80) * 3;
const hosts: NetnsHost[] = ['s', 'a1', 'a2'].map((n, i) => ({
  name: `upg-${run}-${n}`, netns: `skug${run}${n}`, hostIf: `skgv${run}${n}`, hostIp: `10.193.${net + i}.1`, ip: `10.193.${net + i}.2`, dir: '',
}));
const [S, A1, A2] = hosts as [NetnsHost, NetnsHost, NetnsHost];
const AGENTS = [A1, A2];
// B is a minor ahead of A: while the servers run B, the agents (still A) are one minor behind (item 6).
const V = { A: `0.1.0-upg${run}`, B: `0.2.0-upg${run}`, BROKEN: `0.2.1-upg${run}`, TAMPERED: `0.2.2-upg${run}`, NEWER: `0.3.0-upg${run}` };
const arch = ({ x64: 'amd64', arm64: 'arm64', arm: 'arm' } as Record<string, string>)[process.arch] ?? process.arch;
const tarName = (v: string) => `skiff-${v}-linux-${arch}.tar.gz`;
let T = '';
const exec = promisify(execFile);

const hostDir = (h: NetnsHost) => join(T, h.name);
const releasesDir = () => join(hostDir(S), 'd', 'server', 'releases');
const kubeconfig = () => join(hostDir(S), 'etc', 'skiff.yaml');
function installEnv(h: NetnsHost, extra: Record<string, string> = {}): Record<string, string> {
  const d = hostDir(h);
  return {
    PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: '/root',
    INSTALL_SKIFF_PREFIX: join(d, 'usr'), INSTALL_SKIFF_SYSTEMD_DIR: join(d, 'systemd'), INSTALL_SKIFF_OPENRC_DIR: join(d, 'init.d'),
    INSTALL_SKIFF_CONFIG_DIR: join(d, 'etc'), INSTALL_SKIFF_DATA_DIR: join(d, 'd'), INSTALL_SKIFF_RUN_DIR: join(d, 'run'),
    INSTALL_SKIFF_LOG_DIR: join(d, 'log'), INSTALL_SKIFF_INIT: 'none', SKIFF_NODE_NAME: h.name, SKIFF_NODE_IP: h.ip,
    ...extra,
  };
}
/** install.sh in a host (async: the agents install in parallel). */
function install(h: NetnsHost, env: Record<string, string>): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn('nsenter', [`--net=/var/run/netns/${h.netns}`, join(T, 'rel', 'install.sh')], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('close', (code) => resolve({ code: code ?? 1, stderr }));
  });
}
async function kubectl(args: string[], input?: string): Promise<string> {
  const p = exec('nsenter', [`--net=/var/run/netns/${S.netns}`, 'kubectl', '--kubeconfig', kubeconfig(), ...args], { encoding: 'utf8', timeout: 30_000 });
  if (input !== undefined) { p.child.stdin!.end(input); }
  return (await p).stdout;
}
const quiet = (args: string[]) => kubectl(args).catch(() => '');
const logOf = (h: NetnsHost) => join(hostDir(h), 'log', h === S ? 'skiff.log' : 'skiff-agent.log');
const tails = () => hosts.map((h) => {
  const guard = join(hostDir(h), 'd', 'agent', 'upgrade', 'guard.log');
  let out = '';
  try { out += `--- ${h.name}\n${readFileSync(logOf(h), 'utf8').split('\n').slice(-12).join('\n')}`; } catch { /* none */ }
  if (existsSync(guard)) out += `\n--- ${h.name} guard\n${readFileSync(guard, 'utf8')}`;
  return out;
}).join('\n');
const installedVersion = (h: NetnsHost) => readFileSync(join(hostDir(h), 'usr', 'lib', 'skiff', 'VERSION'), 'utf8').trim();

/**
 * Another release from the one build: the tree with another VERSION (and `mutate` applied), its
 * SHA256SUMS redone, packed as scripts/release.mjs packs, its line added to `out`/SHA256SUMS.
 */
function repack(version: string, out: string, mutate?: (root: string) => void): void {
  const work = mkdtempSync(join(T, 'repack.'));
  spawnSync('tar', ['-xzf', join(T, 'rel', tarName(V.A)), '-C', work]);
  const name = `skiff-${version}-linux-${arch}`;
  const root = join(work, name);
  renameSync(join(work, `skiff-${V.A}-linux-${arch}`), root);
  writeFileSync(join(root, 'VERSION'), `${version}\n`);
  writeFileSync(join(root, 'lib', 'skiff', 'package.json'), JSON.stringify({ type: 'module', version }) + '\n');
  mutate?.(root);
  const files: string[] = [];
  const walk = (d: string) => { for (const e of readdirSync(d)) { const p = join(d, e); if (statSync(p).isDirectory()) walk(p); else if (p !== join(root, 'SHA256SUMS')) files.push(p); } };
  walk(root);
  const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
  writeFileSync(join(root, 'SHA256SUMS'), files.sort().map((f) => `${sha(f)}  ${relative(root, f)}`).join('\n') + '\n');
  mkdirSync(out, { recursive: true });
  spawnSync('tar', ['-C', work, '--owner=0', '--group=0', '--numeric-owner', '-czf', join(out, `${name}.tar.gz`), name]);
  appendFileSync(join(out, 'SHA256SUMS'), `${sha(join(out, `${name}.tar.gz`))}  ${name}.tar.gz\n`);
  rmSync(work, { recursive: true, force: true });
}

/** `skiff release upload` of T/offer's `version` with the server's admin kubeconfig (from inside its host). */
function upload(version: string) {
  return spawnSync('nsenter', [`--net=/var/run/netns/${S.netns}`, join(hostDir(S), 'usr', 'bin', 'skiff'), 'release', 'upload', join(T, 'offer', tarName(version)),
    '--kubeconfig', kubeconfig()], { encoding: 'utf8', timeout: 120_000 });
}

/** Puts `version` (from T/offer) into the server's release dir by hand, as a copy onto its disk would. */
function offer(version: string): void {
  mkdirSync(releasesDir(), { recursive: true });
  copyFileSync(join(T, 'offer', tarName(version)), join(releasesDir(), tarName(version)));
  const line = readFileSync(join(T, 'offer', 'SHA256SUMS'), 'utf8').split('\n').find((l) => l.endsWith(`  ${tarName(version)}`))!;
  appendFileSync(join(releasesDir(), 'SHA256SUMS'), line + '\n');
}

const upgrade = (name: string, spec: Record<string, unknown>) =>
  JSON.stringify({ apiVersion: 'upgrade.skiff.io/v1alpha1', kind: 'Upgrade', metadata: { name }, spec });
async function planStatus(name: string): Promise<any> {
  const out = await quiet(['get', 'upgrade', name, '-o', 'json']);
  return out ? JSON.parse(out).status ?? {} : undefined;
}
const condition = (st: any, type: string) => st?.conditions?.find((c: any) => c.type === type);
async function podContainers(): Promise<Record<string, { id: string; restarts: number; phase: string }>> {
  const list = JSON.parse(await kubectl(['get', 'pods', '-o', 'json'])).items as any[];
  return Object.fromEntries(list.map((p) => [p.metadata.name, { id: p.status.containerStatuses?.[0]?.containerID ?? '', restarts: p.status.containerStatuses?.[0]?.restartCount ?? -1, phase: p.status.phase }]));
}
/** The pods' containers once all ran: every later look must find the same ones, never restarted. */
let initialPods: Awaited<ReturnType<typeof podContainers>> = {};
async function nodeObjects(): Promise<Record<string, any>> {
  const out = await quiet(['get', 'nodes', '-o', 'json']);
  return out ? Object.fromEntries((JSON.parse(out).items as any[]).map((n) => [n.metadata.name, n])) : {};
}
/** `msg` entries of a host's log (JSON lines, all its restarts appended) with their time. */
function logEntries(h: NetnsHost, msg: string): { t: number; e: any }[] {
  const out: { t: number; e: any }[] = [];
  for (const line of readFileSync(logOf(h), 'utf8').split('\n')) {
    if (!line.startsWith('{') || !line.includes(msg)) continue;
    try { const e = JSON.parse(line); if (e.msg === msg) out.push({ t: Date.parse(e.time), e }); } catch { /* a torn line */ }
  }
  return out;
}

before(async () => {
  const missing = netnsAgentRequirements();
  for (const bin of ['/usr/sbin/nft', '/usr/bin/sha256sum', '/usr/bin/tar', '/usr/bin/kubectl']) if (!existsSync(bin)) missing.push(bin);
  if (missing.length) throw new Error(`upgrade-plan test needs: ${missing.join(', ')}`);
  T = mkdtempSync(`/tmp/skug${run}.`);
  // One build; B, B' and C are repacks of it (a build takes a while; the version is a file).
  const r = spawnSync('node', [join(REPO_ROOT, 'scripts', 'release.mjs'), '--version', V.A, '--out', join(T, 'rel')], { encoding: 'utf8', timeout: 600_000 });
  assert.equal(r.status, 0, `release ${V.A}: ${r.stderr}${r.stdout}`);
  repack(V.B, join(T, 'offer'));
  repack(V.BROKEN, join(T, 'offer'), (root) => writeFileSync(join(root, 'bin', 'skiff'), '#!/usr/bin/env bash\necho "skiff: this build is broken on purpose" >&2\nexit 1\n'));
  repack(V.TAMPERED, join(T, 'offer'));
  const tampered = join(T, 'offer', tarName(V.TAMPERED));
  const data = readFileSync(tampered);
  data[Math.floor(data.length / 2)]! ^= 0xff;
  writeFileSync(tampered, data);
  repack(V.NEWER, join(T, 'newer'));
  copyFileSync(join(T, 'rel', 'install.sh'), join(T, 'newer', 'install.sh'));

  for (const h of hosts) {
    createHostNetwork(h);
    mkdirSync(join(hostDir(h), 'd', 'agent', 'images'), { recursive: true });
    writeBusyboxImage(join(hostDir(h), 'd', 'agent', 'images'), 'busybox.tar');
  }
  const server = await install(S, installEnv(S));
  assert.equal(server.code, 0, `server install: ${server.stderr}\n${tails()}`);
  const token = readFileSync(join(hostDir(S), 'd', 'server', 'node-token'), 'utf8').trim();
  const agents = await Promise.all(AGENTS.map((h) => install(h, installEnv(h, { SKIFF_URL: `https://${S.ip}:6443`, SKIFF_TOKEN: token }))));
  agents.forEach((a, i) => assert.equal(a.code, 0, `agent ${AGENTS[i]!.name} install: ${a.stderr}\n${tails()}`));
  await eventually(async () => (await quiet(['get', 'nodes', '--no-headers'])).split('\n').filter((l) => /\sReady\s/.test(l)).length === 3,
    'the three nodes Ready', 180_000, tails);
  for (const h of hosts) {
    await kubectl(['apply', '-f', '-'], JSON.stringify({
      apiVersion: 'v1', kind: 'Pod', metadata: { name: `sleeper-${h.name}` },
      spec: { nodeName: h.name, containers: [{ name: 'c', image: TEST_IMAGE, imagePullPolicy: 'Never',
        command: ['sh', '-c', 'echo ok > /tmp/index.html && exec httpd -f -p 8080 -h /tmp'] }] },
    }));
  }
  initialPods = await eventually(async () => { const p = await podContainers().catch(() => ({})); return Object.values(p).filter((x) => x.phase === 'Running' && x.id).length === 3 && p; },
    'a pod Running on each node', 180_000, tails) as typeof initialPods;
});

after(async () => {
  if (!T) return;
  const t0 = Date.now();
  const mark = (what: string) => process.stderr.write(`upgrade-plan cleanup: ${what} after ${((Date.now() - t0) / 1000).toFixed(1)} s\n`);
  process.on('exit', () => mark('process exit'));
  // No uninstaller run (install-release.test.ts tests it): everything the installs made is under T or
  // inside the hosts' network namespaces, so killing the processes, the containers and the mounts and
  // deleting the namespaces (their links, routes, nftables tables) removes it, in seconds.
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try { if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(T)) process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
  }
  await Promise.all(hosts.map((h) => teardownRuntime({ dataDir: join(hostDir(h), 'd'), cgroupParents: ['/kubepods'] }).catch(() => undefined)));
  for (const m of readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4]).filter((m): m is string => !!m && m.startsWith(T)).reverse()) spawnSync('umount', ['-l', m]);
  for (const h of hosts) removeHostNetwork(h);
  rmSync(T, { recursive: true, force: true });
  mark('done');
});

test('kubectl knows Upgrade; a plan naming a missing version is refused with a clear condition', async () => {
  await kubectl(['apply', '-f', '-'], upgrade('missing', { version: '9.9.9' }));
  const st = await eventually(async () => { const s = await planStatus('missing'); return condition(s, 'Valid')?.status === 'False' && s; }, 'the plan marked invalid', 60_000, tails);
  assert.equal(condition(st, 'Valid').reason, 'VersionNotFound');
  assert.match(condition(st, 'Valid').message, new RegExp(`no release skiff-9\\.9\\.9-linux-${arch}\\.tar\\.gz in .*releases \\(versions there for ${arch}: none\\)`));
  const table = await kubectl(['get', 'upgrades']);
  assert.match(table, /NAME\s+VERSION\s+STATE\s+UPGRADED\s+NODES\s+AGE/);
  assert.match(table, /missing\s+9\.9\.9\s+Invalid/);
  for (const h of hosts) assert.equal(installedVersion(h), V.A, `${h.name} untouched`);
  await kubectl(['delete', 'upgrade', 'missing']);
});

test('a tampered artifact is refused at upload and, copied in anyway, by the node (checksum mismatch); nothing installed, the plan pauses', async () => {
  const up = upload(V.TAMPERED);
  assert.equal(up.status, 1, up.stdout);
  assert.match(up.stderr, new RegExp(`upload of ${tarName(V.TAMPERED).replace(/\./g, '\\.')} refused \\(HTTP 400\\): checksum mismatch .*nothing was stored`));
  assert.ok(!existsSync(join(releasesDir(), tarName(V.TAMPERED))), 'not stored');
  offer(V.TAMPERED);
  await kubectl(['apply', '-f', '-'], upgrade('tampered', { version: V.TAMPERED }));
  const st = await eventually(async () => { const s = await planStatus('tampered'); return condition(s, 'Paused')?.status === 'True' && s; }, 'the plan paused', 120_000, tails);
  assert.match(condition(st, 'Paused').message, new RegExp(`node ${S.name}: checksum mismatch for ${tarName(V.TAMPERED).replace(/\./g, '\\.')}: expected [0-9a-f]{64}, got [0-9a-f]{64} \\(a damaged or tampered artifact\\); nothing was installed`));
  assert.equal(st.nodes.filter((n: any) => n.phase !== 'Pending').length, 1, 'only the first node was tried');
  for (const h of hosts) assert.equal(installedVersion(h), V.A, `${h.name} still runs ${V.A}`);
  assert.ok(!existsSync(join(hostDir(S), 'usr', 'lib', 'skiff.prev')), 'no swap happened');
  await kubectl(['delete', 'upgrade', 'tampered']);
});

test('a broken release is rolled back to A by the first agent\'s own health gate, the plan pauses, the other agent is never touched; deleting the plan uncordons', async (t) => {
  offer(V.BROKEN);
  const t0 = Date.now();
  await kubectl(['apply', '-f', '-'], upgrade('broken', { version: V.BROKEN, healthTimeoutSeconds: 10, cordon: true,
    nodeSelector: { matchExpressions: [{ key: 'node-role.kubernetes.io/control-plane', operator: 'DoesNotExist' }] } }));
  // Every look at the nodes while the plan runs: the second agent must never be cordoned nor targeted.
  const touched = new Set<string>();
  let cordonedA1 = false;
  const st = await eventually(async () => {
    const n = await nodeObjects();
    const a2 = n[A2.name];
    if (a2?.spec?.unschedulable) touched.add('cordoned');
    for (const k of ['upgrade.skiff.io/plan', 'upgrade.skiff.io/target-version']) if (a2?.metadata.annotations?.[k]) touched.add(k);
    if (n[A1.name]?.spec?.unschedulable) cordonedA1 = true;
    const s = await planStatus('broken');
    return condition(s, 'Paused')?.status === 'True' && s;
  }, 'the plan paused by the health gate', 300_000, tails);
  t.diagnostic(`broken release: rolled back and paused after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const paused = condition(st, 'Paused');
  assert.equal(paused.reason, 'NodeRolledBack');
  assert.match(paused.message, new RegExp(`health gate: node ${A1.name}: ${V.BROKEN.replace(/\./g, '\\.')} did not become Ready within 10s; rolled back to ${V.A.replace(/\./g, '\\.')} by the node's agent`));
  assert.deepEqual(st.nodes.map((n: any) => `${n.name}=${n.phase}`), [`${A1.name}=Failed`, `${A2.name}=Pending`], 'no further node started');
  assert.equal(installedVersion(A1), V.A, 'A is back on the first agent');
  assert.equal(readFileSync(join(hostDir(A1), 'usr', 'lib', 'skiff.failed', 'VERSION'), 'utf8').trim(), V.BROKEN, 'the failed release set aside');
  for (const h of [S, A2]) assert.equal(installedVersion(h), V.A, `${h.name} untouched`);
  assert.deepEqual([...touched], [], `${A2.name} never cordoned nor targeted`);
  assert.ok(cordonedA1, `${A1.name} was cordoned while it upgraded`);
  assert.match(await kubectl(['get', 'upgrades', 'broken']), /broken\s+\S+\s+Paused\s+0\/2/);
  // The paused plan still holds the first agent cordoned; deleting it lets go (the finalizer).
  assert.equal((await nodeObjects())[A1.name]?.spec?.unschedulable, true, 'held cordoned while paused');
  await kubectl(['delete', 'upgrade', 'broken', '--timeout=60s']);
  const a1 = (await nodeObjects())[A1.name];
  assert.ok(!a1.spec?.unschedulable, `${A1.name} uncordoned once the plan is deleted`);
  for (const k of ['plan', 'target-version', 'target-file', 'target-sha256', 'cordoned']) assert.equal(a1.metadata.annotations?.[`upgrade.skiff.io/${k}`], undefined, `${k} cleared`);
  await eventually(async () => new RegExp(`${A1.name}\\s+Ready\\s`).test(await quiet(['get', 'nodes', '--no-headers'])), 'the first agent Ready again', 120_000, tails);
  assert.deepEqual(await podContainers(), initialPods, 'the pods kept running through the failed upgrade and the rollback');
});

test('an Upgrade to B: the server first, then one agent at a time; the pods keep running on all three; kubectl get nodes shows B', async (t) => {
  const up = upload(V.B);
  assert.equal(up.status, 0, `skiff release upload: ${up.stderr}`);
  assert.match(up.stdout, /uploaded \(sha256 [0-9a-f]{64}\)/);
  // Each pod's HTTP answer, from the server's host every 200 ms through the upgrade (pod downtime).
  const ips = (JSON.parse(await kubectl(['get', 'pods', '-o', 'json'])).items as any[]).map((p) => p.status.podIP as string);
  const probeLog = join(T, 'probe.log');
  const probe = spawn('nsenter', [`--net=/var/run/netns/${S.netns}`, 'bash', '-c',
    `while :; do for ip in ${ips.join(' ')}; do echo "$ip $(curl -s -m 1 -o /dev/null -w '%{http_code}' http://$ip:8080/index.html) $(date +%s.%N)"; done; sleep 0.2; done > ${probeLog}`], { stdio: 'ignore' });
  const t0 = Date.now();
  await kubectl(['apply', '-f', '-'], upgrade('to-b', { version: V.B, healthTimeoutSeconds: 120 }));
  const order: string[] = [];
  let maxActive = 0;
  let table = '';
  await eventually(async () => {
    const s = await planStatus('to-b');
    if (!s?.nodes) return false;
    const active = s.nodes.filter((n: any) => ['Cordoning', 'Draining', 'Upgrading'].includes(n.phase)).map((n: any) => n.name);
    maxActive = Math.max(maxActive, active.length);
    for (const n of active) if (!order.includes(n)) order.push(n);
    if (active.length) table = await quiet(['get', 'upgrades', 'to-b', '--no-headers']) || table;
    return condition(s, 'Complete')?.status === 'True';
  }, 'the plan Complete', 420_000, tails).finally(() => probe.kill('SIGKILL'));
  t.diagnostic(`upgrade of 3 nodes, one at a time: ${((Date.now() - t0) / 1000).toFixed(1)} s from ${new Date(t0).toISOString()}; seen in progress: ${order.join(', ')}`);
  const probes = readFileSync(probeLog, 'utf8').split('\n').filter(Boolean).map((l) => l.split(' '));
  for (const ip of ips) {
    const mine = probes.filter((p) => p[0] === ip);
    // The longest run of unanswered probes, from the last answer before it to the first after it.
    let gap = 0;
    let lastOk = Number(mine[0]?.[2] ?? 0);
    for (const p of mine) if (p[1] === '200') { gap = Math.max(gap, Number(p[2]) - lastOk); lastOk = Number(p[2]); }
    const failedAt = mine.filter((p) => p[1] !== '200').map((p) => `${(Number(p[2]) - t0 / 1000).toFixed(1)}`);
    t.diagnostic(`pod ${ip}: ${mine.filter((p) => p[1] === '200').length}/${mine.length} HTTP probes answered during the upgrade; `
      + `longest interval between answers ${gap.toFixed(1)} s${failedAt.length ? `; unanswered at +${failedAt.join(', +')} s` : ''}`);
  }
  t.diagnostic(`kubectl get upgrades while in progress: ${table.trim()}`);
  // The polls of the plan (a node that starts and ends while the server restarts may be missed by them)...
  assert.equal(maxActive, 1, 'never two nodes at once in the plan\'s status');
  assert.equal(order[0], S.name, 'the server first');
  // ...and, missing nothing, the nodes' own logs: each node's upgrade runs from its agent's download
  // to the new version's confirmation (node Ready); no two of these intervals overlap.
  const spans = hosts.map((h) => {
    const start = logEntries(h, 'upgrade: downloading').filter((x) => x.e.to === V.B && x.t >= t0);
    const end = logEntries(h, 'upgrade confirmed: node Ready on the new version').filter((x) => x.e.to === V.B && x.t >= t0);
    // (The confirmation is logged again if its report to the server has to be retried: the first counts.)
    assert.ok(start.length >= 1 && end.length >= 1, `${h.name}: its download and its confirmation of B in its log`);
    return { name: h.name, start: start[0]!.t, end: end[0]!.t };
  }).sort((x, y) => x.start - y.start);
  t.diagnostic(`per node, download to Ready on B: ${spans.map((x) => `${x.name} +${((x.start - t0) / 1000).toFixed(1)}..+${((x.end - t0) / 1000).toFixed(1)} s (${((x.end - x.start) / 1000).toFixed(1)} s)`).join('; ')}`);
  assert.equal(spans[0]!.name, S.name, 'the server first');
  for (let i = 1; i < spans.length; i++) assert.ok(spans[i]!.start >= spans[i - 1]!.end, `${spans[i]!.name} started after ${spans[i - 1]!.name} was done`);
  const nodes = await kubectl(['get', 'nodes', '--no-headers']);
  for (const h of hosts) {
    assert.match(nodes, new RegExp(`${h.name}\\s+Ready\\s+\\S+\\s+\\S+\\s+v\\d+\\.\\d+\\.\\d+\\+skiff-${V.B.replace(/\./g, '\\.')}`), nodes);
    assert.equal(installedVersion(h), V.B);
    assert.equal(readFileSync(join(hostDir(h), 'usr', 'lib', 'skiff.prev', 'VERSION'), 'utf8').trim(), V.A, 'the previous release kept for rollback');
    const ann = JSON.parse(await kubectl(['get', 'node', h.name, '-o', 'json'])).metadata.annotations;
    t.diagnostic(`${h.name}: ${ann['upgrade.skiff.io/message']}`);
  }
  assert.deepEqual(await podContainers(), initialPods, 'every pod Running with the same container as at the start, never restarted');
  assert.match(await kubectl(['get', 'upgrades', 'to-b']), new RegExp(`to-b\\s+${V.B.replace(/\./g, '\\.')}\\s+Complete\\s+3/3`));
  await kubectl(['delete', 'upgrade', 'to-b']);
});

test('version skew: an agent of a newer minor than the server is refused at join', async () => {
  // A fourth "host" is not needed: the join endpoint is asked directly, as the agent asks it.
  const token = readFileSync(join(hostDir(S), 'd', 'server', 'node-token'), 'utf8').trim();
  const password = token.split('::server:')[1]!;
  const body = (agentVersion: string, nodeName: string) => JSON.stringify({ nodeName, nodePassword: 'p'.repeat(20), agentVersion });
  const post = (b: string) => spawnSync('nsenter', [`--net=/var/run/netns/${S.netns}`, 'curl', '-sk', '-X', 'POST', '-H', `authorization: Bearer ${password}`,
    '-H', 'content-type: application/json', '--data', b, 'https://127.0.0.1:6443/v1-skiff/node-credentials'], { encoding: 'utf8' }).stdout;
  const refused = JSON.parse(post(body(V.NEWER, `skew-${run}`)));
  assert.equal(refused.code, 403);
  assert.match(refused.message, new RegExp(`node "skew-${run}": agent version ${V.NEWER.replace(/\./g, '\\.')} is newer than the server's ${V.B.replace(/\./g, '\\.')}: .*upgrade the servers first`));
  const older = JSON.parse(post(body(V.A, `skew-old-${run}`)));
  assert.ok(older.certPem, 'an agent one release behind joins');
});
