// A minimal pod network for containerd's CRI plugin: one Linux bridge per node, addresses from the
// node's pod CIDR (host-local IPAM), hostPort support (outbound NAT is one node-wide rule, see network/masquerade.ts). The agent's network
// layer owns the real config; this one is enough for sandboxes to get IPs on a single node.
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

export const CNI_NETWORK_NAME = 'skiff-pod-network';
export const CNI_CONFLIST_FILE = '10-skiff.conflist';

export interface BridgeCniOptions {
  /** Where host-local records leased IPs. Default: `<dir>/../ipam` (host-local's own default is shared by every user of the host). */
  ipamDir?: string;
  /** The plugin's own per-pod SNAT (iptables at every sandbox). Default false: the agent installs one
   *  node-wide rule instead (network/masquerade.ts), which keeps bursts of pod starts off the xtables lock. */
  ipMasq?: boolean;
  /** Chain the portmap plugin so hostPort works (needs iptables). Default true. */
  portMap?: boolean;
  mtu?: number;
}

/** The conflist as an object (CNI spec 1.0.0, which Debian's plugins 1.1 and containerd 1.6 speak). */
export function bridgeCniConfig(podCidr: string, bridgeName: string, ipamDir: string, o: BridgeCniOptions = {}): object {
  if (bridgeName.length > 15) throw new Error(`bridge name ${bridgeName} is longer than Linux's 15 characters`);
  const plugins: object[] = [{
    type: 'bridge',
    bridge: bridgeName,
    isGateway: true,
    ipMasq: o.ipMasq ?? false,
    hairpinMode: true,
    ...(o.mtu ? { mtu: o.mtu } : {}),
    ipam: {
      type: 'host-local',
      ranges: [[{ subnet: podCidr }]],
      routes: [{ dst: podCidr.includes(':') ? '::/0' : '0.0.0.0/0' }],
      dataDir: ipamDir,
    },
  }];
  if (o.portMap ?? true) plugins.push({ type: 'portmap', capabilities: { portMappings: true } });
  return { cniVersion: '1.0.0', name: CNI_NETWORK_NAME, plugins };
}

/** Writes `<dir>/10-skiff.conflist` atomically (containerd watches the directory and may read mid-write). */
export function writeBridgeCniConfig(dir: string, podCidr: string, bridgeName: string, o: BridgeCniOptions = {}): string {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, CNI_CONFLIST_FILE);
  const ipamDir = o.ipamDir ?? join(dirname(dir), 'ipam');
  const tmp = `${file}.tmp`;
  writeFileSync(tmp, JSON.stringify(bridgeCniConfig(podCidr, bridgeName, ipamDir, o), null, 2) + '\n');
  renameSync(tmp, file);
  return file;
}
