// EndpointSlices and Endpoints for Services, against the real in-process API: ready, not-ready and
// terminating pods, named target ports resolved per pod, labels and ownership, the 100-endpoint slice
// limit, the empty placeholder slice, mirroring of selector-less Services, and clean-up on delete.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { Resources } from '../../src/client/types.js';
import { startEndpointsController } from '../../src/controllers/endpoints.js';
import { startControllerEnv, eventually, type ControllerEnv } from '../helpers/controller-env.js';

const NS = 'default';
type Obj = KObject & Record<string, any>;

async function env(t: Parameters<typeof startControllerEnv>[0]): Promise<ControllerEnv> {
  const e = await startControllerEnv(t);
  await e.run(startEndpointsController);
  return e;
}

async function service(e: ControllerEnv, name: string, spec: Record<string, unknown>, labels?: Record<string, string>): Promise<Obj> {
  return e.api.client.create(Resources.services, NS, { apiVersion: 'v1', kind: 'Service', metadata: { name, labels }, spec });
}

interface PodOpts { ip?: string; ready?: boolean; node?: string; ports?: { name: string; containerPort: number }[]; labels?: Record<string, string>; finalizer?: boolean }

async function pod(e: ControllerEnv, name: string, o: PodOpts = {}): Promise<Obj> {
  const c = e.api.client;
  const p = await c.create<Obj>(Resources.pods, NS, {
    apiVersion: 'v1', kind: 'Pod',
    metadata: { name, labels: o.labels ?? { app: 'web' }, ...(o.finalizer ? { finalizers: ['test.skiff.io/hold'] } : {}) },
    spec: { containers: [{ name: 'c', image: 'busybox', ports: o.ports ?? [{ name: 'web', containerPort: 8080 }] }], ...(o.node ? { nodeName: o.node } : {}) },
  });
  if (!o.ip) return p;
  const next = structuredClone(p);
  next.status = {
    phase: 'Running', podIP: o.ip, podIPs: [{ ip: o.ip }],
    conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }],
  };
  return c.updateStatus(Resources.pods, NS, next);
}

async function slicesOf(e: ControllerEnv, svc: string): Promise<Obj[]> {
  const r = await e.api.client.list<Obj>(Resources.endpointSlices, NS, { labelSelector: `kubernetes.io/service-name=${svc}` });
  return r.items;
}

/** `eventually` for a value that is there once the loop has converged. */
async function until<T>(fn: () => Promise<T | undefined | null | false | 0>, what: string, ms = 5000): Promise<T> {
  return (await eventually(fn, ms, what)) as T;
}

const byPodName = (eps: any[]) => Object.fromEntries(eps.map((x) => [x.targetRef.name, x]));

