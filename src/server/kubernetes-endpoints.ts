// The endpoints of the `kubernetes` Service in `default`: every live API server, as kube-apiserver's
// "lease" endpoint reconciler keeps them (--endpoint-reconciler-type=lease, the default):
//   - each server keeps an identity Lease `apiserver-<hash>` in kube-system, labelled
//     apiserver.kubernetes.io/identity=kube-apiserver (kube-apiserver's APIServerIdentity Lease,
//     renewed every 10 s, 3600 s duration, garbage-collected by the others once expired); the address
//     clients reach it at is in the annotation skiff.io/endpoint (`ip:port`), which kube-apiserver
//     keeps in its separate TTL'd masterleases keys;
//   - every 10 s each server renews its Lease and writes the Endpoints `kubernetes` as the addresses
//     of the Leases renewed within the last 15 s (kube-apiserver's reconcile interval and TTL).
//     "Renewed" is timed on this server's clock from when it saw the Lease change, so a skewed clock
//     elsewhere cannot keep a dead server listed or drop a live one;
//   - a server shutting down deletes its Lease and removes itself at once.
// All servers compute the same set from the same Leases, and every write is a compare-and-swap, so
// concurrent reconcilers converge. Addresses are grouped into one subset per port (servers on one host
// with their own ports); the endpoints controller mirrors the Endpoints into the EndpointSlice
// `kubernetes`. Agents read these endpoints to find every server (agent failover).
import { createHash, randomUUID } from 'node:crypto';
import type { KObject } from '../api/object.js';
import { Resources, isAlreadyExists, isConflict, isNotFound, type ApiClient } from '../client/types.js';
import { microTime } from '../util/time.js';
import { logger } from '../util/log.js';

const log = logger('apiserver-endpoints');

export const APISERVER_IDENTITY_LABEL = 'apiserver.kubernetes.io/identity';
export const APISERVER_ENDPOINT_ANNOTATION = 'skiff.io/endpoint';
const NAMESPACE = 'kube-system';
/** kube-apiserver's DefaultEndpointReconcilerInterval and DefaultEndpointReconcilerTTL. */
export const ENDPOINT_RECONCILE_INTERVAL_MS = 10_000;
export const ENDPOINT_TTL_MS = 15_000;
/** kube-apiserver's identity Lease duration (an expired one is deleted by the other servers). */
const IDENTITY_LEASE_SECONDS = 3600;

export interface ApiServerAddress {
  ip: string;
  port: number;
}

/** The Endpoints `default/kubernetes` listing `servers`, one subset per port, addresses sorted. */
export function kubernetesEndpoints(servers: ApiServerAddress[]): KObject {
  const byPort = new Map<number, Set<string>>();
  for (const s of servers) byPort.set(s.port, (byPort.get(s.port) ?? new Set()).add(s.ip));
  return {
    apiVersion: 'v1', kind: 'Endpoints',
    metadata: { name: 'kubernetes', namespace: 'default', labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } },
    subsets: [...byPort].sort(([a], [b]) => a - b).map(([port, ips]) => ({
      addresses: [...ips].sort().map((ip) => ({ ip })), ports: [{ name: 'https', port, protocol: 'TCP' }],
    })),
  } as KObject;
}

/** `apiserver-<26 base32 characters of sha256(id)>`, kube-apiserver's identity Lease name form. */
export function apiServerLeaseName(id: string): string {
  const digest = createHash('sha256').update(id).digest();
  const alphabet = 'abcdefghijklmnopqrstuvwxyz234567';
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of digest.subarray(0, 16)) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) { out += alphabet[(value >>> (bits - 5)) & 31]; bits -= 5; }
  }
  if (bits > 0) out += alphabet[(value << (5 - bits)) & 31];
  return `apiserver-${out}`;
}

export interface ApiServerEndpointsOptions {
  client: ApiClient;
  /** This server's stable id (its Lease name derives from it). */
  serverId: string;
  hostname: string;
  address: ApiServerAddress;
  intervalMs?: number;
  ttlMs?: number;
}

export interface ApiServerEndpoints {
  /** One pass now: renew this server's Lease and write the endpoints. */
  reconcile(): Promise<void>;
  /** Stops; deletes this server's Lease and takes it out of the endpoints (best effort). */
  stop(): Promise<void>;
}

type Lease = KObject & { spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number } };

const endpointOf = (l: Lease): ApiServerAddress | undefined => {
  const m = /^(.*):(\d+)$/.exec(l.metadata.annotations?.[APISERVER_ENDPOINT_ANNOTATION] ?? '');
  return m ? { ip: m[1]!.replace(/^\[|\]$/g, ''), port: Number(m[2]) } : undefined;
};

