// The node's pod network, for the backend the server chose for the cluster (`--flannel-backend`):
// vxlan or host-gw give each pod an address from the node's pod CIDR on a local bridge (CNI config
// written here, MTU sized from the underlay) and carry traffic to other nodes' pods; none writes no
// CNI config and programs nothing, so pods wait for a CNI the user installs (the node stays
// NotReady until then, as under k3s). Whatever another backend left behind on this node (a restart
// with a different backend) is removed first, so two backends never route the same pod CIDRs.
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { FlannelBackend } from '../../api/agent-config.js';
import type { KObject } from '../../api/object.js';
import type { HttpClient } from '../../client/http.js';
import { Informer } from '../../client/informer.js';
import { Resources } from '../../client/types.js';
import { logger } from '../../util/log.js';
import { CNI_CONFLIST_FILE, writeBridgeCniConfig } from '../runtime/cni-config.js';
import { ANNOTATIONS, peerSignature, peerView, type PodNetworkBackend } from './backends/backend.js';
import { HostGwBackend, removeHostGwRoutes } from './backends/host-gw.js';
import { removeOverlayDevice, VxlanBackend } from './backends/vxlan.js';
import { ensurePodMasquerade, markPodMasquerade, removePodMasquerade } from './masquerade.js';
import { findUnderlay } from './underlay.js';

const log = logger('pod-network');

export interface PodNetworkOptions {
  backend: FlannelBackend;
  dataDir: string;
  nodeName: string;
  nodeIp: string;
  podCidr: string;
  /** `--flannel-iface`. */
  iface?: string;
  cniConfDir: string;
  bridgeName: string;
}

export interface PodNetwork {
  /** The backend in use; undefined for `none`, or when the vxlan device could not be made. */
  backend?: PodNetworkBackend;
  /** Publishes this node's endpoint and routes to every other node's pods, following the Nodes. */
  follow(client: HttpClient): Promise<{ stop(): Promise<void> }>;
}

/** Sets up this node's side before containerd starts (it reads the CNI config from then on). */
export async function preparePodNetwork(o: PodNetworkOptions): Promise<PodNetwork> {
  if (o.backend !== 'vxlan') removeOverlayDevice(o.dataDir);
  if (o.backend !== 'host-gw') removeHostGwRoutes(o.dataDir);
  if (o.backend === 'none') {
    const conflist = join(o.cniConfDir, CNI_CONFLIST_FILE);
    if (existsSync(conflist)) rmSync(conflist);
    await removePodMasquerade();
    log.info({ cniConfDir: o.cniConfDir }, 'flannel backend none: no pod network from skiff; pods start once a CNI plugin writes its config into this folder');
    return {
      async follow(client) {
        // Withdraw an endpoint a previous backend published, so peers stop routing here.
        const clear = Object.fromEntries(Object.values(ANNOTATIONS).map((k) => [k, null]));
        await client.patch(Resources.nodes, undefined, o.nodeName, 'merge', { metadata: { annotations: clear } });
        return { async stop() { /* nothing followed */ } };
      },
    };
  }
  const underlay = await findUnderlay({ nodeIp: o.nodeIp, iface: o.iface });
  const backend: PodNetworkBackend | undefined = o.backend === 'vxlan'
    ? await VxlanBackend.create({ dataDir: o.dataDir, podCidr: o.podCidr, underlay })
    : HostGwBackend.create({ dataDir: o.dataDir, underlay });
  const mtu = backend?.mtu ?? underlay.mtu;
  writeBridgeCniConfig(o.cniConfDir, o.podCidr, o.bridgeName, { mtu });
  markPodMasquerade(o.dataDir);
  await ensurePodMasquerade(o.podCidr);
  log.info({ backend: o.backend, iface: underlay.name, ip: underlay.address, mtu }, 'pod network ready');
  return {
    backend,
    async follow(client) {
      if (!backend) return { async stop() { /* single node */ } };
      return followPeers(client, o, backend);
    },
  };
}

/**
 * Follows the other Nodes through an informer that keeps only their peer view (pod CIDR and flannel
 * annotations), so the agent's memory does not grow with the cluster's Node objects; only a change
 * of some node's endpoint or pod CIDR reprograms anything (a status heartbeat costs one comparison).
 */
async function followPeers(client: HttpClient, o: PodNetworkOptions, backend: PodNetworkBackend): Promise<{ stop(): Promise<void> }> {
  await client.patch(Resources.nodes, undefined, o.nodeName, 'merge', { metadata: { annotations: backend.annotations() } });
  const nodes = new Informer<KObject>({ client, resource: Resources.nodes, transform: peerView });
  let chain = Promise.resolve();
  const resync = () => {
    const list = [...nodes.list()].sort((a, b) => (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
    chain = chain.then(async () => {
      await backend.sync(list, o.nodeName);
      await ensurePodMasquerade(o.podCidr, backend.peerCidrs());
    }).catch((err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'pod network sync failed'));
  };
  nodes.addHandlers({
    // A node without flannel annotations (none kept in its view) routes nothing.
    onAdd: (n) => { if (nodes.hasSynced() && n.metadata.annotations) resync(); },
    onUpdate: (old, n) => { if (peerSignature(old) !== peerSignature(n)) resync(); },
    onDelete: (n) => { if (n.metadata.annotations) resync(); },
  });
  nodes.start();
  await nodes.waitForSync();
  resync();
  return { async stop() { await nodes.stop(); await chain; } };
}
