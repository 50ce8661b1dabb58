// The real node as the agent registers it: this host's labels, capacity, addresses and nodeInfo.
import { isDeepStrictEqual } from 'node:util';
import { cpus, hostname, networkInterfaces, release, totalmem } from 'node:os';
import { readFileSync, statfsSync } from 'node:fs';
import { nodeVersionString } from '../release-version.js';
import type { KObject } from '../api/object.js';
import { goArch, nodeConditions, type Taint } from './node-objects.js';
import { rfc3339 } from '../util/time.js';

export interface NodeIdentity {
  name: string;
  internalIp: string;
  externalIp?: string;
  labels: Record<string, string>;
  taints: Taint[];
  dataDir: string;
  runtimeVersion: string;         // e.g. containerd://1.6.20
  /** Set while the node cannot run pods yet (runtime starting): the Ready condition's message. */
  notReady?: string;
}

function readTrim(path: string): string {
  try { return readFileSync(path, 'utf8').trim(); } catch { return ''; }
}

function osImage(): string {
  const m = /^PRETTY_NAME="?([^"\n]*)"?/m.exec(readTrim('/etc/os-release'));
  return m?.[1] ?? 'Linux';
}

/** The kubelet's capacity: all CPUs and memory, 110 pods, the data dir's filesystem. */
export function hostCapacity(dataDir: string): Record<string, string> {
  let disk = 0;
  try { const fs = statfsSync(dataDir); disk = fs.blocks * fs.bsize; } catch { /* not created yet */ }
  return {
    cpu: String(cpus().length),
    memory: `${Math.floor(totalmem() / 1024)}Ki`,
    pods: '110',
    'ephemeral-storage': `${Math.floor(disk / 1024)}Ki`,
  };
}

/** The first non-internal IPv4 address (what --node-ip defaults to). */
export function defaultNodeIp(): string {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (!a.internal && a.family === 'IPv4') return a.address;
  }
  return '127.0.0.1';
}

export function defaultNodeName(): string {
  return hostname().toLowerCase();
}

export function nodeObject(id: NodeIdentity, readySince: Date, now = new Date()): KObject {
  const capacity = hostCapacity(id.dataDir);
  const t = rfc3339(now);
  return {
    apiVersion: 'v1', kind: 'Node',
    metadata: {
      name: id.name,
      labels: {
        'kubernetes.io/hostname': id.name, 'kubernetes.io/os': 'linux', 'kubernetes.io/arch': goArch(),
        'beta.kubernetes.io/os': 'linux', 'beta.kubernetes.io/arch': goArch(),
        ...id.labels,
      },
      annotations: { 'node.alpha.kubernetes.io/ttl': '0' },
    },
    spec: id.taints.length ? { taints: id.taints.map((x) => ({ ...x })) } : {},
    status: nodeStatus(id, capacity, readySince, t),
  } as KObject;
}

export function nodeStatus(id: NodeIdentity, capacity: Record<string, string>, readySince: Date, now: string): Record<string, unknown> {
  return {
    capacity, allocatable: capacity,
    conditions: nodeConditions(now, rfc3339(readySince), id.notReady),
    addresses: [
      { type: 'InternalIP', address: id.internalIp },
      ...(id.externalIp ? [{ type: 'ExternalIP', address: id.externalIp }] : []),
      { type: 'Hostname', address: id.name },
    ],
    daemonEndpoints: { kubeletEndpoint: { Port: 10250 } },
    nodeInfo: {
      machineID: readTrim('/etc/machine-id'),
      systemUUID: readTrim('/sys/class/dmi/id/product_uuid') || readTrim('/etc/machine-id'),
      bootID: readTrim('/proc/sys/kernel/random/boot_id'),
      kernelVersion: release(),
      osImage: osImage(),
      containerRuntimeVersion: id.runtimeVersion,
      kubeletVersion: nodeVersionString(),
      kubeProxyVersion: '',
      operatingSystem: 'linux',
      architecture: goArch(),
    },
  };
}

/** Whether the server's node status differs from ours in anything but heartbeat times (key order aside). */
export function statusDiffers(server: Record<string, any> | undefined, ours: Record<string, any>): boolean {
  const comparable = (st: Record<string, any> | undefined) => Object.keys(ours).map((k) => k !== 'conditions' ? st?.[k]
    : [...(st?.conditions ?? [])].map(({ lastHeartbeatTime: _, ...c }: Record<string, unknown>) => c)
      .sort((a, b) => String(a.type).localeCompare(String(b.type))));
  return !isDeepStrictEqual(comparable(server), comparable(ours));
}
