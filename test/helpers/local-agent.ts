// A real node on this host for end-to-end tests: a `skiff server` and a `skiff agent` process (its own
// containerd, runc and bridge CNI, the busybox test image imported offline), with names, bridge and
// pod network unique to the run so that other suites' agents never clash with it. `stop()` removes
// everything it made (the agent, containers, mounts, pod cgroups, the bridge, the data dirs), also
// after a failure.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, REPO_ROOT, type StartOptions, type TestServer } from './cluster.js';
import { ok } from './kubectl.js';
import { writeBusyboxImage } from './images.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

/** The node's IP: the agent registers with the loopback address. */
export const LOCAL_NODE_IP = '127.0.0.1';

export interface LocalAgentOptions {
  /** Short tag for names (node `<tag>-<run>`, bridge `sk<tag><run>`, data dir `/tmp/skiff-<tag>-`). */
  tag: string;
  /** Extra `skiff server` flags (the cluster CIDR is the helper's own). */
  serverArgs?: string[];
  server?: Omit<StartOptions, 'args'>;
}

export interface LocalAgent {
  server: TestServer;
  nodeName: string;
  bridge: string;
  clusterCidr: string;
  dataDir: string;
  /** The agent process's pid. */
  pid: number;
  /** The last lines of the agent's log (for failure messages). */
  logTail(lines?: number): string;
  /** kubectl against the server; fails with kubectl's stderr. */
  k(args: string[], input?: string): Promise<string>;
  /** Polls `fn` until it returns something truthy (errors count as not yet); fails with the agent's log tail. */
  eventually<T>(fn: () => Promise<T | undefined | false>, what: string, ms?: number): Promise<T>;
  stop(): Promise<void>;
}

/** What this host lacks for a real node (empty when nothing). */
export function localAgentRequirements(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root');
  for (const bin of ['/usr/bin/containerd', '/usr/sbin/runc', '/usr/lib/cni/bridge', '/bin/busybox']) if (!existsSync(bin)) missing.push(bin);
  return missing;
}

/** Starts the server and the agent and waits for the node to be Ready. */
export async function startLocalAgent(o: LocalAgentOptions): Promise<LocalAgent> {
  const run = randomBytes(3).toString('hex');
  const nodeName = `${o.tag}-${run}`;
  const bridge = `sk${o.tag.slice(0, 4)}${run}`;
  // A pod network of its own, so routes never clash with other suites' agents on this host.
  const clusterCidr = `10.${150 + (randomBytes(1)[0]! % 40)}.0.0/16`;
  // Short: containerd's socket path must fit a unix socket address.
  const dataDir = mkdtempSync(`/tmp/skiff-${o.tag.slice(0, 6)}-`);
  let agent: ChildProcess | undefined;
  let server: TestServer | undefined;

  const logTail = (lines = 30): string => {
    try {
      return readFileSync(join(dataDir, 'agent.log'), 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no agent log)';
    }
  };
  const k = async (args: string[], input?: string) => ok(await server!.kubectl(args, { input, timeoutMs: 60_000 }));
  const eventually = async <T>(fn: () => Promise<T | undefined | false>, what: string, ms = 90_000): Promise<T> => {
    const deadline = Date.now() + ms;
    let lastErr = '';
    for (;;) {
      try {
        const v = await fn();
        if (v) return v;
      } catch (err) {
        lastErr = (err as Error).message;
      }
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${lastErr ? ` (last error: ${lastErr})` : ''}\n--- agent log tail\n${logTail()}`);
      await new Promise((r) => setTimeout(r, 250));
    }
  };
  const stop = async () => {
    // The pods' cgroups are named after their UIDs: ask the server which pods the node had.
    let podUids: string[] = [];
    if (server) {
      const r = await server.kubectl(['get', 'pods', '-A', '--field-selector', `spec.nodeName=${nodeName}`, '-o', 'jsonpath={.items[*].metadata.uid}'], { timeoutMs: 20_000 }).catch(() => undefined);
      if (r?.code === 0) podUids = r.stdout.split(/\s+/).filter(Boolean);
    }
    agent?.kill('SIGKILL');
    if (agent && agent.exitCode === null && agent.signalCode === null) await new Promise((r) => agent!.once('exit', r));
    await teardownRuntime({ dataDir, removeDataDir: true, cgroupParents: podUids.map((u) => `/kubepods/pod${u}`) });
    spawnSync('ip', ['link', 'del', bridge], { stdio: 'ignore' });
    await server?.dispose();
  };

  try {
    mkdirSync(join(dataDir, 'agent', 'images'), { recursive: true });
    writeBusyboxImage(join(dataDir, 'agent', 'images'), 'busybox.tar');
    server = await startServer({ ...o.server, args: ['--cluster-cidr', clusterCidr, ...(o.serverArgs ?? [])] });
    const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
    const log = openSync(join(dataDir, 'agent.log'), 'a');
    try {
      agent = spawn(join(REPO_ROOT, 'bin', 'skiff'), ['agent', '--server', server.url, '--token', token, '--data-dir', dataDir,
        '--node-name', nodeName, '--node-ip', LOCAL_NODE_IP, '--bridge-name', bridge], { stdio: ['ignore', log, log] });
    } finally { closeSync(log); }
    await eventually(async () => / Ready /.test(await k(['get', 'node', nodeName, '--no-headers'])), 'the node Ready');
  } catch (err) {
    await stop();
    throw err;
  }
  return { server, nodeName, bridge, clusterCidr, dataDir, pid: agent!.pid!, logTail, k, eventually, stop };
}
