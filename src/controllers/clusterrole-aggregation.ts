// ClusterRole aggregation: a ClusterRole with an aggregationRule (admin, edit, view and any a user
// writes) gets, as its `rules`, the union of the rules of the ClusterRoles its selectors match, so
// `kubectl get clusterrole admin -o yaml` shows what it grants (authorization already follows the
// selectors at decision time; this keeps the stored object truthful, as Kubernetes' controller does).
import type { KObject } from '../api/object.js';
import { compileLabelSelector, type LabelSelector } from '../api/selectors.js';
import type { ResourceRef } from '../client/types.js';
import type { ControllerContext } from './context.js';
import { enqueueAll, runController, type RunningController } from '../client/controller.js';
import { WorkQueue } from '../client/workqueue.js';

const CLUSTER_ROLES: ResourceRef = { group: 'rbac.authorization.k8s.io', version: 'v1', resource: 'clusterroles' };

export function startClusterRoleAggregationController(ctx: ControllerContext): RunningController {
  const informer = ctx.informers.informerFor(CLUSTER_ROLES);
  const queue = new WorkQueue<string>();
  // Any change may matter to every aggregating role: enqueue those (they are few).
  const enqueueAggregators = () => enqueueAll(queue, informer, (r) => Boolean((r as { aggregationRule?: unknown }).aggregationRule));
  informer.addHandlers({ onAdd: enqueueAggregators, onUpdate: enqueueAggregators, onDelete: enqueueAggregators });
  return runController({
    name: 'clusterrole-aggregation', queue, informers: [informer],
    async reconcile(name) {
      const role = informer.getByName(undefined, name) as (KObject & { aggregationRule?: any; rules?: any[] }) | undefined;
      if (!role?.aggregationRule) return;
      const rules: any[] = [];
      const seen = new Set<string>();
      const selectors = ((role.aggregationRule.clusterRoleSelectors ?? []) as unknown[]).map((s) => compileLabelSelector(s as LabelSelector));
      const members = informer.list()
        .filter((r) => r.metadata.name !== name)
        .filter((r) => selectors.some((matches) => matches(r.metadata.labels)))
        .sort((a, b) => a.metadata.name!.localeCompare(b.metadata.name!));
      for (const m of members) {
        for (const rule of (m as any).rules ?? []) {
          const key = JSON.stringify(rule);
          if (!seen.has(key)) { seen.add(key); rules.push(rule); }
        }
      }
      if (JSON.stringify(role.rules ?? []) === JSON.stringify(rules)) return;
      await ctx.client.patch(CLUSTER_ROLES, undefined, name, 'merge', { rules: rules.length ? rules : null });
    },
  });
}
