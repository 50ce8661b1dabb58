import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { addFlags, COMMON_FLAGS, NODE_FLAGS, SERVER_FLAGS } from './flags.js';
import type { ServerConfig } from '../server/run.js';
import { setLogLevel } from '../util/log.js';

export function serverCommand(): Command {
  const cmd = new Command('server').description('run the control plane (API server, datastore, control loops) and, unless --disable-agent, an agent');
  addFlags(cmd, [...COMMON_FLAGS, ...SERVER_FLAGS, ...NODE_FLAGS]);
  cmd.action(async (o: Record<string, any>) => {
    setLogLevel(o.logLevel);
    let token: string | undefined = o.token;
    if (!token && o.tokenFile) token = readFileSync(o.tokenFile, 'utf8').trim();
    const config: ServerConfig = {
      dataDir: o.dataDir,
      bindAddress: o.bindAddress,
      httpsListenPort: parsePort(o.httpsListenPort, '--https-listen-port'),
      advertiseAddress: o.advertiseAddress,
      tlsSan: o.tlsSan,
      token,
      writeKubeconfig: o.writeKubeconfig,
      writeKubeconfigMode: parseInt(o.writeKubeconfigMode, 8),
      clusterCidr: o.clusterCidr,
      serviceCidr: o.serviceCidr,
      serviceNodePortRange: o.serviceNodePortRange,
      clusterDns: o.clusterDns,
      clusterDomain: o.clusterDomain,
      disableAgent: Boolean(o.disableAgent),
      watchCacheSize: parseInt(o.watchCacheSize, 10),
      disableScheduler: Boolean(o.disableScheduler),
      disableControllerManager: Boolean(o.disableControllerManager),
      disableLocalStorage: Boolean(o.disableLocalStorage),
      disableDashboard: Boolean(o.disableDashboard),
      horizontalPodAutoscalerSyncPeriodSeconds: parseNumber(o.horizontalPodAutoscalerSyncPeriod, '--horizontal-pod-autoscaler-sync-period'),
      defaultLocalStoragePath: o.defaultLocalStoragePath,
      node: {
        nodeName: o.nodeName, nodeIp: o.nodeIp, nodeExternalIp: o.nodeExternalIp, nodeLabels: o.nodeLabel,
        nodeTaints: o.nodeTaint, containerRuntimeEndpoint: o.containerRuntimeEndpoint, bridgeName: o.bridgeName,
        privateRegistry: o.privateRegistry, resolvConf: o.resolvConf, disableDns: Boolean(o.disableDns),
      },
      nodeMonitorGracePeriodSeconds: parseNumber(o.nodeMonitorGracePeriod, '--node-monitor-grace-period'),
      defaultNotReadyTolerationSeconds: parseNumber(o.defaultNotReadyTolerationSeconds, '--default-not-ready-toleration-seconds'),
      defaultUnreachableTolerationSeconds: parseNumber(o.defaultUnreachableTolerationSeconds, '--default-unreachable-toleration-seconds'),
    };
    if (Number.isNaN(config.writeKubeconfigMode)) throw new Error(`--write-kubeconfig-mode: not an octal mode: ${o.writeKubeconfigMode}`);
    // Loaded only when the server runs, so `--help` and other commands start fast.
    const { runServer } = await import('../server/run.js');
    await runServer(config);
  });
  return cmd;
}

function parseNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag}: not a non-negative number: ${v}`);
  return n;
}

function parsePort(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${flag}: not a port: ${v}`);
  return n;
}
