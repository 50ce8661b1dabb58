// The DNS controller wired to a real in-process API (informers, work queue, ConfigMap reload) and a
// real server on loopback: Services, EndpointSlices, Namespaces, Nodes and the skiff-dns ConfigMap
// become answers, and changes (a new endpoint, a deleted Service) show up without a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startLocalApi } from '../helpers/local-api.js';
import { Resources } from '../../src/client/types.js';
import { startClusterDns } from '../../src/agent/dns/controller.js';
import { ask } from '../helpers/dns-client.js';
import { eventually } from '../helpers/wait.js';

test('API objects become DNS answers and follow changes', async (t) => {
  const api = await startLocalApi(t, { namespaces: ['default', 'kube-system', 'team'] });
  const dir = mkdtempSync(join(tmpdir(), 'skiff-dns-ctl-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const resolv = join(dir, 'resolv.conf');
  writeFileSync(resolv, '');                       // air-gapped: no upstream
  const dns = startClusterDns({
    client: api.client, clusterDomain: 'cluster.local', clusterDns: '10.43.0.10', listenAddress: '127.0.0.1', port: 0,
    resolvConf: resolv, configReloadMs: 200,
  });
  t.after(() => dns.stop());
  const { port } = await dns.listening;
  const q = async (name: string, type = 'A') => {
    const r = await ask('127.0.0.1', port, name, type);
    return `${r.rcode} ${(r.answers ?? []).map((a: any) => (typeof a.data === 'string' ? a.data : a.data.target ?? JSON.stringify(a.data))).sort().join(',')}`.trim();
  };

  await api.client.create(Resources.services, 'team', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'web', namespace: 'team' },
    spec: { clusterIP: '10.43.0.50', ports: [{ name: 'http', port: 80, protocol: 'TCP' }] } } as any);
  await api.client.create(Resources.services, 'team', { apiVersion: 'v1', kind: 'Service', metadata: { name: 'db', namespace: 'team' },
    spec: { clusterIP: 'None', ports: [{ name: 'pg', port: 5432 }] } } as any);
  await api.client.create(Resources.endpointSlices, 'team', { apiVersion: 'discovery.k8s.io/v1', kind: 'EndpointSlice',
    metadata: { name: 'db-1', namespace: 'team', labels: { 'kubernetes.io/service-name': 'db' } }, addressType: 'IPv4',
    endpoints: [{ addresses: ['10.42.1.7'], hostname: 'db-0', conditions: { ready: true } }], ports: [{ name: 'pg', port: 5432, protocol: 'TCP' }] } as any);
  await api.client.create(Resources.nodes, undefined, { apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-a' } } as any);
  await api.client.patch(Resources.nodes, undefined, 'node-a', 'merge', { status: { addresses: [{ type: 'InternalIP', address: '192.168.7.10' }] } }, { subresource: 'status' });
  await api.client.create(Resources.configMaps, 'kube-system', { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'skiff-dns', namespace: 'kube-system' },
    data: { hosts: '192.0.2.44 printer.lan\n' } } as any);

  await eventually(async () => (await q('web.team.svc.cluster.local')) === 'NOERROR 10.43.0.50', 'the Service answered');
  await eventually(async () => (await q('db-0.db.team.svc.cluster.local')) === 'NOERROR 10.42.1.7', 'the StatefulSet-style endpoint answered');
  await eventually(async () => (await q('node-a')) === 'NOERROR 192.168.7.10', 'the node name answered');
  await eventually(async () => (await q('printer.lan')) === 'NOERROR 192.0.2.44', 'the ConfigMap host answered');
  assert.equal(await q('_pg._tcp.db.team.svc.cluster.local', 'SRV'), 'NOERROR db-0.db.team.svc.cluster.local');
  assert.equal(await q('team.svc.cluster.local'), 'NOERROR', 'an existing namespace is NODATA');
  assert.equal(await q('nons.svc.cluster.local'), 'NXDOMAIN');
  assert.equal(await q('www.example.org'), 'SERVFAIL', 'no upstream: SERVFAIL');

  await api.client.patch(Resources.endpointSlices, 'team', 'db-1', 'merge', { endpoints: [
    { addresses: ['10.42.1.7'], hostname: 'db-0', conditions: { ready: true } },
    { addresses: ['10.42.2.8'], hostname: 'db-1', conditions: { ready: true } }] });
  await eventually(async () => (await q('db.team.svc.cluster.local')) === 'NOERROR 10.42.1.7,10.42.2.8', 'the new endpoint answered');
  await api.client.delete(Resources.services, 'team', 'web');
  await eventually(async () => (await q('web.team.svc.cluster.local')) === 'NXDOMAIN', 'the deleted Service gone');
});

test('a port that cannot be bound is retried with back-off, never fatal; the server answers once it is free', async (t) => {
  const api = await startLocalApi(t, { namespaces: ['default', 'kube-system'] });
  const { createSocket } = await import('node:dgram');
  const blocker = createSocket('udp4');
  await new Promise<void>((r) => blocker.bind(0, '127.0.0.1', () => r()));
  const port = blocker.address().port;
  let attempts = 0;
  const dns = startClusterDns({
    client: api.client, clusterDomain: 'cluster.local', clusterDns: '10.43.0.10', listenAddress: '127.0.0.1', port,
    resolvConf: '/nonexistent', prepare: async () => { attempts++; },
  });
  t.after(() => dns.stop());
  let bound = false;
  void dns.listening.then(() => { bound = true; });
  await eventually(async () => attempts >= 2, 'a second bind attempt after the first failed', 30_000);
  assert.equal(bound, false, 'the port is still taken');
  await new Promise<void>((r) => blocker.close(() => r()));
  assert.deepEqual(await dns.listening, { address: '127.0.0.1', port });
  const r = await ask('127.0.0.1', port, 'ns.dns.cluster.local');
  assert.deepEqual(r.answers!.map((a: any) => a.data), ['10.43.0.10']);
});