test('a selected pod set becomes one EndpointSlice and one Endpoints object', async (t) => {
  const e = await env(t);
  const c = e.api.client;
  await c.create(Resources.nodes, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'n1', labels: { 'topology.kubernetes.io/zone': 'zone-a' } } });
  const svc = await service(e, 'web', { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'web' }] }, { tier: 'front' });
  await pod(e, 'ready', { ip: '10.42.0.1', node: 'n1' });
  await pod(e, 'unready', { ip: '10.42.0.2', ready: false });
  await pod(e, 'no-ip');
  await pod(e, 'other', { ip: '10.42.0.9', labels: { app: 'db' } });
  await pod(e, 'leaving', { ip: '10.42.0.3', finalizer: true });
  await c.delete(Resources.pods, NS, 'leaving');

  const slice = await until(async () => {
    const s = await slicesOf(e, 'web');
    return s.length === 1 && s[0]!.endpoints?.length === 3 && byPodName(s[0]!.endpoints).leaving?.conditions.terminating ? s[0] : undefined;
  }, 'slice with three endpoints, one terminating');
  assert.equal(slice.addressType, 'IPv4');
  assert.deepEqual(slice.metadata.labels, {
    tier: 'front', 'kubernetes.io/service-name': 'web', 'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
  });
  assert.match(slice.metadata.name!, /^web-[a-z0-9]{5}$/);
  assert.deepEqual(slice.metadata.ownerReferences, [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: svc.metadata.uid, controller: true, blockOwnerDeletion: true }]);
  assert.deepEqual(slice.ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);
  const eps = byPodName(slice.endpoints);
  assert.deepEqual(eps.ready.addresses, ['10.42.0.1']);
  assert.deepEqual(eps.ready.conditions, { ready: true, serving: true, terminating: false });
  assert.equal(eps.ready.nodeName, 'n1');
  assert.equal(eps.ready.zone, 'zone-a');
  assert.equal(eps.ready.targetRef.kind, 'Pod');
  assert.deepEqual(eps.unready.conditions, { ready: false, serving: false, terminating: false });
  assert.deepEqual(eps.leaving.conditions, { ready: false, serving: true, terminating: true });

  // The slice can be current while the Endpoints object still shows an earlier pass (the loop writes
  // the slices first): wait until it no longer lists the terminating pod as an address.
  const ep = await until(async () => {
    const got = await c.get<Obj>(Resources.endpoints, NS, 'web');
    return got?.subsets?.[0]?.addresses?.every((a: any) => a.targetRef?.name !== 'leaving') ? got : undefined;
  }, 'Endpoints without the terminating pod', 30_000);
  assert.deepEqual(ep.metadata.labels, { tier: 'front' });
  assert.equal(ep.subsets.length, 1);
  assert.deepEqual(ep.subsets[0].addresses.map((a: any) => [a.ip, a.nodeName, a.targetRef.name]), [['10.42.0.1', 'n1', 'ready']]);
  assert.deepEqual(ep.subsets[0].notReadyAddresses.map((a: any) => a.ip), ['10.42.0.2'], 'terminating pods are not listed');
  assert.deepEqual(ep.subsets[0].ports, [{ name: 'http', port: 8080, protocol: 'TCP' }]);

  // Readiness flips follow.
  const unready = await c.get<Obj>(Resources.pods, NS, 'unready');
  const flipped = structuredClone(unready!);
  flipped.status.conditions = [{ type: 'Ready', status: 'True' }];
  await c.updateStatus(Resources.pods, NS, flipped);
  await eventually(async () => (await c.get<Obj>(Resources.endpoints, NS, 'web'))?.subsets?.[0]?.addresses?.length === 2, 30_000, 'pod now ready');
  await eventually(async () => byPodName((await slicesOf(e, 'web'))[0]!.endpoints).unready.conditions.ready === true, 30_000, 'slice condition');
});

test('pods resolving a named port differently land in different slices and subsets', async (t) => {
  const e = await env(t);
  await service(e, 'web', { selector: { app: 'web' }, ports: [{ name: 'http', port: 80, targetPort: 'web' }] });
  await pod(e, 'a', { ip: '10.42.0.1' });
  await pod(e, 'b', { ip: '10.42.0.2', ports: [{ name: 'web', containerPort: 9090 }] });
  const slices = await until(async () => { const s = await slicesOf(e, 'web'); return s.length === 2 ? s : undefined; }, 'two slices');
  assert.deepEqual(slices.map((s) => s.ports[0].port).sort(), [8080, 9090]);
  const ep = await until(async () => { const x = await e.api.client.get<Obj>(Resources.endpoints, NS, 'web'); return x?.subsets?.length === 2 ? x : undefined; }, 'two subsets');
  assert.deepEqual(ep.subsets.map((s: any) => [s.addresses[0].ip, s.ports[0].port]).sort(), [['10.42.0.1', 8080], ['10.42.0.2', 9090]]);
});

test('a Service selecting nothing has one empty placeholder slice and Endpoints without subsets', async (t) => {
  const e = await env(t);
  await service(e, 'empty', { selector: { app: 'nothing' }, ports: [{ port: 80 }] });
  const [slice] = await until(async () => { const s = await slicesOf(e, 'empty'); return s.length === 1 ? s : undefined; }, 'placeholder');
  assert.deepEqual(slice!.endpoints ?? [], []);
  assert.equal(slice!.ports, undefined);
  const ep = await until(() => e.api.client.get<Obj>(Resources.endpoints, NS, 'empty'), 'Endpoints');
  assert.equal(ep.subsets, undefined);
});

