// The node's interface toward the other nodes (flannel calls it the external interface): the pod
// network backends send their traffic over it, publish its address, and size pods' MTU from it.
// Chosen as flannel does under k3s: `--flannel-iface` when given, else the interface holding the
// node IP, else the one of the default route.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Underlay {
  /** Empty when no interface could be told (a node IP on loopback and no default route): the kernel then picks per packet. */
  name: string;
  /** The IPv4 address the backend publishes (flannel's public-ip). */
  address: string;
  mtu: number;
}

/** One entry of `ip -j addr show`. */
export interface IpLink {
  ifname: string;
  mtu: number;
  addr_info?: { family: string; local: string; scope?: string }[];
}

/** The underlay among `links`; throws with a message a user can act on when there is none. */
export function pickUnderlay(links: IpLink[], o: { nodeIp: string; iface?: string; defaultRouteDev?: string }): Underlay {
  const v4 = (l: IpLink) => (l.addr_info ?? []).filter((a) => a.family === 'inet' && a.scope !== 'host').map((a) => a.local);
  if (o.iface) {
    const l = links.find((x) => x.ifname === o.iface);
    if (!l) throw new Error(`--flannel-iface ${o.iface}: no such interface (have: ${links.map((x) => x.ifname).join(', ')})`);
    const addrs = v4(l);
    // The node IP when it is on that interface, else the interface's first address (flannel's choice).
    const address = addrs.includes(o.nodeIp) ? o.nodeIp : addrs[0];
    if (!address) throw new Error(`--flannel-iface ${o.iface}: the interface has no IPv4 address`);
    return { name: l.ifname, address, mtu: l.mtu };
  }
  const byIp = links.find((l) => v4(l).includes(o.nodeIp));
  if (byIp) return { name: byIp.ifname, address: o.nodeIp, mtu: byIp.mtu };
  const byRoute = links.find((l) => l.ifname === o.defaultRouteDev);
  if (byRoute) return { name: byRoute.ifname, address: o.nodeIp, mtu: byRoute.mtu };
  // A node IP on loopback (a single-node trial) with no default route: no interface to size pods
  // from, so Ethernet's MTU, and no device pinned.
  return { name: '', address: o.nodeIp, mtu: 1500 };
}

/** The underlay of this network namespace (asked of `ip`, which sees the agent's namespace). */
export async function findUnderlay(o: { nodeIp: string; iface?: string }): Promise<Underlay> {
  const links = JSON.parse((await run('ip', ['-j', 'addr', 'show'])).stdout) as IpLink[];
  let defaultRouteDev: string | undefined;
  try {
    defaultRouteDev = (JSON.parse((await run('ip', ['-j', '-4', 'route', 'show', 'default'])).stdout) as { dev?: string }[])[0]?.dev;
  } catch { /* no routes at all */ }
  return pickUnderlay(links, { ...o, defaultRouteDev });
}
