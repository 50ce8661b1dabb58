// The vxlan backend (k3s's default), laid out as flannel's: each node has a `flannel.1` device (VNI
// 1, UDP 8472) on its underlay interface, holding the first address of its pod CIDR, and publishes
// its VTEP MAC and underlay IP in flannel's Node annotations. For every other node the agent keeps
// three kernel entries: a route to that node's pod CIDR via its `.0` address over the device, a
// permanent neighbour entry for that address with the node's VTEP MAC, and a forwarding entry sending
// that MAC to the node's IP. Nothing is learned on the wire (nolearning); the API is the source of truth.
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { KObject } from '../../../api/object.js';
import { logger } from '../../../util/log.js';
import type { Underlay } from '../underlay.js';
import { ANNOTATIONS, endpointOf, type PodNetworkBackend } from './backend.js';
import { netnsId } from './netns.js';

export { ANNOTATIONS } from './backend.js';

const run = promisify(execFile);
const log = logger('vxlan');

export const VXLAN_DEVICE = 'flannel.1';
export const VXLAN_VNI = 1;
export const VXLAN_PORT = 8472;
/** VXLAN over IPv4 adds 50 bytes to each packet (outer IP 20, UDP 8, VXLAN 8, inner Ethernet 14). */
export const VXLAN_OVERHEAD = 50;

export interface Peer { name: string; podCidr: string; publicIp: string; vtepMac: string }

/** The other nodes that published a vxlan endpoint, from their Node objects. */
export function peersFrom(nodes: KObject[], self: string): Peer[] {
  const out: Peer[] = [];
  for (const n of nodes) {
    const e = n.metadata.name === self ? undefined : endpointOf(n, 'vxlan');
    if (!e) continue;
    let mac: unknown;
    try {
      mac = (JSON.parse(e.data ?? '{}') as { VtepMAC?: unknown } | null)?.VtepMAC;
    } catch {
      continue;
    }
    if (typeof mac !== 'string' || !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(mac)) continue;
    out.push({ name: e.name, podCidr: e.podCidr, publicIp: e.publicIp, vtepMac: mac.toLowerCase() });
  }
  return out.sort((x, y) => x.name.localeCompare(y.name));
}

/** The `.0` address of a pod CIDR, which flannel gives the node's VXLAN device. */
export const gatewayOf = (cidr: string) => cidr.split('/')[0]!;

/** The Node annotations that publish this node's endpoint. */
export function endpointAnnotations(mac: string, nodeIp: string): Record<string, string> {
  return {
    [ANNOTATIONS.backendType]: 'vxlan',
    [ANNOTATIONS.backendData]: JSON.stringify({ VNI: VXLAN_VNI, VtepMAC: mac }),
    [ANNOTATIONS.publicIp]: nodeIp,
    [ANNOTATIONS.subnetManager]: 'true',
  };
}

/** Where the agent records that it made the device, so that teardown removes only its own. */
export const overlayMarker = (dataDir: string) => join(dataDir, 'agent', 'overlay-device');

const ip = (...args: string[]) => run('ip', args);

export class VxlanBackend implements PodNetworkBackend {
  readonly type = 'vxlan';
  private applied = new Map<string, Peer>();

  private constructor(readonly mac: string, readonly mtu: number, private readonly publicIp: string) {}

  /**
   * Creates (or, after an agent restart, adopts) the device on the underlay. Returns undefined, with
   * a warning, when another owner's device of that name is in the way: the node then runs its pods
   * without an overlay, as a single node needs none.
   */
  static async create(o: { dataDir: string; podCidr: string; underlay: Underlay }): Promise<VxlanBackend | undefined> {
    const marker = overlayMarker(o.dataDir);
    const mtu = o.underlay.mtu - VXLAN_OVERHEAD;
    // Asked of `ip`, not /sys: sysfs shows the network namespace it was mounted in, which need not
    // be the agent's (a host made with `nsenter --net`).
    const exists = await linkAddress(VXLAN_DEVICE).then(() => true, () => false);
    const ours = existsSync(marker) && readFileSync(marker, 'utf8') === netnsId();
    if (exists && !ours) {
      log.warn({ device: VXLAN_DEVICE }, 'a VXLAN device of that name belongs to something else; no pod network to other nodes');
      return undefined;
    }
    try {
      // Ours from an earlier run: kept when its settings still hold, so a restarted agent does not cut
      // the traffic between nodes (its MAC, and with it every peer's forwarding entry, stays valid).
      const keep = exists && await sameVxlanSettings(o.underlay);
      if (exists && !keep) await ip('link', 'del', VXLAN_DEVICE);
      if (!keep) {
        await ip('link', 'add', VXLAN_DEVICE, 'type', 'vxlan', 'id', String(VXLAN_VNI), 'local', o.underlay.address,
          ...(o.underlay.name ? ['dev', o.underlay.name] : []), 'dstport', String(VXLAN_PORT), 'nolearning');
      }
      mkdirSync(dirname(marker), { recursive: true });
      writeFileSync(marker, netnsId());
      await ip('link', 'set', VXLAN_DEVICE, 'mtu', String(mtu));
      await ip('addr', 'replace', `${gatewayOf(o.podCidr)}/32`, 'dev', VXLAN_DEVICE);
      await ip('link', 'set', VXLAN_DEVICE, 'up');
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not create the VXLAN device; no pod network to other nodes');
      return undefined;
    }
    const mac = await linkAddress(VXLAN_DEVICE);
    log.info({ device: VXLAN_DEVICE, mac, local: o.underlay.address, dev: o.underlay.name, mtu }, 'overlay device up');
    return new VxlanBackend(mac, mtu, o.underlay.address);
  }