test('more than 100 endpoints are split across slices', async (t) => {
  const e = await env(t);
  await service(e, 'big', { selector: { app: 'big' }, ports: [{ port: 80, targetPort: 8080 }] });
  await Promise.all(Array.from({ length: 150 }, (_, i) => pod(e, `big-${i}`, { ip: `10.42.${Math.floor(i / 200)}.${(i % 200) + 1}`, labels: { app: 'big' } })));
  // Like Kubernetes' reconciler, the controller creates the new slices before it deletes the empty
  // placeholder: wait for that to settle too, not only for the 150 endpoints to appear.
  const slices = await until(async () => {
    const s = await slicesOf(e, 'big');
    return s.reduce((n, x) => n + (x.endpoints?.length ?? 0), 0) === 150 && s.every((x) => x.endpoints?.length) ? s : undefined;
  }, '150 endpoints in full slices', 30_000);
  assert.deepEqual(slices.map((s) => s.endpoints.length).sort((a, b) => a - b), [50, 100]);
  assert.equal(new Set(slices.flatMap((s) => s.endpoints.map((x: any) => x.targetRef.name))).size, 150, 'each pod once');
});

test('Services without a selector get their Endpoints mirrored; the kubernetes Service gets its own slice', async (t) => {
  const e = await env(t);
  const c = e.api.client;
  await service(e, 'external', { ports: [{ name: 'pg', port: 5432 }] });
  await c.create(Resources.endpoints, NS, {
    apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'external' },
    subsets: [{ addresses: [{ ip: '192.168.1.10' }], notReadyAddresses: [{ ip: '192.168.1.11' }], ports: [{ name: 'pg', port: 5432 }] }],
  });
  const [mirrored] = await until(async () => { const s = await slicesOf(e, 'external'); return s.length === 1 ? s : undefined; }, 'mirrored slice');
  assert.equal(mirrored!.metadata.labels!['endpointslice.kubernetes.io/managed-by'], 'endpointslicemirroring-controller.k8s.io');
  assert.deepEqual(mirrored!.endpoints.map((x: any) => [x.addresses[0], x.conditions.ready]), [['192.168.1.10', true], ['192.168.1.11', false]]);
  assert.deepEqual(mirrored!.ports, [{ name: 'pg', port: 5432, protocol: 'TCP' }]);
  assert.equal(await c.get(Resources.endpoints, NS, 'external').then((x: any) => x.subsets.length), 1, 'user Endpoints untouched');

  await service(e, 'kubernetes', { ports: [{ name: 'https', port: 443, targetPort: 6443 }] });
  await c.create(Resources.endpoints, NS, {
    apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'kubernetes', labels: { 'endpointslice.kubernetes.io/skip-mirror': 'true' } },
    subsets: [{ addresses: [{ ip: '10.0.0.5' }], ports: [{ name: 'https', port: 6443 }] }],
  });
  const api = await until(() => c.get<Obj>(Resources.endpointSlices, NS, 'kubernetes'), 'kubernetes slice');
  assert.deepEqual(api.metadata.labels, { 'kubernetes.io/service-name': 'kubernetes' });
  assert.deepEqual(api.endpoints.map((x: any) => x.addresses[0]), ['10.0.0.5']);
  assert.deepEqual(api.ports, [{ name: 'https', port: 6443, protocol: 'TCP' }]);
});

test('deleting a Service removes its Endpoints and slices', async (t) => {
  const e = await env(t);
  const c = e.api.client;
  await service(e, 'web', { selector: { app: 'web' }, ports: [{ port: 80 }] });
  await pod(e, 'a', { ip: '10.42.0.1' });
  await eventually(async () => (await slicesOf(e, 'web')).length === 1 && await c.get(Resources.endpoints, NS, 'web'), 30_000, 'created');
  await c.delete(Resources.services, NS, 'web');
  await eventually(async () => (await slicesOf(e, 'web')).length === 0 && !(await c.get(Resources.endpoints, NS, 'web')), 30_000, 'removed');
});

test('Endpoints written before their Service are kept', async (t) => {
  const e = await env(t);
  const c = e.api.client;
  await c.create(Resources.endpoints, NS, {
    apiVersion: 'v1', kind: 'Endpoints', metadata: { name: 'early' },
    subsets: [{ addresses: [{ ip: '192.168.1.20' }], ports: [{ port: 80 }] }],
  });
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(await c.get(Resources.endpoints, NS, 'early'), 'not removed for lack of a Service');
  await service(e, 'early', { ports: [{ port: 80 }] });
  await until(async () => { const s = await slicesOf(e, 'early'); return s.length === 1 ? s : undefined; }, 'mirrored once the Service exists');
});
