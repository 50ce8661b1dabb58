// `skiff hollow`: simulated nodes for tests and scale measurements (Kubernetes' kubemark). Never a
// stand-in for the real agent: the pods it "runs" have no containers.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { addFlags, COMMON_FLAGS, type FlagSpec } from './flags.js';
import { setLogLevel } from '../util/log.js';

const HOLLOW_FLAGS: FlagSpec[] = [
  { flags: '-s, --server <url>', description: 'API server to join, e.g. https://10.0.0.1:6443', envOverride: 'SKIFF_URL' },
  { flags: '-t, --token <token>', description: 'join token (K10<ca hash>::<user>:<password>)', envOverride: 'SKIFF_TOKEN' },
  { flags: '--token-file <file>', description: 'file holding the join token' },
  { flags: '--count <n>', description: 'number of nodes to simulate', default: '1' },
  { flags: '--name-prefix <prefix>', description: 'node names are <prefix><first-index..first-index+count-1>', default: 'hollow-' },
  { flags: '--first-index <n>', description: 'index of the first node (several hollow processes share one name space and address plan)', default: '0' },
  { flags: '--node-label <k=v>', description: 'label for every node (repeatable)', repeatable: true },
  { flags: '--node-taint <k=v:Effect>', description: 'taint for every node at registration (repeatable)', repeatable: true },
  { flags: '--pod-start-delay <ms>', description: 'time from a pod reaching a node to it being reported Running', default: '500' },
  { flags: '--pod-termination-delay <ms>', description: 'longest simulated termination of a deleted pod (its grace period may be shorter)', default: '200' },
  { flags: '--heartbeat-interval <seconds>', description: 'Lease renewal period', default: '10' },
  { flags: '--node-status-interval <seconds>', description: 'node status report period; the Lease is the heartbeat (the kubelet\'s nodeStatusReportFrequency, 5 min)', default: '300' },
  { flags: '--join-concurrency <n>', description: 'nodes joining at once', default: '16' },
];

export function hollowCommand(): Command {
  const cmd = new Command('hollow').description(
    'simulate nodes that join through the real flow, renew Leases and report their pods Running (for tests and scale runs); SIGUSR1 freezes/thaws all heartbeats');
  addFlags(cmd, [...COMMON_FLAGS, ...HOLLOW_FLAGS]);
  cmd.action(async (o: Record<string, any>) => {
    setLogLevel(o.logLevel);
    const token: string | undefined = o.token ?? (o.tokenFile ? readFileSync(o.tokenFile, 'utf8').trim() : undefined);
    if (!o.server) throw new Error('--server (or SKIFF_URL) is required');
    if (!token) throw new Error('--token, --token-file (or SKIFF_TOKEN) is required');
    const { parseLabel, parseTaint } = await import('../hollow/objects.js');
    const config = {
      server: String(o.server),
      token,
      count: int(o.count, '--count', 1),
      namePrefix: String(o.namePrefix),
      firstIndex: int(o.firstIndex, '--first-index', 0),
      labels: Object.fromEntries((o.nodeLabel as string[]).map(parseLabel)),
      taints: (o.nodeTaint as string[]).map(parseTaint),
      dataDir: String(o.dataDir),
      podStartDelayMs: int(o.podStartDelay, '--pod-start-delay', 0),
      terminationDelayMs: int(o.podTerminationDelay, '--pod-termination-delay', 0),
      heartbeatIntervalMs: seconds(o.heartbeatInterval, '--heartbeat-interval'),
      nodeStatusIntervalMs: seconds(o.nodeStatusInterval, '--node-status-interval'),
      joinConcurrency: int(o.joinConcurrency, '--join-concurrency', 1),
    };
    // Until the fleet exists there is nothing to stop cleanly: a signal simply ends the process.
    const early = () => process.exit(143);
    process.once('SIGTERM', early).once('SIGINT', early);
    const { runHollow } = await import('../hollow/run.js');
    const fleet = await runHollow(config);
    process.off('SIGTERM', early).off('SIGINT', early);
    process.stdout.write(`hollow: ${fleet.size} nodes ready\n`);
    const stop = () => { void fleet.stop().then(() => process.exit(0)); };
    process.once('SIGTERM', stop).once('SIGINT', stop);
    process.on('SIGUSR1', () => {
      fleet.setFrozen(!fleet.isFrozen());
      process.stdout.write(`hollow: heartbeats ${fleet.isFrozen() ? 'frozen' : 'resumed'}\n`);
    });
  });
  return cmd;
}

function int(v: string, flag: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag}: expected an integer ≥ ${min}, got ${v}`);
  return n;
}

function seconds(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: expected a positive number of seconds, got ${v}`);
  return Math.round(n * 1000);
}
