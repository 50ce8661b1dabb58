// SSH install benchmark (issue 14: "SSH install time for 1 and for 4 hosts in parallel", goal: 4 hosts
// in parallel within 1.5x one host). The hosts are network namespaces running Debian's sshd, as in
// test/e2e/install-ssh.test.ts (test/helpers/ssh-hosts.ts); every install goes under a temp dir.
//   phase 1: `skiff up` of ONE server host (start → the plan succeeded: installed, /readyz answering);
//   phase 2: `skiff up` of N agent hosts in parallel joining it (start → all N done and their nodes Ready).
// Prints each host's time, the ratio N-parallel / 1 and a one-line summary. Removes everything
// (`skiff down`, `skiff killall --data-dir` in each host, sshd, netns, links, temp dir), also on failure
// or Ctrl-C. Needs root, sshd, containerd, kubectl. Run after `npm run build`:
//   node --import tsx bench/install-ssh.ts [--hosts 4]
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { type NetnsHost } from '../test/helpers/netns-host.js';
import { SshHosts, skiffBin, skiffBuilt, sshHostsRequirements } from '../test/helpers/ssh-hosts.js';

const HELP = `usage: node --import tsx bench/install-ssh.ts [--hosts N]

Times \`skiff up\` over SSH: one server host, then N agent hosts in parallel joining it
(default N=4, at most 9). Each host is a network namespace with its own sshd; installs go under a
temp dir. Needs root, /usr/sbin/sshd, containerd, kubectl and a build (npm run build).
Prints per-host times and: install-ssh: one=<s> four=<s> ratio=<N-parallel / one>`;

const argv = process.argv.slice(2);
if (argv.includes('--help') || argv.includes('-h')) { console.log(HELP); process.exit(0); }
const hi = argv.indexOf('--hosts');
const N = hi >= 0 ? Number(argv[hi + 1]) : 4;
if (!Number.isInteger(N) || N < 1 || N > 9) { console.error(`--hosts: expected 1..9, got ${argv[hi + 1]}\n\n${HELP}`); process.exit(2); }

const run = process.pid % 1000;
// Subnets 10.201.<10·k + i>.0/24 (k from the pid): 10.201/16 is used by no other test or bench.
const mkHost = (tag: string, i: number): NetnsHost => {
  const net = `10.201.${(run % 25) * 10 + i}`;
  return { name: `bs-${run}-${tag}`, netns: `skbs${run}${tag}`, hostIf: `skbv${run}${tag}`, hostIp: `${net}.1`, ip: `${net}.2`, dir: '' };
};
const server = mkHost('s', 0);
const agents = Array.from({ length: N }, (_, i) => mkHost(`a${i}`, i + 1));
const all = [server, ...agents];
const lab = new SshHosts(all, `/tmp/skbs${run}.`);
const children = new Set<ChildProcess>();
const secs = (ms: number) => (ms / 1000).toFixed(1);
const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');

interface SkiffRun { code: number | null; stdout: string; stderr: string; doneAt: Map<string, { ms: number; line: string }> }

/** Runs bin/skiff; `doneAt` maps each host of a `[host] done in …` line to when it appeared (ms since t0). */
function skiff(args: string[], t0: number, echo = true): Promise<SkiffRun> {
  return new Promise((resolve) => {
    const p = spawn(skiffBin(), args, { stdio: ['ignore', 'pipe', 'pipe'] });
    children.add(p);
    const out: SkiffRun = { code: null, stdout: '', stderr: '', doneAt: new Map() };
    let partial = '';
    p.stdout!.setEncoding('utf8').on('data', (c: string) => { out.stdout += c; });
    p.stderr!.setEncoding('utf8').on('data', (c: string) => {
      out.stderr += c; partial += c;
      const lines = partial.split('\n'); partial = lines.pop()!;
      for (const l of lines) {
        const m = /^\[([^\]]+)\] (?:done|FAILED) in /.exec(l);
        if (m) out.doneAt.set(m[1]!, { ms: performance.now() - t0, line: l });
        if (echo && (m || / running install\.sh| copying /.test(l))) console.log(`  ${secs(performance.now() - t0).padStart(5)} s  ${l}`);
      }
    });
    p.on('close', (code) => { children.delete(p); out.code = code; resolve(out); });
  });
}

