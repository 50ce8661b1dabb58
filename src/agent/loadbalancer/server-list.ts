// The servers an agent may talk to: the one it joined with, and every API server address the
// `kubernetes` Endpoints in `default` list (kube-apiserver's lease reconciler keeps them to the live
// servers). The list is kept under the agent's data dir so an agent restarted while its own server is
// down still finds the others, as k3s keeps `etc/k3s-agent-load-balancer.json`.
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { isIP } from 'node:net';

/** `host:port` of one server (IPv6 in brackets), the unit the balancer dials. */
export type ServerAddress = string;

export interface StoredServerList {
  /** The `--server` URL the agent was started with. */
  serverUrl: string;
  /** Every address known the last time the list changed, the joined server's included. */
  serverAddresses: ServerAddress[];
}

export function serverListPath(dataDir: string): string {
  return join(dataDir, 'agent', 'etc', 'skiff-agent-load-balancer.json');
}

/** `https://host:6443/` → `host:6443` (port 443 when the URL has none). */
export function addressOfUrl(url: string): ServerAddress {
  const u = new URL(url);
  return `${u.hostname}:${u.port || (u.protocol === 'http:' ? '80' : '443')}`;
}

export function joinHostPort(host: string, port: number): ServerAddress {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}

/** `host:port` → its parts, or undefined when it is not one. */
export function splitAddress(a: ServerAddress): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(a);
  if (!m) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  return { host: (m[1] ?? m[2])!, port };
}

/**
 * The addresses in a `kubernetes` Endpoints object: every ready address with the subset's `https`
 * port (or its only port). Servers on one host with their own ports are separate subsets.
 */
export function addressesFromEndpoints(ep: unknown): ServerAddress[] {
  const out: ServerAddress[] = [];
  const subsets = (ep as { subsets?: unknown })?.subsets;
  if (!Array.isArray(subsets)) return out;
  for (const s of subsets) {
    const ports: any[] = Array.isArray(s?.ports) ? s.ports : [];
    const port = (ports.find((p) => p?.name === 'https') ?? (ports.length === 1 ? ports[0] : undefined))?.port;
    if (!Number.isInteger(port) || port < 1 || port > 65535) continue;
    for (const a of Array.isArray(s?.addresses) ? s.addresses : []) {
      if (typeof a?.ip === 'string' && isIP(a.ip)) out.push(joinHostPort(a.ip, port));
    }
  }
  return out;
}

/** The joined server first, then the others in a stable order, without duplicates. */
export function mergeAddresses(joined: ServerAddress, others: Iterable<ServerAddress>): ServerAddress[] {
  const rest = [...new Set(others)].filter((a) => a !== joined).sort();
  return [joined, ...rest];
}

/** The stored list when it was written for the same `--server`; else just that server. */
export function loadServerList(dataDir: string, serverUrl: string): ServerAddress[] {
  const joined = addressOfUrl(serverUrl);
  try {
    const stored = JSON.parse(readFileSync(serverListPath(dataDir), 'utf8')) as Partial<StoredServerList>;
    // A list learnt from another cluster must not send this agent's token and certificates there.
    if (stored.serverUrl !== serverUrl || !Array.isArray(stored.serverAddresses)) return [joined];
    return mergeAddresses(joined, stored.serverAddresses.filter((a) => typeof a === 'string' && splitAddress(a)));
  } catch {
    return [joined];
  }
}

export function saveServerList(dataDir: string, serverUrl: string, addresses: ServerAddress[]): void {
  const path = serverListPath(dataDir);
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  const body: StoredServerList = { serverUrl, serverAddresses: addresses };
  writeFileSync(`${path}.tmp`, JSON.stringify(body, null, 2) + '\n', { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}