export function startApiServerEndpoints(opts: ApiServerEndpointsOptions): ApiServerEndpoints {
  const { client } = opts;
  const interval = opts.intervalMs ?? ENDPOINT_RECONCILE_INTERVAL_MS;
  const ttl = opts.ttlMs ?? ENDPOINT_TTL_MS;
  const leaseName = apiServerLeaseName(opts.serverId);
  const holder = `kube-apiserver-${leaseName.slice('apiserver-'.length)}_${randomUUID()}`;
  const endpoint = `${opts.address.ip.includes(':') ? `[${opts.address.ip}]` : opts.address.ip}:${opts.address.port}`;
  /** When each Lease was last seen to change, on this server's clock. */
  const seen = new Map<string, { renewTime?: string; at: number }>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<void> = Promise.resolve();

  const renewOwn = async (): Promise<void> => {
    const now = microTime();
    const cur = await client.get<Lease>(Resources.leases, NAMESPACE, leaseName);
    const metadata = {
      name: leaseName, namespace: NAMESPACE,
      labels: { [APISERVER_IDENTITY_LABEL]: 'kube-apiserver', 'kubernetes.io/hostname': opts.hostname },
      annotations: { [APISERVER_ENDPOINT_ANNOTATION]: endpoint },
    };
    if (!cur) {
      await client.create(Resources.leases, NAMESPACE, {
        apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata,
        spec: { holderIdentity: holder, leaseDurationSeconds: IDENTITY_LEASE_SECONDS, acquireTime: now, renewTime: now },
      } as KObject).catch((err) => { if (!isAlreadyExists(err)) throw err; });
      return;
    }
    await client.update(Resources.leases, NAMESPACE, {
      ...cur,
      metadata: { ...cur.metadata, labels: { ...cur.metadata.labels, ...metadata.labels }, annotations: { ...cur.metadata.annotations, ...metadata.annotations } },
      spec: { ...cur.spec, holderIdentity: holder, leaseDurationSeconds: IDENTITY_LEASE_SECONDS, renewTime: now },
    } as KObject);
  };

  /** The addresses of the Leases renewed within the TTL (without this server's own when leaving). */
  const liveServers = async (includeSelf: boolean): Promise<ApiServerAddress[]> => {
    const { items } = await client.list<Lease>(Resources.leases, NAMESPACE, { labelSelector: `${APISERVER_IDENTITY_LABEL}=kube-apiserver` });
    const now = Date.now();
    const live: ApiServerAddress[] = [];
    const names = new Set<string>();
    for (const l of items) {
      const name = l.metadata.name!;
      names.add(name);
      const renewTime = l.spec?.renewTime;
      const prev = seen.get(name);
      // First sight: trust the Lease's own time (never in the future); afterwards, only local observation.
      if (!prev) seen.set(name, { renewTime, at: Math.min(now, renewTime ? Date.parse(renewTime) || 0 : 0) });
      else if (prev.renewTime !== renewTime) seen.set(name, { renewTime, at: now });
      const self = name === leaseName;
      if (self ? !includeSelf : now - seen.get(name)!.at > ttl) {
        // Expired identity Leases are deleted, as kube-apiserver's apiserver-lease garbage collector does.
        const renewed = renewTime ? Date.parse(renewTime) : 0;
        if (!self && now - renewed > (l.spec?.leaseDurationSeconds ?? IDENTITY_LEASE_SECONDS) * 1000) {
          await client.delete(Resources.leases, NAMESPACE, name, { preconditions: { resourceVersion: l.metadata.resourceVersion! } }).catch(() => undefined);
        }
        continue;
      }
      const addr = endpointOf(l);
      if (addr) live.push(addr);
    }
    for (const name of seen.keys()) if (!names.has(name)) seen.delete(name);
    if (includeSelf && !names.has(leaseName)) live.push(opts.address);
    return live;
  };

  const writeEndpoints = async (servers: ApiServerAddress[]): Promise<void> => {
    // As kube-apiserver: never erase every address (the last server leaving stays listed).
    if (servers.length === 0) return;
    const desired = kubernetesEndpoints(servers);
    const cur = await client.get(Resources.endpoints, 'default', 'kubernetes');
    if (!cur) {
      await client.create(Resources.endpoints, 'default', desired).catch((err) => { if (!isAlreadyExists(err)) throw err; });
      return;
    }
    if (JSON.stringify((cur as { subsets?: unknown }).subsets ?? []) === JSON.stringify((desired as { subsets?: unknown }).subsets)) return;
    await client.update(Resources.endpoints, 'default', { ...cur, subsets: (desired as { subsets?: unknown }).subsets } as KObject);
    log.info({ servers: servers.map((s) => `${s.ip}:${s.port}`).sort() }, 'kubernetes endpoints updated');
  };

  const reconcile = async (): Promise<void> => {
    await renewOwn();
    await writeEndpoints(await liveServers(true));
  };

  const tick = (): void => {
    pass = reconcile().catch((err: unknown) => {
      // A conflict is another server's concurrent write of the same set; the next pass sees it.
      if (!isConflict(err) && !isNotFound(err)) log.warn({ err: err instanceof Error ? err.message : String(err) }, 'kubernetes endpoints not reconciled');
    }).finally(() => {
      if (!stopped) timer = setTimeout(tick, interval);
    });
  };
  tick();

  return {
    reconcile,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await pass;
      try {
        await client.delete(Resources.leases, NAMESPACE, leaseName).catch((err) => { if (!isNotFound(err)) throw err; });
        await writeEndpoints(await liveServers(false));
      } catch (err) {
        log.debug({ err: err instanceof Error ? err.message : String(err) }, 'leaving the kubernetes endpoints failed');
      }
    },
  };
}
