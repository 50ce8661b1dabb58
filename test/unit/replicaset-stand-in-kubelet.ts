// The tests' stand-in kubelet for workload controller tests: it marks pods Running and Ready through
// the status subresource, as a node would once containers start. It stands in for nothing real (the
// agent and hollow nodes have their own tests); it only lets rollouts progress in process.
import type { TestContext } from 'node:test';
import type { KObject } from '../../src/api/object.js';
import { Resources, type ApiClient } from '../../src/client/types.js';

export interface StandInKubelet {
  /** Pods the kubelet should leave alone (not Ready) until this returns false. */
  hold(predicate: ((pod: KObject) => boolean) | undefined): void;
  /** Looks at every pod again (e.g. after changing what is held). */
  resync(): Promise<void>;
}

export function startStandInKubelet(t: TestContext, client: ApiClient, namespace = 'default'): StandInKubelet {
  let held: ((pod: KObject) => boolean) | undefined;
  const inFlight = new Set<string>();
  const markReady = async (pod: KObject & Record<string, any>) => {
    const name = pod.metadata.name!;
    if (pod.metadata.deletionTimestamp || inFlight.has(name)) return;
    if (pod.status?.phase === 'Running' && pod.status?.conditions?.some((c: any) => c.type === 'Ready' && c.status === 'True')) return;
    if (held?.(pod)) return;
    inFlight.add(name);
    try {
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      const fresh = await client.get<KObject & Record<string, any>>(Resources.pods, namespace, name);
      if (!fresh || fresh.metadata.deletionTimestamp) return;
      await client.updateStatus(Resources.pods, namespace, {
        ...fresh,
        status: {
          ...(fresh.status ?? {}), phase: 'Running', startTime: now,
          conditions: ['Initialized', 'Ready', 'ContainersReady', 'PodScheduled'].map((type) => ({ type, status: 'True', lastTransitionTime: now })),
        },
      });
    } catch {
      // Deleted or changed meanwhile: the next event brings it back.
    } finally {
      inFlight.delete(name);
    }
  };
  const h = client.watch(Resources.pods, namespace, '0', (e) => {
    if (e.type === 'ADDED' || e.type === 'MODIFIED') void markReady(e.object);
  });
  t.after(() => h.stop());
  return {
    hold(p) { held = p; },
    async resync() {
      const { items } = await client.list(Resources.pods, namespace);
      await Promise.all(items.map((p) => markReady(p)));
    },
  };
}
