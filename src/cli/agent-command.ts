import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { addFlags, AGENT_FLAGS, COMMON_FLAGS, NODE_FLAGS, ingressFlags } from './flags.js';
import { setLogLevel, logger } from '../util/log.js';

export function agentCommand(): Command {
  const cmd = new Command('agent').description('join a cluster as a node and run its pods in containerd (needs root)');
  addFlags(cmd, [...COMMON_FLAGS, ...AGENT_FLAGS, ...NODE_FLAGS]);
  cmd.action(async (o: Record<string, any>) => {
    setLogLevel(o.logLevel);
    let token: string | undefined = o.token;
    if (!token && o.tokenFile) token = readFileSync(o.tokenFile, 'utf8').trim();
    if (!o.server) throw new Error('--server (or SKIFF_URL) is required: the https://HOST:6443 address of a server');
    if (!token) throw new Error('--token (or SKIFF_TOKEN) is required: see `skiff token show` on the server');
    // Loaded only when an agent runs, so `--help` stays fast.
    const { startAgent } = await import('../agent/run.js');
    const { defaultNodeIp, defaultNodeName } = await import('../agent/node-status.js');
    const agent = await startAgent({
      server: o.server, token, dataDir: o.dataDir,
      nodeName: o.nodeName ?? defaultNodeName(), nodeIp: o.nodeIp ?? defaultNodeIp(), nodeExternalIp: o.nodeExternalIp,
      nodeLabels: o.nodeLabel, nodeTaints: o.nodeTaint, containerRuntimeEndpoint: o.containerRuntimeEndpoint,
      clusterDns: o.clusterDns, clusterDomain: o.clusterDomain, bridgeName: o.bridgeName, privateRegistry: o.privateRegistry,
      resolvConf: o.resolvConf, disableDns: Boolean(o.disableDns),
      disableKubeProxy: Boolean(o.disableKubeProxy), nodePortAddresses: o.nodeportAddresses,
      flannelIface: o.flannelIface, disableNetworkPolicy: Boolean(o.disableNetworkPolicy),
      ...ingressFlags(o),
    });
    const stop = async (signal: string) => {
      logger('agent').info({ signal }, 'stopping (containers keep running)');
      const force = setTimeout(() => process.exit(1), 10_000);
      force.unref();
      await agent.stop();
      process.exit(0);
    };
    process.once('SIGTERM', () => void stop('SIGTERM'));
    process.once('SIGINT', () => void stop('SIGINT'));
  });
  return cmd;
}
