// The pod sandbox as CRI wants it: hostname, DNS (the kubelet's dnsPolicy rules), port mappings for
// hostPorts, host namespaces, the cgroup parent, and labels that let a restarted agent find it again.
import { readFileSync } from 'node:fs';
import type { NamespaceOption, PodSandboxConfig, PortMapping } from '../runtime/cri-types.js';
import { podLabels } from './labels.js';
import type { Obj } from './pod-api.js';

export interface DnsSettings {
  /** The cluster DNS service IP; empty when the cluster has none. */
  clusterDns: string;
  clusterDomain: string;
  /** The host's resolver config, for dnsPolicy Default (and host-network ClusterFirst). */
  resolvConf?: string;
}

export interface DnsConfig { servers: string[]; searches: string[]; options: string[] }

/** The kubelet's limits since Kubernetes 1.28 (glibc 2.26+ reads that many): 32 search domains of at
 *  most 2048 characters together, and 3 nameservers (glibc's MAXNS). */
const MAX_SEARCHES = 32;
const MAX_SEARCH_CHARS = 2048;
const MAX_NAMESERVERS = 3;

export function parseResolvConf(text: string): DnsConfig {
  const out: DnsConfig = { servers: [], searches: [], options: [] };
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...rest] = line.split(/\s+/);
    if (key === 'nameserver' && rest[0]) out.servers.push(rest[0]);
    else if (key === 'search' || key === 'domain') out.searches = rest;
    else if (key === 'options') out.options.push(...rest);
  }
  return out;
}

function hostDns(path: string | undefined): DnsConfig {
  try {
    return parseResolvConf(readFileSync(path ?? '/etc/resolv.conf', 'utf8'));
  } catch {
    return { servers: [], searches: [], options: [] };
  }
}

/** The pod's resolver settings under its dnsPolicy, with spec.dnsConfig merged in. */
export function podDnsConfig(pod: Obj, s: DnsSettings): DnsConfig {
  const spec = pod.spec;
  let policy: string = spec.dnsPolicy ?? 'ClusterFirst';
  // A host-network pod only uses cluster DNS when it asks for it explicitly.
  if (policy === 'ClusterFirst' && spec.hostNetwork) policy = 'Default';
  if (policy === 'ClusterFirstWithHostNet') policy = 'ClusterFirst';
  if (policy === 'ClusterFirst' && !s.clusterDns) policy = 'Default';
  let cfg: DnsConfig;
  if (policy === 'None') cfg = { servers: [], searches: [], options: [] };
  else if (policy === 'Default') cfg = hostDns(s.resolvConf);
  else {
    const host = hostDns(s.resolvConf);
    const d = s.clusterDomain;
    cfg = {
      servers: [s.clusterDns],
      searches: [`${pod.metadata.namespace}.svc.${d}`, `svc.${d}`, d, ...host.searches],
      options: ['ndots:5'],
    };
  }
  const extra = spec.dnsConfig ?? {};
  cfg.servers = [...new Set([...cfg.servers, ...(extra.nameservers ?? [])])].slice(0, MAX_NAMESERVERS);
  cfg.searches = limitSearches([...new Set([...cfg.searches, ...(extra.searches ?? [])])]);
  // Options merge by name; the pod's value wins.
  const opts = new Map<string, string>();
  for (const o of cfg.options) opts.set(o.split(':')[0]!, o);
  for (const o of extra.options ?? []) opts.set(o.name, o.value !== undefined && o.value !== null ? `${o.name}:${o.value}` : o.name);
  cfg.options = [...opts.values()];
  return cfg;
}

/** The kubelet drops a lone "." and cuts the list at 32 domains or 2048 characters. */
function limitSearches(all: string[]): string[] {
  const out: string[] = [];
  let chars = 0;
  for (const d of all) {
    const name = d.replace(/\.$/, '');
    if (!name) continue;
    if (out.length === MAX_SEARCHES || chars + name.length + (out.length ? 1 : 0) > MAX_SEARCH_CHARS) break;
    chars += name.length + (out.length ? 1 : 0);
    out.push(name);
  }
  return out;
}

/** The first line the kubelet writes in the /etc/hosts it manages (tools look for it). */
const MANAGED_HOSTS_HEADER = '# Kubernetes-managed hosts file.';

