import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { addFlags, applyDisableList, BACKUP_FLAGS, COMMON_FLAGS, ingressFlags, NODE_FLAGS, SERVER_FLAGS } from './flags.js';
import { backupConfigFrom } from './snapshot-command.js';
import type { ServerConfig } from '../server/run.js';
import { parseFlannelBackend } from '../api/agent-config.js';
import { setLogLevel } from '../util/log.js';
import { totalmem } from 'node:os';
import { resolveProfile } from '../server/profile.js';
import { parseClusterLabels } from '../fleet/labels.js';

export function serverCommand(): Command {
  const cmd = new Command('server').description('run the control plane (API server, datastore, control loops) and, unless --disable-agent, an agent');
  addFlags(cmd, [...COMMON_FLAGS, ...SERVER_FLAGS, ...NODE_FLAGS, ...BACKUP_FLAGS]);
  cmd.action(async (o: Record<string, any>) => {
    setLogLevel(o.logLevel);
    applyDisableList(o);
    let token: string | undefined = o.token;
    if (!token && o.tokenFile) token = readFileSync(o.tokenFile, 'utf8').trim();
    const profile = resolveProfile(String(o.profile), totalmem());
    const config: ServerConfig = {
      profile: profile.name,
      dataDir: o.dataDir,
      bindAddress: o.bindAddress,
      httpsListenPort: parsePort(o.httpsListenPort, '--https-listen-port'),
      advertiseAddress: o.advertiseAddress,
      tlsSan: o.tlsSan,
      token,
      writeKubeconfig: o.writeKubeconfig,
      writeKubeconfigMode: parseInt(o.writeKubeconfigMode, 8),
      clusterCidr: o.clusterCidr,
      flannelBackend: parseFlannelBackend(o.flannelBackend),
      serviceCidr: o.serviceCidr,
      serviceNodePortRange: o.serviceNodePortRange,
      clusterDns: o.clusterDns,
      clusterDomain: o.clusterDomain,
      disableAgent: Boolean(o.disableAgent),
      watchCacheSize: o.watchCacheSize === undefined ? profile.watchCacheSize : parseInt(o.watchCacheSize, 10),
      datastoreEndpoint: o.datastoreEndpoint || undefined,
      datastoreTls: o.datastoreCafile || o.datastoreCertfile || o.datastoreKeyfile
        ? { caFile: o.datastoreCafile, certFile: o.datastoreCertfile, keyFile: o.datastoreKeyfile } : undefined,
      clusterInit: Boolean(o.clusterInit),
      joinServer: o.server || undefined,
      etcdClientPort: parsePort(o.etcdClientPort, '--etcd-client-port'),
      etcdPeerPort: parsePort(o.etcdPeerPort, '--etcd-peer-port'),
      eventTtlSeconds: parseDurationSeconds(o.eventTtl, '--event-ttl'),
      disableScheduler: Boolean(o.disableScheduler),
      leaderElect: o.leaderElect !== false && String(o.leaderElect).toLowerCase() !== 'false',
      leaderElection: {
        leaseDurationMs: parseDurationSeconds(o.leaderElectLeaseDuration, '--leader-elect-lease-duration') * 1000,
        renewDeadlineMs: parseDurationSeconds(o.leaderElectRenewDeadline, '--leader-elect-renew-deadline') * 1000,
        retryPeriodMs: parseDurationSeconds(o.leaderElectRetryPeriod, '--leader-elect-retry-period') * 1000,
      },
      disableControllerManager: Boolean(o.disableControllerManager),
      disableLocalStorage: Boolean(o.disableLocalStorage),
      disableServiceLb: Boolean(o.disableServicelb),
      disableIngress: Boolean(o.disableIngress),
      disableDashboard: Boolean(o.disableDashboard),
      horizontalPodAutoscalerSyncPeriodSeconds: parseNumber(o.horizontalPodAutoscalerSyncPeriod, '--horizontal-pod-autoscaler-sync-period'),
      defaultLocalStoragePath: o.defaultLocalStoragePath,
      node: {
        nodeName: o.nodeName, nodeIp: o.nodeIp, nodeExternalIp: o.nodeExternalIp, nodeLabels: o.nodeLabel,
        nodeTaints: o.nodeTaint, containerRuntimeEndpoint: o.containerRuntimeEndpoint, bridgeName: o.bridgeName,
        privateRegistry: o.privateRegistry, resolvConf: o.resolvConf, disableDns: Boolean(o.disableDns),
        disableKubeProxy: Boolean(o.disableKubeProxy), nodePortAddresses: o.nodeportAddresses,
        flannelIface: o.flannelIface, disableNetworkPolicy: Boolean(o.disableNetworkPolicy),
        ...ingressFlags(o),
      },
      nodeMonitorGracePeriodSeconds: parseNumber(o.nodeMonitorGracePeriod, '--node-monitor-grace-period'),
      defaultNotReadyTolerationSeconds: parseNumber(o.defaultNotReadyTolerationSeconds, '--default-not-ready-toleration-seconds'),
      defaultUnreachableTolerationSeconds: parseNumber(o.defaultUnreachableTolerationSeconds, '--default-unreachable-toleration-seconds'),
      secretsEncryption: Boolean(o.secretsEncryption),
      fleet: {
        offlineGraceSeconds: parsePositive(o.fleetOfflineGrace, '--fleet-offline-grace'),
        lastSeenIntervalSeconds: parsePositive(o.fleetLastSeenInterval, '--fleet-last-seen-interval'),
        server: o.fleetServer || undefined,
        token: o.fleetToken || (o.fleetTokenFile ? readFileSync(o.fleetTokenFile, 'utf8').trim() : undefined),
        clusterName: o.clusterName || undefined,
        clusterLabels: parseClusterLabels(o.clusterLabel ?? []),
        heartbeatSeconds: parsePositive(o.fleetHeartbeatInterval, '--fleet-heartbeat-interval'),
        driftSeconds: parsePositive(o.fleetDriftInterval, '--fleet-drift-interval'),
      },
      audit: {
        logPath: o.auditLogPath, policyFile: o.auditPolicyFile,
        maxAgeDays: parseNumber(o.auditLogMaxage, '--audit-log-maxage'),
        maxBackups: parseNumber(o.auditLogMaxbackup, '--audit-log-maxbackup'),
        maxSizeMb: parseNumber(o.auditLogMaxsize, '--audit-log-maxsize'),
      },
      backups: await backupConfigFrom(o),
    };
    if (Number.isNaN(config.writeKubeconfigMode)) throw new Error(`--write-kubeconfig-mode: not an octal mode: ${o.writeKubeconfigMode}`);
    // Loaded only when the server runs, so `--help` and other commands start fast.
    const { runServer } = await import('../server/run.js');
    await runServer(config);
  });
  return cmd;
}

function parsePositive(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${flag}: not a positive number of seconds: ${v}`);
  return n;
}

function parseNumber(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${flag}: not a non-negative number: ${v}`);
  return n;
}

/** Go's duration syntax (`1h`, `30m`, `1h0m0s`, `90s`, `500ms`), as Kubernetes' duration flags take. */
export function parseDurationSeconds(v: string, flag: string): number {
  const units: Record<string, number> = { h: 3600, m: 60, s: 1, ms: 0.001 };
  const text = String(v).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const re = /(\d+(?:\.\d+)?)(ms|h|m|s)/gy;
  let total = 0;
  let end = 0;
  for (let m; (m = re.exec(text)); end = re.lastIndex) total += Number(m[1]) * units[m[2]];
  if (!text || end !== text.length) throw new Error(`${flag}: not a duration (e.g. 1h, 30m, 90s): ${v}`);
  return total;
}

function parsePort(v: string, flag: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new Error(`${flag}: not a port: ${v}`);
  return n;
}
