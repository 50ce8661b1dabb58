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
  // The ranges in use, kept up to date from the Nodes' events, and where the search for a free one
  // starts: scanning every node for every new node was quadratic (12 million steps for 5,000 nodes).
  const used = new Set<string>();
  let searchFrom = 0;
  const note = (n: KObject) => { const c = (n as any).spec?.podCIDR; if (c) used.add(c); };
  nodes.addHandlers({
    onAdd: (n: KObject) => { note(n); if (!(n as any).spec?.podCIDR) queue.add(n.metadata.name!); },
    onUpdate: (_o: KObject, n: KObject) => { note(n); if (!(n as any).spec?.podCIDR) queue.add(n.metadata.name!); },
    onDelete: (n: KObject) => {
      const c = (n as any).spec?.podCIDR;
      // Freed for reuse: the next search starts from the beginning again.
      if (c && used.delete(c)) searchFrom = 0;
    },
  });
  return runController({
    name: 'node-ipam', queue, informers: [nodes],
    async reconcile(name) {
      const node = nodes.getByName(undefined, name) as any;
      if (!node || node.spec?.podCIDR) return;
      for (let i = searchFrom; ; i++) {
        const cidr = subnetAt(opts.clusterCidr, opts.nodeMaskSize, i);
        if (!cidr) {
          // Before giving up (and retrying with backoff), forget anything stale: relearn from the Nodes.
          used.clear();
          for (const n of nodes.list()) note(n);
          searchFrom = 0;
          throw new Error(`no free /${opts.nodeMaskSize} left in ${opts.clusterCidr} for node ${name}`);
        }
        if (used.has(cidr)) continue;
        await ctx.client.patch(Resources.nodes, undefined, name, 'merge', { spec: { podCIDR: cidr, podCIDRs: [cidr] } });
        // Taken now, before the informer hears of it: the next node must not get it too.
        used.add(cidr);
        searchFrom = i + 1;
        return;
      }
    },
  });
}
