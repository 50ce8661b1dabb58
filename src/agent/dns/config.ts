// The DNS settings an administrator gives in the ConfigMap kube-system/skiff-dns, shaped as kube-dns's
// ConfigMap was: `stubDomains` (JSON: domain → [server, ...], a server being `IP` or `IP:port`),
// `upstreamNameservers` (JSON: [server, ...], used instead of the node's resolv.conf) and, for extra
// names, `hosts` in hosts-file format (`IP name [alias...]`, as CoreDNS's hosts plugin reads).
// Bad entries are skipped with a note, never fatal: a typo must not take DNS down.
import { isIP } from 'node:net';
import { canonicalName } from './names.js';

export const DNS_CONFIGMAP = { namespace: 'kube-system', name: 'skiff-dns' } as const;

export interface Upstream { host: string; port: number }

export interface DnsOverrides {
  hosts: Map<string, string[]>;
  /** Domain (canonical) → its servers. */
  stubDomains: Map<string, Upstream[]>;
  /** Replaces the resolv.conf upstreams when set. */
  upstreamNameservers?: Upstream[];
  problems: string[];
}

export function parseHostsFile(text: string, problems: string[] = []): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [i, raw] of text.split('\n').entries()) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    const [ip, ...names] = line.split(/\s+/);
    if (!isIP(ip!) || !names.length) { problems.push(`hosts line ${i + 1}: expected "IP name...", got "${raw.trim()}"`); continue; }
    for (const n of names) {
      const key = canonicalName(n);
      const list = out.get(key) ?? [];
      if (!list.includes(ip!)) list.push(ip!);
      out.set(key, list);
    }
  }
  return out;
}

/** `1.2.3.4`, `1.2.3.4:5353`, `fd00::1`, `[fd00::1]:5353` → host and port (53 by default). */
export function parseServer(s: string): Upstream | undefined {
  const t = s.trim();
  if (isIP(t)) return { host: t, port: 53 };
  const m = t.match(/^\[([^\]]+)\]:(\d+)$/) ?? t.match(/^([^:]+):(\d+)$/);
  if (!m || !isIP(m[1]!)) return undefined;
  const port = Number(m[2]);
  return port > 0 && port < 65536 ? { host: m[1]!, port } : undefined;
}

export function parseDnsConfigMap(data: Record<string, string> | undefined): DnsOverrides {
  const problems: string[] = [];
  const hosts = data?.hosts ? parseHostsFile(data.hosts, problems) : new Map<string, string[]>();
  const stubDomains = new Map<string, Upstream[]>();
  if (data?.stubDomains) {
    let parsed: unknown;
    try { parsed = JSON.parse(data.stubDomains); } catch (e) { problems.push(`stubDomains: not JSON: ${(e as Error).message}`); }
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
      for (const [domain, servers] of Object.entries(parsed as Record<string, unknown>)) {
        const list = Array.isArray(servers) ? servers.map((s) => (typeof s === 'string' ? parseServer(s) : undefined)) : [];
        const ok = list.filter((u): u is Upstream => u !== undefined);
        if (!ok.length || ok.length !== list.length) problems.push(`stubDomains["${domain}"]: expected a list of IP or IP:port`);
        if (ok.length) stubDomains.set(canonicalName(domain), ok);
      }
    } else if (parsed !== undefined) problems.push('stubDomains: expected a JSON object of domain → [server, ...]');
  }
  let upstreamNameservers: Upstream[] | undefined;
  if (data?.upstreamNameservers) {
    let parsed: unknown;
    try { parsed = JSON.parse(data.upstreamNameservers); } catch (e) { problems.push(`upstreamNameservers: not JSON: ${(e as Error).message}`); }
    if (Array.isArray(parsed)) {
      const list = parsed.map((s) => (typeof s === 'string' ? parseServer(s) : undefined));
      upstreamNameservers = list.filter((u): u is Upstream => u !== undefined);
      if (upstreamNameservers.length !== list.length) problems.push('upstreamNameservers: expected a list of IP or IP:port');
      if (!upstreamNameservers.length) upstreamNameservers = undefined;
    } else if (parsed !== undefined) problems.push('upstreamNameservers: expected a JSON list of servers');
  }
  return { hosts, stubDomains, ...(upstreamNameservers ? { upstreamNameservers } : {}), problems };
}
