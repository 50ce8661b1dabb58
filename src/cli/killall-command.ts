import { Command } from 'commander';
import { spawnSync } from 'node:child_process';
import { addFlags, COMMON_FLAGS } from './flags.js';

// `skiff killall` (k3s-killall.sh): stops every container, containerd and mount of a data dir. The
// server and agent processes are stopped by their service manager (or `kill`); containers outlive them
// on purpose, so this is how a node is really emptied.
export function killallCommand(): Command {
  const cmd = new Command('killall').description('stop containerd, all containers and mounts of a data dir (containers otherwise outlive the agent)');
  addFlags(cmd, [...COMMON_FLAGS, { flags: '--bridge-name <name>', description: 'pod network bridge to delete', default: 'skiff0' }]);
  cmd.action(async (o: Record<string, any>) => {
    const { teardownRuntime } = await import('../agent/runtime/teardown.js');
    await teardownRuntime({ dataDir: o.dataDir, cgroupParents: ['/kubepods'] });
    spawnSync('ip', ['link', 'del', o.bridgeName], { stdio: 'ignore' });
    process.stdout.write(`stopped containers and containerd of ${o.dataDir}\n`);
  });
  return cmd;
}
