// `skiff hollow-clusters`: simulated fleet sites for tests and scale runs (see src/fleet/hollow-clusters.ts).
import { Command } from 'commander';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { addFlags, COMMON_FLAGS } from './flags.js';
import { setLogLevel } from '../util/log.js';

export function hollowClustersCommand(): Command {
  const cmd = new Command('hollow-clusters').description(
    'simulate fleet sites that register with a manager, hold their tunnel and heartbeat (for tests and scale runs); SIGUSR2 prints traffic figures');
  addFlags(cmd, [
    ...COMMON_FLAGS,
    { flags: '-s, --server <url>', description: 'the fleet manager, e.g. https://10.0.0.1:6443', envOverride: 'SKIFF_FLEET_SERVER' },
    { flags: '-t, --token <token>', description: 'registration token (`skiff fleet token` on the manager)', envOverride: 'SKIFF_FLEET_TOKEN' },
    { flags: '--token-file <file>', description: 'file holding the registration token' },
    { flags: '--count <n>', description: 'number of sites', default: '1' },
    { flags: '--name-prefix <prefix>', description: 'cluster names are <prefix><0..count-1>', default: 'hollow-cluster-' },
    { flags: '--cluster-label <k=v>', description: 'label for every site (repeatable)', repeatable: true },
    { flags: '--nodes <n>', description: 'Ready nodes each site reports', default: '3' },
    { flags: '--heartbeat-interval <seconds>', description: 'heartbeat period', default: '15' },
    { flags: '--concurrency <n>', description: 'sites registering at once', default: '32' },
  ]);
  cmd.action(async (o: Record<string, any>) => {
    setLogLevel(o.logLevel);
    const token: string | undefined = o.token ?? (o.tokenFile ? readFileSync(o.tokenFile, 'utf8').trim() : undefined);
    if (!o.server) throw new Error('--server is required');
    if (!token) throw new Error('--token or --token-file is required');
    const { parseClusterLabels } = await import('../fleet/labels.js');
    const { HollowClusters } = await import('../fleet/hollow-clusters.js');
    const count = positive(o.count, '--count');
    const fleet = new HollowClusters({
      server: String(o.server), token, count, namePrefix: String(o.namePrefix), labels: parseClusterLabels(o.clusterLabel),
      nodes: positive(o.nodes, '--nodes', 0), heartbeatMs: Math.round(Number(o.heartbeatInterval) * 1000),
      dataDir: join(String(o.dataDir), 'hollow-clusters'), concurrency: positive(o.concurrency, '--concurrency'),
    });
    const early = () => process.exit(143);
    process.once('SIGTERM', early).once('SIGINT', early);
    await fleet.start();
    process.off('SIGTERM', early).off('SIGINT', early);
    process.stdout.write(`hollow-clusters: ${fleet.connected()} sites connected\n`);
    const stop = () => { fleet.stop(); process.exit(0); };
    process.once('SIGTERM', stop).once('SIGINT', stop);
    process.on('SIGUSR2', () => {
      const s = fleet.stats();
      process.stdout.write(`hollow-clusters: ${fleet.connected()} connected, ${s.heartbeats} heartbeats, ${s.written} bytes written, ${s.read} bytes read\n`);
    });
  });
  return cmd;
}

function positive(v: string, flag: string, min = 1): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`${flag}: expected an integer ≥ ${min}, got ${v}`);
  return n;
}
