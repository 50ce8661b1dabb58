// Namespace lifecycle: a namespace being deleted has its contents removed, then its `kubernetes`
// finalizer, and disappears; every new namespace gets its `default` ServiceAccount. Level-triggered,
// through the API only: the namespaced resources come from discovery (so custom resources are
// emptied too), the contents from lists, and the last step is the namespaces/finalize subresource.
import type { KObject } from '../api/object.js';
import { isNotFound, Resources, type ServedResource } from '../client/types.js';
import { runController, type RunningController } from '../client/controller.js';
import { WorkQueue } from '../client/workqueue.js';
import type { ControllerContext } from './context.js';
import { logger } from '../util/log.js';

const log = logger('namespace-controller');

/** How soon a namespace whose contents are still terminating is looked at again. */
const RECHECK_MS = 1000;

export function startNamespaceController(ctx: ControllerContext): RunningController {
  const namespaces = ctx.informers.informerFor(Resources.namespaces);
  const queue = new WorkQueue<string>();
  const enqueue = (ns: KObject) => queue.add(ns.metadata.name!);
  namespaces.addHandlers({ onAdd: enqueue, onUpdate: (_old, ns) => enqueue(ns) });

  const reconcile = async (name: string) => {
    const ns = namespaces.getByName(undefined, name);
    if (!ns) return undefined;
    if (!ns.metadata.deletionTimestamp) {
      await ensureDefaultServiceAccount(ctx, name);
      return undefined;
    }
    return emptyNamespace(ctx, name);
  };

  return runController({ name: 'namespace-controller', queue, workers: 2, informers: [namespaces], reconcile });
}

async function ensureDefaultServiceAccount(ctx: ControllerContext, ns: string): Promise<void> {
  if (await ctx.client.get(Resources.serviceAccounts, ns, 'default')) return;
  try {
    await ctx.client.create(Resources.serviceAccounts, ns, { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: ns } });
  } catch (e: any) {
    // Already there, or the namespace started terminating meanwhile.
    if (e?.code !== 409 && e?.code !== 403) throw e;
  }
}

/** Deletes what is left in `ns`; once nothing is, removes the `kubernetes` finalizer. */
async function emptyNamespace(ctx: ControllerContext, ns: string): Promise<{ requeueAfterMs: number } | undefined> {
  const { client } = ctx;
  const resources = await namespacedResources(ctx);
  let seen = 0;
  for (const r of resources) {
    for (const o of (await client.list(r, ns)).items) {
      seen++;
      if (o.metadata.deletionTimestamp) continue;
      try {
        await client.delete(r, ns, o.metadata.name!, { propagationPolicy: 'Background' });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }
  // Objects that went away right now no longer count; anything still terminating keeps us waiting.
  let left = 0;
  for (const r of resources) left += (await client.list(r, ns)).items.length;
  if (left > 0) {
    log.debug({ namespace: ns, left, seen }, 'waiting for namespace contents to terminate');
    return { requeueAfterMs: RECHECK_MS };
  }
  const current = await client.get(Resources.namespaces, undefined, ns);
  if (!current) return undefined;
  const next = structuredClone(current) as KObject & { spec?: { finalizers?: string[] } };
  next.spec = { ...(next.spec ?? {}), finalizers: (next.spec?.finalizers ?? []).filter((f) => f !== 'kubernetes') };
  try {
    // Pinned to what was just read: a conflict is retried (with backoff) from a fresh read.
    await client.finalizeNamespace(next);
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
  log.info({ namespace: ns }, 'namespace deleted');
  return undefined;
}

/** Every namespaced resource whose objects can be listed and deleted (built-ins and custom resources). */
async function namespacedResources(ctx: ControllerContext): Promise<ServedResource[]> {
  return (await ctx.client.preferredResources()).filter((r) => r.namespaced && r.verbs.includes('list') && r.verbs.includes('delete'));
}