  annotations(): Record<string, string> {
    return endpointAnnotations(this.mac, this.publicIp);
  }

  /** Makes the kernel's routes, neighbours and forwarding entries match the peers' endpoints. */
  async sync(nodes: KObject[], self: string): Promise<void> {
    const want = new Map(peersFrom(nodes, self).map((p) => [p.name, p]));
    for (const [name, old] of this.applied) {
      const now = want.get(name);
      if (now && JSON.stringify(now) === JSON.stringify(old)) continue;
      await this.remove(old);
      this.applied.delete(name);
    }
    for (const [name, p] of want) {
      if (this.applied.has(name)) continue;
      try {
        await ip('neigh', 'replace', gatewayOf(p.podCidr), 'lladdr', p.vtepMac, 'dev', VXLAN_DEVICE, 'nud', 'permanent');
        await run('bridge', ['fdb', 'replace', p.vtepMac, 'dev', VXLAN_DEVICE, 'dst', p.publicIp, 'self', 'permanent']);
        await ip('route', 'replace', p.podCidr, 'via', gatewayOf(p.podCidr), 'dev', VXLAN_DEVICE, 'onlink');
        this.applied.set(name, p);
        log.info({ peer: name, podCidr: p.podCidr, ip: p.publicIp }, 'route to peer node');
      } catch (err) {
        log.warn({ peer: name, err: (err as Error).message }, 'could not route to peer node; retried on its next change');
      }
    }
  }

  private async remove(p: Peer): Promise<void> {
    await ip('route', 'del', p.podCidr).catch(() => undefined);
    await ip('neigh', 'del', gatewayOf(p.podCidr), 'dev', VXLAN_DEVICE).catch(() => undefined);
    await run('bridge', ['fdb', 'del', p.vtepMac, 'dev', VXLAN_DEVICE, 'self']).catch(() => undefined);
  }

  peerCidrs(): string[] {
    return [...this.applied.values()].map((p) => p.podCidr);
  }
}

/** Whether the existing VXLAN device has the VNI, local address, underlay device and port we would give it. */
async function sameVxlanSettings(underlay: Underlay): Promise<boolean> {
  try {
    const { stdout } = await run('ip', ['-d', '-j', 'link', 'show', 'dev', VXLAN_DEVICE]);
    const d = (JSON.parse(stdout) as { linkinfo?: { info_kind?: string; info_data?: Record<string, unknown> } }[])[0]?.linkinfo;
    const i = d?.info_data ?? {};
    return d?.info_kind === 'vxlan' && i.id === VXLAN_VNI && i.local === underlay.address && i.port === VXLAN_PORT
      && i.learning === false && (!underlay.name || i.link === underlay.name);
  } catch {
    return false;
  }
}

/** A link's MAC address; rejects when there is no such link. */
async function linkAddress(dev: string): Promise<string> {
  const { stdout } = await ip('-j', 'link', 'show', 'dev', dev);
  const address = (JSON.parse(stdout) as { address?: string }[])[0]?.address;
  if (!address) throw new Error(`${dev} has no link-layer address`);
  return address;
}

/**
 * Removes the device if this data dir's agent made it (teardown, killall, or another backend taking
 * over): its routes, neighbours and forwarding entries go with it.
 */
export function removeOverlayDevice(dataDir: string): void {
  const marker = overlayMarker(dataDir);
  if (!existsSync(marker)) return;
  // Only from the network namespace the device was made in (a test tearing down an agent that ran
  // as another host must not delete this namespace's device of the same name).
  if (readFileSync(marker, 'utf8') !== netnsId()) { rmSync(marker, { force: true }); return; }
  try {
    execFileSync('ip', ['link', 'del', VXLAN_DEVICE], { stdio: 'ignore' });
  } catch { /* already gone (its namespace may be too) */ }
  rmSync(marker, { force: true });
}
