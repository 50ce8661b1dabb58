// ClusterGroup status: how many Clusters its selector picks and which of them are not Ready. A
// control loop keyed by group; a Cluster change requeues every group (there are few groups, and a
// label change can move a cluster between any two of them).
import type { ApiClient } from '../client/types.js';
import type { InformerFactory } from '../client/informer-factory.js';
import { WorkQueue } from '../client/workqueue.js';
import { runController, type RunningController } from '../client/controller.js';
import { compileLabelSelector, type LabelSelector } from '../api/selectors.js';
import type { KObject } from '../api/object.js';
import { CLUSTER_GROUPS, CLUSTERS, type Cluster } from './api.js';

type ClusterGroup = KObject & { spec?: { selector?: LabelSelector }; status?: Record<string, unknown> };

/** At most this many names in `status.nonReadyClusters` (the count is exact; the list is a hint). */
const MAX_LISTED = 10;

export function clusterGroupStatus(group: ClusterGroup, clusters: Cluster[]): Record<string, unknown> {
  // A group without a selector picks nothing (as Fleet), not the whole fleet.
  const match = group.spec?.selector ? compileLabelSelector(group.spec.selector) : () => false;
  const picked = clusters.filter((c) => match(c.metadata.labels));
  const notReady = picked.filter((c) => c.status?.conditions?.find((x) => x.type === 'Ready')?.status !== 'True').map((c) => c.metadata.name!).sort();
  return {
    clusterCount: picked.length,
    nonReadyClusterCount: notReady.length,
    nonReadyClusters: notReady.slice(0, MAX_LISTED),
    display: { readyClusters: `${picked.length - notReady.length}/${picked.length}` },
  };
}

export function startClusterGroupController(client: ApiClient, informers: InformerFactory): RunningController {
  const groups = informers.informerFor<ClusterGroup>(CLUSTER_GROUPS);
  const clusters = informers.informerFor<Cluster>(CLUSTERS);
  const queue = new WorkQueue<string>();
  groups.addHandlers({ onAdd: (g) => queue.add(g.metadata.name!), onUpdate: (_o, g) => queue.add(g.metadata.name!) });
  const all = () => { for (const g of groups.list()) queue.add(g.metadata.name!); };
  clusters.addHandlers({
    onAdd: all, onDelete: all,
    // Only changes a group can see: labels or readiness (not every lastSeen refresh).
    onUpdate: (o, c) => {
      const ready = (x: Cluster) => x.status?.conditions?.find((k) => k.type === 'Ready')?.status;
      if (JSON.stringify(o.metadata.labels) !== JSON.stringify(c.metadata.labels) || ready(o) !== ready(c)) all();
    },
  });
  return runController({
    name: 'fleet-clustergroups', queue, informers: [groups, clusters],
    async reconcile(name) {
      const g = groups.getByName(undefined, name);
      if (!g) return;
      const status = clusterGroupStatus(g, clusters.list());
      if (JSON.stringify(status) === JSON.stringify(g.status ?? {})) return;
      await client.updateStatus(CLUSTER_GROUPS, undefined, { ...g, status });
    },
  });
}