/**
 * The pod's /etc/hosts as the kubelet writes it: localhost lines, then each pod IP with the pod's
 * hostname (as `hostname.subdomain.ns.svc.<domain> hostname` when the pod has a subdomain, which is
 * how a StatefulSet pod knows its own FQDN), then spec.hostAliases. A host-network pod gets the host's
 * file plus its hostAliases.
 */
export function podHostsFile(pod: Obj, podIPs: string[], clusterDomain: string, hostHosts?: string): string {
  const spec = pod.spec ?? {};
  let out: string;
  if (spec.hostNetwork) {
    out = `${MANAGED_HOSTS_HEADER.slice(0, -1)} (host network).\n${hostHosts ?? ''}`;
    if (!out.endsWith('\n')) out += '\n';
  } else {
    out = [
      MANAGED_HOSTS_HEADER,
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::0\tip6-localnet',
      'fe00::0\tip6-mcastprefix',
      'fe00::1\tip6-allnodes',
      'fe00::2\tip6-allrouters',
    ].join('\n') + '\n';
    const host = podHostname(pod);
    const fqdn = spec.subdomain ? `${host}.${spec.subdomain}.${pod.metadata.namespace}.svc.${clusterDomain}` : undefined;
    for (const ip of podIPs) out += fqdn ? `${ip}\t${fqdn}\t${host}\n` : `${ip}\t${host}\n`;
  }
  const aliases: Obj[] = spec.hostAliases ?? [];
  if (aliases.length) {
    out += '\n# Entries added by HostAliases.\n';
    for (const a of aliases) if (a.ip && a.hostnames?.length) out += `${a.ip}\t${a.hostnames.join('\t')}\n`;
  }
  return out;
}

export function namespaceOptions(spec: Obj): NamespaceOption {
  return {
    network: spec.hostNetwork ? 'NODE' : 'POD',
    pid: spec.hostPID ? 'NODE' : spec.shareProcessNamespace ? 'POD' : 'CONTAINER',
    ipc: spec.hostIPC ? 'NODE' : 'POD',
  };
}

export function portMappings(spec: Obj): PortMapping[] {
  const out: PortMapping[] = [];
  for (const c of [...(spec.initContainers ?? []), ...(spec.containers ?? [])]) {
    for (const p of c.ports ?? []) {
      if (!p.hostPort) continue;
      out.push({ protocol: p.protocol ?? 'TCP', containerPort: p.containerPort, hostPort: p.hostPort, ...(p.hostIP ? { hostIp: p.hostIP } : {}) });
    }
  }
  return out;
}

/** The pod's hostname: spec.hostname, else its name, cut to a DNS label's 63 characters. */
export function podHostname(pod: Obj): string {
  return String(pod.spec.hostname || pod.metadata.name).slice(0, 63).replace(/[-.]+$/, '');
}

export interface SandboxSettings extends DnsSettings {
  nodeName: string;
  logDirectory: string;
  cgroupParent: string;
  attempt: number;
}

export function sandboxConfig(pod: Obj, s: SandboxSettings): PodSandboxConfig {
  const spec = pod.spec;
  const psc = spec.securityContext ?? {};
  const dns = podDnsConfig(pod, s);
  const all = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  return {
    metadata: { name: pod.metadata.name!, namespace: pod.metadata.namespace!, uid: pod.metadata.uid!, attempt: s.attempt },
    // With the host's network the host's name is the pod's too; containerd then keeps the host's.
    ...(spec.hostNetwork ? {} : { hostname: podHostname(pod) }),
    logDirectory: s.logDirectory,
    dnsConfig: dns,
    portMappings: portMappings(spec),
    labels: { ...(pod.metadata.labels ?? {}), ...podLabels(pod, s.nodeName) },
    annotations: { ...(pod.metadata.annotations ?? {}) },
    linux: {
      cgroupParent: s.cgroupParent,
      securityContext: {
        namespaceOptions: namespaceOptions(spec),
        ...(psc.runAsUser !== undefined ? { runAsUser: { value: psc.runAsUser } } : {}),
        ...(psc.runAsGroup !== undefined ? { runAsGroup: { value: psc.runAsGroup } } : {}),
        supplementalGroups: [...(psc.supplementalGroups ?? []), ...(psc.fsGroup !== undefined ? [psc.fsGroup] : [])],
        // The sandbox is privileged when any container is: its namespaces must allow what they do.
        privileged: all.some((c: Obj) => c.securityContext?.privileged === true),
      },
      sysctls: Object.fromEntries((psc.sysctls ?? []).map((x: Obj) => [x.name, String(x.value)])),
    },
  };
}
