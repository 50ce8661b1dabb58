// Draining a node from the browser, as `kubectl drain --ignore-daemonsets --delete-emptydir-data
// --force` does after the user has confirmed: cordon the node, then evict each of its pods through the
// Eviction API (so PodDisruptionBudgets are honoured: an eviction that would break one is refused
// with 429 and retried every 5 s until the budget allows it or the user stops), then wait until the
// evicted pods are gone. DaemonSet pods (their controller would put them straight back and ignores
// the cordon) and mirror pods (the kubelet owns them) are left alone.
import { ApiError, getJson, request, send, MERGE_PATCH } from './api.js';

const RETRY_MS = 5000;
const MIRROR_ANNOTATION = 'kubernetes.io/config.mirror';

export interface DrainPod { ns: string; name: string; uid: string; state: 'evicting' | 'blocked' | 'evicted' | 'gone' | 'failed'; message: string; unmanaged: boolean }

export interface DrainPlan { node: string; pods: DrainPod[]; skipped: { ns: string; name: string; why: string }[] }

const podPath = (ns: string, name: string) => `/api/v1/namespaces/${encodeURIComponent(ns)}/pods/${encodeURIComponent(name)}`;

/** Which pods a drain of `node` would evict, and which it leaves (and why). */
export async function planDrain(node: string): Promise<DrainPlan> {
  const list = await getJson(`/api/v1/pods?${new URLSearchParams({ fieldSelector: `spec.nodeName=${node}` })}`);
  const plan: DrainPlan = { node, pods: [], skipped: [] };
  for (const p of list.items ?? []) {
    const m = p.metadata ?? {};
    const owner = (m.ownerReferences ?? []).find((o: any) => o.controller);
    if (m.annotations?.[MIRROR_ANNOTATION] !== undefined) plan.skipped.push({ ns: m.namespace, name: m.name, why: 'mirror pod' });
    else if (owner?.kind === 'DaemonSet') plan.skipped.push({ ns: m.namespace, name: m.name, why: 'DaemonSet' });
    else plan.pods.push({ ns: m.namespace, name: m.name, uid: m.uid, state: 'evicting', message: '', unmanaged: !owner });
  }
  return plan;
}

const sleep = (ms: number, signal: AbortSignal) => new Promise<void>((resolve) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
});

/**
 * Cordons the node and evicts the plan's pods (all at once, each retried while a budget blocks it),
 * calling `progress` whenever a pod's state changes; resolves when every pod is gone or failed.
 */
export async function drain(plan: DrainPlan, progress: () => void, signal: AbortSignal): Promise<void> {
  await send('PATCH', `/api/v1/nodes/${encodeURIComponent(plan.node)}`, { spec: { unschedulable: true } }, MERGE_PATCH);
  await Promise.all(plan.pods.map(async (pod) => {
    while (!signal.aborted) {
      try {
        await request('POST', `${podPath(pod.ns, pod.name)}/eviction`, {
          body: { apiVersion: 'policy/v1', kind: 'Eviction', metadata: { name: pod.name, namespace: pod.ns } },
        });
        pod.state = 'evicted'; pod.message = '';
        break;
      } catch (e) {
        if (e instanceof ApiError && e.code === 404) { pod.state = 'gone'; pod.message = ''; progress(); return; }
        if (e instanceof ApiError && e.code === 429) {
          // A PodDisruptionBudget says not now: wait and ask again, as kubectl drain does.
          pod.state = 'blocked'; pod.message = e.message; progress();
          await sleep(RETRY_MS, signal);
          continue;
        }
        pod.state = 'failed'; pod.message = e instanceof Error ? e.message : String(e); progress();
        return;
      }
    }
    progress();
    // Evicted: wait for the pod to be deleted (graceful termination on its node), or replaced by a
    // new pod of the same name (a StatefulSet's), which is not the one we evicted.
    // (A list by name, not a GET: a pod that is gone is then an empty list rather than a 404.)
    const byName = `/api/v1/namespaces/${encodeURIComponent(pod.ns)}/pods?${new URLSearchParams({ fieldSelector: `metadata.name=${pod.name}` })}`;
    while (!signal.aborted) {
      const list = await getJson(byName);
      if (!(list.items ?? []).some((p: any) => p.metadata?.uid === pod.uid)) break;
      await sleep(1000, signal);
    }
    if (!signal.aborted) { pod.state = 'gone'; progress(); }
  }));
}
