// The host-gw backend, as flannel's: no encapsulation and no device of its own. Every other node's
// pod CIDR is a plain route via that node's IP on the underlay interface, so pod traffic crosses the
// LAN as ordinary routed packets at the full MTU. That only works when every node is on-link (one L2
// segment): a peer behind a router gets no route, and a clear error says why.
// The routes carry their own protocol number, so the agent finds its own after a restart (and a
// switch to another backend removes them) without remembering anything but its namespace.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { KObject } from '../../../api/object.js';
import { logger } from '../../../util/log.js';
import type { Underlay } from '../underlay.js';
import { ANNOTATIONS, endpointOf, type PodNetworkBackend } from './backend.js';
import { netnsId } from './netns.js';

const run = promisify(execFile);
const log = logger('host-gw');
const ip = (...args: string[]) => run('ip', args);

/** The route protocol (rtnetlink `proto`) marking skiff's host-gw routes; unused by common routing daemons. */
export const HOST_GW_ROUTE_PROTO = '83';

export interface HostGwPeer { name: string; podCidr: string; publicIp: string }

/** The other nodes that published a host-gw endpoint. */
export function hostGwPeersFrom(nodes: KObject[], self: string): HostGwPeer[] {
  const out: HostGwPeer[] = [];
  for (const n of nodes) {
    const e = n.metadata.name === self ? undefined : endpointOf(n, 'host-gw');
    if (e) out.push({ name: e.name, podCidr: e.podCidr, publicIp: e.publicIp });
  }
  return out.sort((x, y) => x.name.localeCompare(y.name));
}

/** flannel's host-gw publishes no backend data: the annotation holds JSON `null`. */
export function hostGwAnnotations(publicIp: string): Record<string, string> {
  return {
    [ANNOTATIONS.backendType]: 'host-gw',
    [ANNOTATIONS.backendData]: 'null',
    [ANNOTATIONS.publicIp]: publicIp,
    [ANNOTATIONS.subnetManager]: 'true',
  };
}

/** Where the agent records the namespace its host-gw routes are in (teardown removes only those). */
export const hostGwMarker = (dataDir: string) => join(dataDir, 'agent', 'host-gw-routes');

interface KernelRoute { dst: string; gateway?: string; dev?: string }

export class HostGwBackend implements PodNetworkBackend {
  readonly type = 'host-gw';
  readonly mtu: number;
  private routed = new Map<string, HostGwPeer>();
  /** Peers already reported as off-link (one error per peer address, not one per Node update). */
  private offLink = new Set<string>();

  private constructor(private readonly underlay: Underlay) {
    this.mtu = underlay.mtu;
  }

  static create(o: { dataDir: string; underlay: Underlay }): HostGwBackend {
    const marker = hostGwMarker(o.dataDir);
    mkdirSync(dirname(marker), { recursive: true });
    writeFileSync(marker, netnsId());
    log.info({ dev: o.underlay.name, ip: o.underlay.address, mtu: o.underlay.mtu }, 'host-gw backend: pod traffic routed via node IPs, no encapsulation');
    return new HostGwBackend(o.underlay);
  }

  annotations(): Record<string, string> {
    return hostGwAnnotations(this.underlay.address);
  }

  /** Reconciles against the kernel's routes of our protocol, so stale ones from before a restart go too. */
  async sync(nodes: KObject[], self: string): Promise<void> {
    const want = new Map(hostGwPeersFrom(nodes, self).map((p) => [p.podCidr, p]));
    const have = JSON.parse((await ip('-j', '-4', 'route', 'show', 'proto', HOST_GW_ROUTE_PROTO)).stdout || '[]') as KernelRoute[];
    for (const r of have) {
      const p = want.get(r.dst);
      if (p && this.matches(r, p)) continue;
      await ip('route', 'del', r.dst, 'proto', HOST_GW_ROUTE_PROTO).catch(() => undefined);
    }
    const current = new Set(have.filter((r) => { const p = want.get(r.dst); return p && this.matches(r, p); }).map((r) => r.dst));
    this.routed = new Map([...want].filter(([cidr]) => current.has(cidr)));
    for (const [cidr, p] of want) {
      if (current.has(cidr)) continue;
      const why = await this.notOnLink(p.publicIp);
      if (why) {
        if (!this.offLink.has(`${p.name}/${p.publicIp}`)) {
          this.offLink.add(`${p.name}/${p.publicIp}`);
          log.error({ peer: p.name, ip: p.publicIp, dev: this.underlay.name, reason: why },
            'host-gw: peer node is not on this node\'s L2 segment, so its pods are unreachable; host-gw needs every node on one network (use --flannel-backend vxlan across routers)');
        }
        continue;
      }
      try {
        await ip('route', 'replace', cidr, 'via', p.publicIp, ...(this.underlay.name ? ['dev', this.underlay.name] : []), 'proto', HOST_GW_ROUTE_PROTO);
        this.routed.set(cidr, p);
        this.offLink.delete(`${p.name}/${p.publicIp}`);
        log.info({ peer: p.name, podCidr: cidr, via: p.publicIp }, 'route to peer node');
      } catch (err) {
        log.error({ peer: p.name, podCidr: cidr, via: p.publicIp, err: (err as Error).message }, 'host-gw: could not route to peer node; retried on its next change');
      }
    }
  }

  private matches(r: KernelRoute, p: HostGwPeer): boolean {
    return r.gateway === p.publicIp && (!this.underlay.name || r.dev === this.underlay.name);
  }

  /** Why `addr` cannot be a next hop on the underlay, or undefined when it is on-link there. */
  private async notOnLink(addr: string): Promise<string | undefined> {
    try {
      const r = (JSON.parse((await ip('-j', 'route', 'get', addr)).stdout) as { gateway?: string; dev?: string }[])[0];
      if (r?.gateway) return `reached through the router ${r.gateway}`;
      if (this.underlay.name && r?.dev !== this.underlay.name) return `reached over ${r?.dev ?? 'no interface'}, not ${this.underlay.name}`;
      return undefined;
    } catch (err) {
      return (err as Error).message.trim();
    }
  }

  peerCidrs(): string[] {
    return [...this.routed.keys()];
  }
}

/** Removes this data dir's host-gw routes, if they are in this namespace (teardown, backend switch). */
export function removeHostGwRoutes(dataDir: string): void {
  const marker = hostGwMarker(dataDir);
  if (!existsSync(marker)) return;
  if (readFileSync(marker, 'utf8') === netnsId()) {
    try {
      execFileSync('ip', ['-4', 'route', 'flush', 'proto', HOST_GW_ROUTE_PROTO], { stdio: 'ignore' });
    } catch { /* none left */ }
  }
  rmSync(marker, { force: true });
}