/** Node names Ready per `kubectl get nodes` (empty on error). */
function readyNodes(kc: string): Promise<Set<string>> {
  return new Promise((resolve) => {
    const p = spawn('kubectl', ['--kubeconfig', kc, 'get', 'nodes', '--no-headers', '--request-timeout=5s'], { stdio: ['ignore', 'pipe', 'ignore'] });
    children.add(p);
    let s = '';
    p.stdout!.setEncoding('utf8').on('data', (c: string) => { s += c; });
    p.on('close', () => {
      children.delete(p);
      resolve(new Set(s.split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[1] === 'Ready').map((f) => f[0]!)));
    });
  });
}

/** Polls until every name is Ready or `until` passes; returns when each was first seen Ready (ms since t0). */
async function watchReady(kc: string, names: string[], t0: number, until: number, stop: { done: boolean }): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  while (seen.size < names.length && performance.now() < until && !stop.done) {
    const ready = await readyNodes(kc);
    for (const n of names) if (ready.has(n) && !seen.has(n)) seen.set(n, performance.now() - t0);
    if (seen.size < names.length) await new Promise((r) => setTimeout(r, 500));
  }
  return seen;
}

let cleaning: Promise<void> | undefined;
/** `skiff down` each installed host, `skiff killall --data-dir` in each host, then the lab's teardown. */
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of children) c.kill('SIGKILL');
    if (!lab.dir) return;
    const downs = all.filter((h) => existsSync(join(lab.binDir(h), 'skiff-uninstall.sh'))).map(async (h) => {
      const r = await skiff(['down', '--host', h.ip, '--ssh-key', lab.key, '--bin-dir', lab.binDir(h), '--ssh-insecure-ignore-host-key'], performance.now(), false);
      if (r.code !== 0) console.error(`skiff down ${h.name}: exit ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    });
    await Promise.all(downs);
    // In the host's namespace: killall also deletes the pod bridge, which is the host's own there.
    for (const h of all) if (existsSync(lab.dataDir(h))) lab.inHost(h, [skiffBin(), 'killall', '--data-dir', lab.dataDir(h)]);
    await lab.tearDown();
  })();
  return cleaning;
}

for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    console.error(`\n${sig}: cleaning up`);
    void cleanup().finally(() => process.exit(130));
  });
}

async function main(): Promise<void> {
  const missing = sshHostsRequirements();
  if (missing.length) throw new Error(`bench/install-ssh.ts needs: ${missing.join(', ')}`);
  if (!skiffBuilt()) throw new Error('run npm run build first (the bench runs bin/skiff up)');
  console.log(`install-ssh bench: 1 server, then ${N} agents in parallel; ${os.cpus().length} cores; load ${load()}`);
  const ts = performance.now();
  lab.setUp();
  console.log(`setup (release, keys, ${all.length} hosts with sshd): ${secs(performance.now() - ts)} s`);
  const T = lab.dir;
  const kc = join(T, 'kubeconfig');
  const common = ['--ssh-key', lab.key, '--release', lab.release, '--local-path', kc, '--context', 'bench', '--ssh-insecure-ignore-host-key'];

  // Phase 1: one server.
  const plan1 = join(T, 'plan-server.yaml');
  writeFileSync(plan1, JSON.stringify({ hosts: [{ host: server.ip, role: 'server', env: lab.env(server) }] }));
  console.log(`phase 1: skiff up of 1 server (${server.ip}); load ${load()}`);
  const t1 = performance.now();
  const r1 = await skiff(['up', '--plan', plan1, ...common], t1);
  const one = performance.now() - t1;
  if (r1.code !== 0) throw new Error(`phase 1: skiff up exited ${r1.code}\n${r1.stdout}\n${r1.stderr.split('\n').slice(-20).join('\n')}\n${lab.logTail(server, 'server')}`);
  const token = /^join token: (\S+)$/m.exec(r1.stdout)?.[1];
  if (!token) throw new Error(`phase 1: no join token in skiff up's output\n${r1.stdout}`);
  const readyz = spawnSync('kubectl', ['--kubeconfig', kc, 'get', '--raw', '/readyz'], { encoding: 'utf8', timeout: 30_000 });
  if (readyz.stdout.trim() !== 'ok') throw new Error(`phase 1: the server does not answer /readyz: ${readyz.stdout}${readyz.stderr}`);
  // The server's own node (embedded agent) Ready before phase 2, so its start does not overlap the agents'.
  const serverReady = await watchReady(kc, [server.name], t1, performance.now() + 180_000, { done: false });
  if (!serverReady.has(server.name)) throw new Error(`phase 1: server node not Ready within 180 s\n${lab.logTail(server, 'server')}`);
  console.log(`phase 1: ${secs(one)} s to installed and /readyz answering; server node Ready at ${secs(serverReady.get(server.name)!)} s`);

  // Phase 2: N agents in parallel.
  const plan2 = join(T, 'plan-agents.yaml');
  writeFileSync(plan2, JSON.stringify({ hosts: agents.map((h) => ({ host: h.ip, role: 'agent', env: lab.env(h) })) }));
  const url = `https://${server.ip}:6443`;
  console.log(`phase 2: skiff up of ${N} agent${N > 1 ? 's' : ''} in parallel joining ${url}; load ${load()}`);
  const t2 = performance.now();
  const stop = { done: false };
  const watching = watchReady(kc, agents.map((h) => h.name), t2, t2 + 600_000, stop);
  const r2 = await skiff(['up', '--plan', plan2, ...common, '--server', url, '--token', token], t2);
  const upExit = performance.now() - t2;
  if (r2.code !== 0) { stop.done = true; await watching; throw new Error(`phase 2: skiff up exited ${r2.code}\n${r2.stdout}\n${r2.stderr.split('\n').filter((l) => /FAILED|ERROR|error/.test(l)).slice(-20).join('\n')}\n${agents.map((h) => lab.logTail(h, 'agent')).join('\n')}`); }
  // skiff up waits for each node Ready (install.sh's wait-ready); kubectl must see it too (at most 120 s more).
  const giveUp = setTimeout(() => { stop.done = true; }, 120_000);
  const ready = await watching;
  clearTimeout(giveUp);
  const notReady = agents.filter((h) => !ready.has(h.name));
  if (notReady.length) throw new Error(`phase 2: not Ready per kubectl: ${notReady.map((h) => h.name).join(', ')}\n${notReady.map((h) => lab.logTail(h, 'agent')).join('\n')}`);
  const four = Math.max(upExit, ...ready.values());

  console.log(`\nhost                 role    skiff up done   node Ready (kubectl)`);
  console.log(`${server.name.padEnd(20)} server  ${secs(r1.doneAt.get(server.ip)?.ms ?? one).padStart(10)} s   ${secs(serverReady.get(server.name)!).padStart(10)} s`);
  const perHost: number[] = [];
  for (const h of agents) {
    const d = r2.doneAt.get(h.ip)?.ms ?? upExit;
    perHost.push(Math.max(d, ready.get(h.name)!));
    console.log(`${h.name.padEnd(20)} agent   ${secs(d).padStart(10)} s   ${secs(ready.get(h.name)!).padStart(10)} s`);
  }
  const sorted = [...perHost].sort((a, b) => a - b);
  console.log(`\nphase 1 (1 server):              ${secs(one)} s`);
  console.log(`phase 2 (${N} agents in parallel):   ${secs(four)} s (per host ${secs(sorted[0]!)}–${secs(sorted[sorted.length - 1]!)} s)`);
  console.log(`ratio ${N}-parallel / 1:            ${(four / one).toFixed(2)} (goal ≤ 1.5 for 4 hosts)`);
  console.log(`load average (1, 5, 15 min):     ${load()}`);
  console.log(`install-ssh: one=${secs(one)}s ${N === 4 ? 'four' : `n${N}`}=${secs(four)}s ratio=${(four / one).toFixed(2)}`);
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error(e instanceof Error ? e.message : String(e));
} finally {
  const tc = performance.now();
  await cleanup();
  console.log(`cleanup: ${secs(performance.now() - tc)} s`);
}
process.exit(failed ? 1 : 0);
