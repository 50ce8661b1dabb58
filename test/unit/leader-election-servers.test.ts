// Several servers on one API: the controller manager runs elected loops on one server only (and the
// API server's own loops on all), and the `kubernetes` endpoints list every server whose identity
// Lease is fresh (src/server/controller-manager.ts, src/server/kubernetes-endpoints.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startLocalApi } from '../helpers/local-api.js';
import { eventually } from '../helpers/controller-env.js';
import { startControllerManager, type ControllerStarter } from '../../src/server/controller-manager.js';
import { apiServerLeaseName, kubernetesEndpoints, startApiServerEndpoints, APISERVER_IDENTITY_LABEL } from '../../src/server/kubernetes-endpoints.js';
import { Resources, type ApiClient } from '../../src/client/types.js';
import type { KObject } from '../../src/api/object.js';

const TIMING = { leaseDurationMs: 800, renewDeadlineMs: 500, retryPeriodMs: 100 };

test('elected loops run on one manager at a time, unelected ones on every manager, and move when the leader stops', async (t) => {
  const api = await startLocalApi(t);
  const runningOn = new Map<string, Set<string>>();
  const starter = (loop: string, server: string): ControllerStarter => () => {
    const set = runningOn.get(loop) ?? new Set();
    runningOn.set(loop, set);
    set.add(server);
    return { name: loop, stop: async () => { set.delete(server); } };
  };
  const manager = (server: string) => startControllerManager(api.objects, {
    replicaset: starter('replicaset', server), scheduler: starter('scheduler', server), aggregation: starter('aggregation', server),
  }, { unelected: ['aggregation'], leaderElection: { identity: `host_${server}`, ...TIMING } });
  const a = manager('a');
  t.after(() => a.stop());
  await eventually(() => a.leading().length === 2, 5000, 'a leads both leases');
  const b = manager('b');
  t.after(() => b.stop());
  await eventually(() => runningOn.get('aggregation')?.size === 2, 5000, 'the API server loop on both');
  await new Promise((r) => setTimeout(r, 500));
  assert.deepEqual([...runningOn.get('replicaset')!], ['a']);
  assert.deepEqual([...runningOn.get('scheduler')!], ['a']);
  assert.deepEqual(b.leading(), []);
  assert.ok(b.running(), 'a standby counts as running (its health checks pass)');
  await a.stop();
  await eventually(() => b.leading().length === 2, 5000, 'b takes both leases');
  assert.deepEqual([...runningOn.get('replicaset')!], ['b']);
  assert.deepEqual([...runningOn.get('scheduler')!], ['b']);
  assert.deepEqual([...runningOn.get('aggregation')!], ['b']);
});

test('a disabled loop stays off on every server; without leader election every loop starts at once', async (t) => {
  const api = await startLocalApi(t);
  const started: string[] = [];
  const s = (name: string): ControllerStarter => () => { started.push(name); return { name, stop: async () => {} }; };
  const m = startControllerManager(api.objects, { scheduler: s('scheduler'), replicaset: s('replicaset') }, { disabled: ['scheduler'] });
  t.after(() => m.stop());
  assert.deepEqual(started, ['replicaset']);
  // Elected, a server does not stand for the Lease of a loop it has disabled.
  const elected = startControllerManager(api.objects, { scheduler: s('scheduler'), replicaset: s('replicaset') },
    { disabled: ['scheduler'], leaderElection: { identity: 'host_x', ...TIMING } });
  t.after(() => elected.stop());
  await eventually(() => elected.leading().includes('kube-controller-manager'), 5000, 'the controller-manager lease');
  assert.deepEqual(elected.leading(), ['kube-controller-manager']);
  assert.equal(await api.client.get(Resources.leases, 'kube-system', 'kube-scheduler'), undefined);
});

function hangable(inner: ApiClient): { client: ApiClient; hang(): void } {
  let hanging = false;
  const client = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return (...args: unknown[]) => (hanging ? new Promise(() => {}) : (v as (...a: unknown[]) => unknown).apply(target, args));
    },
  });
  return { client, hang: () => { hanging = true; } };
}

const subsetsOf = async (client: ApiClient) => ((await client.get(Resources.endpoints, 'default', 'kubernetes')) as KObject & { subsets?: unknown[] } | undefined)?.subsets;

test('the kubernetes endpoints list every live server, one subset per port, and drop a dead or leaving one', async (t) => {
  const api = await startLocalApi(t);
  const timing = { intervalMs: 100, ttlMs: 600 };
  const one = startApiServerEndpoints({ client: api.client, serverId: 'one', hostname: 'h', address: { ip: '10.0.0.1', port: 6443 }, ...timing });
  const two = hangable(api.client);
  const second = startApiServerEndpoints({ client: two.client, serverId: 'two', hostname: 'h', address: { ip: '10.0.0.2', port: 6443 }, ...timing });
  const three = startApiServerEndpoints({ client: api.client, serverId: 'three', hostname: 'h', address: { ip: '127.0.0.1', port: 7443 }, ...timing });
  t.after(() => Promise.all([one.stop(), three.stop()]));
  const all = kubernetesEndpoints([{ ip: '10.0.0.2', port: 6443 }, { ip: '127.0.0.1', port: 7443 }, { ip: '10.0.0.1', port: 6443 }]) as KObject & { subsets: unknown[] };
  assert.deepEqual(all.subsets, [
    { addresses: [{ ip: '10.0.0.1' }, { ip: '10.0.0.2' }], ports: [{ name: 'https', port: 6443, protocol: 'TCP' }] },
    { addresses: [{ ip: '127.0.0.1' }], ports: [{ name: 'https', port: 7443, protocol: 'TCP' }] },
  ]);
  await eventually(async () => JSON.stringify(await subsetsOf(api.client)) === JSON.stringify(all.subsets), 5000, 'all three listed');
  const lease = (await api.client.get(Resources.leases, 'kube-system', apiServerLeaseName('two'))) as KObject & { spec: Record<string, unknown> };
  assert.equal(lease.metadata.labels?.[APISERVER_IDENTITY_LABEL], 'kube-apiserver');
  assert.match(lease.metadata.name!, /^apiserver-[a-z2-7]{26}$/);
  assert.match(String(lease.spec.holderIdentity), /^kube-apiserver-[a-z2-7]{26}_[0-9a-f-]{36}$/);
  // "two" dies (its calls never return): it drops out once its Lease is older than the TTL.
  two.hang();
  const withoutTwo = (kubernetesEndpoints([{ ip: '10.0.0.1', port: 6443 }, { ip: '127.0.0.1', port: 7443 }]) as KObject & { subsets: unknown[] }).subsets;
  await eventually(async () => JSON.stringify(await subsetsOf(api.client)) === JSON.stringify(withoutTwo), 5000, 'the dead server dropped');
  void second;
  // "three" leaves: at once, and its Lease is gone.
  await three.stop();
  assert.deepEqual(await subsetsOf(api.client), (kubernetesEndpoints([{ ip: '10.0.0.1', port: 6443 }]) as KObject & { subsets: unknown[] }).subsets);
  assert.equal(await api.client.get(Resources.leases, 'kube-system', apiServerLeaseName('three')), undefined);
  // The last server leaving stays listed (as kube-apiserver: never erase every address).
  await one.stop();
  assert.deepEqual(await subsetsOf(api.client), (kubernetesEndpoints([{ ip: '10.0.0.1', port: 6443 }]) as KObject & { subsets: unknown[] }).subsets);
});
