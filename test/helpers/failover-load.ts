// The load both HA kill tests (ha-leader, ha-agent) put on a cluster while a server dies: four
// writers creating ConfigMaps round robin through every server (only a 201 counts as acknowledged),
// a watch on a survivor that reopens from its last resourceVersion when its stream ends, and a poll
// of every node's Ready condition. `finish` stops them and checks what the acceptance asks: every
// acknowledged write stored, the watch saw each one, no node turned NotReady. Also who holds the
// loops' Leases.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ApiClient, type WatchStream } from './api-client.js';
import type { TestServer } from './cluster.js';
import { eventually } from './wait.js';

export const FAILOVER_COLLECTION = '/api/v1/namespaces/default/configmaps';

export interface FailoverLoad {
  /** Acknowledged writes: name → when. */
  acked: Map<string, number>;
  /** Acknowledged writes made more than a second after `since`. */
  ackedAfter(since: number): number;
  /** Stops the writers, the watch and the node poll, and asserts nothing was lost or seen NotReady. */
  finish(stored: () => Promise<Set<string>>): Promise<void>;
}

/** `servers`: the writers' targets; `watchVia`: a survivor; `nodesVia`: where nodes are polled (a survivor). */
export async function startFailoverLoad(servers: TestServer[], watchVia: TestServer, nodesVia: TestServer, clients: ApiClient[]): Promise<FailoverLoad> {
  const watchApi = ApiClient.fromKubeconfig(watchVia.kubeconfigPath);
  clients.push(watchApi);
  const watched = new Set<string>();
  let lastRv = JSON.parse((await watchApi.get(`${FAILOVER_COLLECTION}?limit=1`)).body).metadata.resourceVersion as string;
  let watching = true;
  let stream: WatchStream | undefined;
  const watchLoop = (async () => {
    while (watching) {
      stream = await watchApi.watch(`${FAILOVER_COLLECTION}?watch=1&allowWatchBookmarks=true&resourceVersion=${lastRv}`, (ev) => {
        if (ev.object?.metadata?.resourceVersion) lastRv = ev.object.metadata.resourceVersion;
        if (ev.type === 'ADDED' && ev.object.metadata.name.startsWith('w-')) watched.add(ev.object.metadata.name);
      }).catch(() => undefined);
      if (stream && stream.status !== 200) throw new Error(`watch answered ${stream.status}: ${stream.body()}`);
      await stream?.ended;
      if (watching) await new Promise((r) => setTimeout(r, 200));
    }
  })();

  const apis = servers.map((s) => { const c = ApiClient.fromKubeconfig(s.kubeconfigPath); clients.push(c); return c; });
  const acked = new Map<string, number>();
  let writing = true;
  const writer = async (w: number) => {
    for (let i = 0; writing; i++) {
      const name = `w-${w}-${i}`;
      try {
        const r = await apis[(w + i) % apis.length]!.post(FAILOVER_COLLECTION, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { i: String(i) } }, { timeoutMs: 10_000 });
        if (r.status === 201) acked.set(name, Date.now());
      } catch { /* the dead server: not acknowledged */ }
      await new Promise((r) => setTimeout(r, 30));
    }
  };
  const writers = Array.from({ length: 4 }, (_, w) => writer(w));

  const notReady = new Set<string>();
  let polling = true;
  const nodePoll = (async () => {
    while (polling) {
      const r = await nodesVia.request('GET', '/api/v1/nodes').catch(() => undefined);
      for (const n of (r?.status === 200 ? r.json().items : []) as any[]) {
        const ready = (n.status?.conditions ?? []).find((c: any) => c.type === 'Ready');
        if (ready?.status !== 'True') notReady.add(`${n.metadata.name}: Ready=${ready?.status} (${ready?.reason})`);
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  })();

  await eventually(async () => acked.size >= 20, 'writes before the kill', 60_000);
  return {
    acked,
    ackedAfter: (since) => [...acked.values()].filter((t) => t > since + 1000).length,
    async finish(stored) {
      writing = false;
      await Promise.all(writers);
      polling = false;
      await nodePoll;
      const have = await stored();
      const lost = [...acked.keys()].filter((n) => !have.has(n));
      assert.deepEqual(lost, [], `${lost.length} acknowledged writes lost of ${acked.size}`);
      await eventually(async () => [...acked.keys()].every((n) => watched.has(n)), 'the watch to have seen every acknowledged write', 30_000,
        () => `not seen: ${[...acked.keys()].filter((n) => !watched.has(n)).slice(0, 10).join(', ')}`);
      watching = false;
      stream?.close();
      await watchLoop;
      assert.deepEqual([...notReady], [], 'no node turned NotReady');
    },
  };
}

/** A server's id (its data dir's `server/id`), the suffix of its leader-election identity. */
export const serverId = (s: TestServer): string => readFileSync(join(s.dataDir, 'server', 'id'), 'utf8').trim();

/** The holder and transitions of a kube-system Lease (the loops' leader elections), read through `s`. */
export async function holderOf(s: TestServer, lease: string): Promise<{ holder: string; transitions: number } | undefined> {
  const r = await s.request('GET', `/apis/coordination.k8s.io/v1/namespaces/kube-system/leases/${lease}`);
  if (r.status !== 200) return undefined;
  const spec = r.json().spec ?? {};
  return { holder: spec.holderIdentity ?? '', transitions: spec.leaseTransitions ?? 0 };
}

/** Which of `among` holds `lease`. */
export async function serverHolding(s: TestServer, lease: string, among: TestServer[]): Promise<TestServer | undefined> {
  const h = await holderOf(s, lease);
  return h && among.find((x) => h.holder.endsWith(`_${serverId(x)}`));
}
