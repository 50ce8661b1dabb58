// Node IPAM: every node gets a pod network (`spec.podCIDR`, a /24 of --cluster-cidr by default, as
// k3s does), which its agent hands to CNI. Allocations are derived from the Nodes themselves, so a
// restart re-learns them; a deleted node's range is reused.
import type { KObject } from '../api/object.js';
import { Resources } from '../client/types.js';
import type { ControllerContext } from './context.js';
import { runController, type RunningController } from '../client/controller.js';
import { WorkQueue } from '../client/workqueue.js';
import { ipToNumber, numberToIp } from '../api/cidr.js';

export interface NodeIpamOptions {
  clusterCidr: string;      // e.g. 10.42.0.0/16
  nodeMaskSize: number;     // e.g. 24
}


/** The n-th /mask subnet of a cluster CIDR, or undefined past its end. */
export function subnetAt(clusterCidr: string, mask: number, n: number): string | undefined {
  const [ip, bits] = clusterCidr.split('/');
  const clusterBits = Number(bits);
  if (mask < clusterBits || n >= 2 ** (mask - clusterBits)) return undefined;
  const base = ((ipToNumber(ip) ?? 0) & (clusterBits === 0 ? 0 : (~0 << (32 - clusterBits)))) >>> 0;
  return `${numberToIp((base + n * 2 ** (32 - mask)) >>> 0)}/${mask}`;
}

export function startNodeIpamController(ctx: ControllerContext, opts: NodeIpamOptions): RunningController {
  const nodes = ctx.informers.informerFor(Resources.nodes);
  const queue = new WorkQueue<string>();
  nodes.addHandlers({
    onAdd: (n: KObject) => { if (!(n as any).spec?.podCIDR) queue.add(n.metadata.name!); },
    onUpdate: (_o: KObject, n: KObject) => { if (!(n as any).spec?.podCIDR) queue.add(n.metadata.name!); },
  });
  return runController({
    name: 'node-ipam', queue, informers: [nodes],
    async reconcile(name) {
      const node = nodes.getByName(undefined, name) as any;
      if (!node || node.spec?.podCIDR) return;
      const used = new Set(nodes.list().map((n: any) => n.spec?.podCIDR).filter(Boolean));
      for (let i = 0; ; i++) {
        const cidr = subnetAt(opts.clusterCidr, opts.nodeMaskSize, i);
        if (!cidr) throw new Error(`no free /${opts.nodeMaskSize} left in ${opts.clusterCidr} for node ${name}`);
        if (used.has(cidr)) continue;
        await ctx.client.patch(Resources.nodes, undefined, name, 'merge', { spec: { podCIDR: cidr, podCIDRs: [cidr] } });
        return;
      }
    },
  });
}
