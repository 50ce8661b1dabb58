// One "host" for network benchmarks: a network namespace joined to this machine by a veth pair (a /24
// of its own, default route via this side), and a `skiff agent` started inside it, so the agent's
// nftables, bridge and pods stay out of the machine's own namespace.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchServer } from './server.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface BenchHost {
  netns: string;
  /** This side's end of the veth pair. */
  hostIf: string;
  /** This side's address (the host's default gateway). */
  hostIp: string;
  /** The host's own address, on its eth0. */
  ip: string;
}

export const sh = (cmd: string[]) => spawnSync(cmd[0]!, cmd.slice(1), { encoding: 'utf8', maxBuffer: 1 << 28 });

/** Makes the host afresh (whatever a killed earlier run left is removed first). */
export function createHost(host: BenchHost): void {
  removeHost(host);
  for (const cmd of [
    ['ip', 'netns', 'add', host.netns],
    ['ip', 'link', 'add', host.hostIf, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', host.netns],
    ['ip', 'addr', 'add', `${host.hostIp}/24`, 'dev', host.hostIf],
    ['ip', 'link', 'set', host.hostIf, 'up'],
    ['ip', '-n', host.netns, 'addr', 'add', `${host.ip}/24`, 'dev', 'eth0'],
    ['ip', '-n', host.netns, 'link', 'set', 'eth0', 'up'],
    ['ip', '-n', host.netns, 'link', 'set', 'lo', 'up'],
    ['ip', '-n', host.netns, 'route', 'add', 'default', 'via', host.hostIp],
  ]) {
    const r = sh(cmd);
    if (r.status !== 0) throw new Error(`${cmd.join(' ')}: ${r.stderr}`);
  }
}

export function removeHost(host: BenchHost): void {
  sh(['ip', 'netns', 'del', host.netns]);
  sh(['ip', 'link', 'del', host.hostIf]);
}

/**
 * `skiff agent` inside the host, logging to `<dir>/agent.log`, with the service proxy on whatever the
 * environment says. BENCH_JIT=1 runs it with V8's JIT (bin/skiff runs agents --jitless, memory over
 * speed), to show what the interpreter costs; BENCH_AGENT_ARGS adds flags.
 */
export function startHostAgent(host: BenchHost, server: BenchServer, dir: string, token: string, nodeName: string): ChildProcess {
  const log = openSync(join(dir, 'agent.log'), 'a');
  const env = { ...process.env };
  delete env.SKIFF_DISABLE_KUBE_PROXY;
  const cmd = process.env.BENCH_JIT ? [process.execPath, join(ROOT, 'dist', 'cli', 'main.js')] : [join(ROOT, 'bin', 'skiff')];
  const p = spawn('nsenter', [`--net=/var/run/netns/${host.netns}`, ...cmd, 'agent', '--server', `https://${host.hostIp}:${server.port}`,
    '--token', token, '--data-dir', dir, '--node-name', nodeName, '--node-ip', host.ip, ...(process.env.BENCH_AGENT_ARGS ?? '').split(' ').filter(Boolean)],
    { stdio: ['ignore', log, log], env });
  closeSync(log);
  return p;
}
