// The fleet's pure parts: Cluster status from heartbeats (Ready/Offline, grace after a manager
// restart, lastSeen written at a bounded rate), registration tokens, the proxy's path and header
// rewriting (credentials dropped, impersonation added), ClusterGroup counts, node sums, the status table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { desiredStatus, type StatusTiming } from '../../src/fleet/status.js';
import { newFleetToken, parseFleetToken, bearerOf, verifyFleetBearer } from '../../src/fleet/tokens.js';
import { siteHeaders, siteTarget } from '../../src/fleet/proxy.js';
import { clusterGroupStatus } from '../../src/fleet/cluster-groups.js';
import { formatCpu, formatMemory, nodeReport } from '../../src/fleet/site.js';
import { parseClusterLabels, validLabels } from '../../src/fleet/labels.js';
import { statusTable } from '../../src/cli/fleet-command.js';
import { fleetCrds } from '../../src/fleet/api.js';
import type { Report } from '../../src/fleet/protocol.js';
import { caHash } from '../../src/pki/token.js';

const T0 = Date.parse('2026-12-05T10:00:00Z');
const timing = (now: number, extra: Partial<StatusTiming> = {}): StatusTiming => ({
  now, graceMs: 40_000, managerStartMs: T0 - 3_600_000, lastSeenResolutionMs: 60_000, ...extra,
});
const report: Report = { version: 'v1.32.4+skiff', labels: { region: 'eu' }, nodes: { ready: 2, total: 3 }, capacity: { cpu: '8', memory: '16Gi', pods: '330' } };
const ready = (s: any) => s.conditions.find((c: any) => c.type === 'Ready');

test('a heartbeat makes a Cluster Ready with its report; a quiet one is Offline after the grace period', () => {
  const a = desiredStatus(undefined, { lastSeenMs: T0, report }, timing(T0));
  assert.equal(a.changed, true);
  assert.equal(ready(a.status).status, 'True');
  assert.deepEqual(a.status.display, { nodes: '2/3', state: 'Ready' });
  assert.equal(a.status.lastSeen, '2026-12-05T10:00:00Z');
  assert.equal(a.status.capacity?.memory, '16Gi');
  // Checked again when the grace period would end.
  assert.equal(a.recheckMs, 40_001);

  const b = desiredStatus(a.status, { lastSeenMs: T0, report }, timing(T0 + 40_001));
  assert.equal(ready(b.status).status, 'False');
  assert.equal(b.status.display?.state, 'Offline');
  assert.equal(b.status.conditions?.find((c) => c.type === 'Offline')?.status, 'True');
  assert.match(ready(b.status).message, /no heartbeat for 40 s \(grace 40 s\)/);
  assert.equal(b.recheckMs, undefined, 'an Offline cluster waits for its site, not a timer');
  assert.equal(ready(b.status).lastTransitionTime, '2026-12-05T10:00:40Z');

  const c = desiredStatus(b.status, { lastSeenMs: T0 + 50_000, report }, timing(T0 + 50_000));
  assert.equal(ready(c.status).status, 'True');
  assert.equal(c.status.conditions?.find((x) => x.type === 'Offline')?.status, 'False');
});

test('heartbeats in between write nothing; lastSeen is refreshed once per resolution', () => {
  const a = desiredStatus(undefined, { lastSeenMs: T0, report }, timing(T0));
  const b = desiredStatus(a.status, { lastSeenMs: T0 + 15_000, report }, timing(T0 + 15_000));
  assert.equal(b.changed, false, 'a heartbeat alone is not a write');
  assert.ok(b.recheckMs! <= 45_000);
  const c = desiredStatus(a.status, { lastSeenMs: T0 + 60_000, report }, timing(T0 + 60_000));
  assert.equal(c.changed, true);
  assert.equal(c.status.lastSeen, '2026-12-05T10:01:00Z');
  // A report change is written at once, with a fresh lastSeen.
  const d = desiredStatus(a.status, { lastSeenMs: T0 + 5_000, report: { ...report, nodes: { ready: 3, total: 3 } } }, timing(T0 + 5_000));
  assert.equal(d.changed, true);
  assert.equal(d.status.display?.nodes, '3/3');
  assert.equal(d.status.lastSeen, '2026-12-05T10:00:05Z');
});

test('after a manager restart a Ready cluster keeps its state for one grace period before it is Offline', () => {
  const before = desiredStatus(undefined, { lastSeenMs: T0, report }, timing(T0)).status;
  const start = T0 + 100_000;
  const t = (now: number) => timing(now, { managerStartMs: start });
  const a = desiredStatus(before, {}, t(start + 1000));
  assert.equal(a.changed, false, 'nothing flips while the site may still reconnect');
  assert.equal(a.recheckMs, 39_001);
  const b = desiredStatus(before, {}, t(start + 41_000));
  assert.equal(ready(b.status).status, 'False');
});

test('a registered site that never connected is Pending (Ready Unknown)', () => {
  const registered = { identity: { secretHash: 'x', certificateFingerprint: 'y', registeredAt: '2026-12-05T10:00:00Z' } };
  const a = desiredStatus(registered, {}, timing(T0 + 1000));
  assert.equal(ready(a.status).status, 'Unknown');
  assert.equal(a.status.display?.state, 'Pending');
  const b = desiredStatus(registered, {}, timing(T0 + 100_000));
  assert.equal(b.status.display?.state, 'Pending');
  assert.equal(b.status.identity?.certificateFingerprint, 'y', 'the identity binding is kept');
});

test('registration tokens: K10 form pinning the CA, only a hash stored, constant-time check', () => {
  const ca = '-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n';
  const t = newFleetToken(ca);
  assert.match(t.token, new RegExp(`^K10${caHash(ca)}::fleet-${t.id}:[0-9a-f]{48}$`));
  const parsed = parseFleetToken(t.token);
  const data = { [t.id]: t.storedHash };
  assert.ok(!Buffer.from(t.storedHash, 'base64').toString().includes(parsed.password), 'the secret is not stored');
  assert.equal(verifyFleetBearer(bearerOf(parsed), data), true);
  assert.equal(verifyFleetBearer(bearerOf({ ...parsed, password: parsed.password.replace(/.$/, 'z') }), data), false);
  assert.equal(verifyFleetBearer(`fleet-zzzzzz:${parsed.password}`, data), false);
  assert.equal(verifyFleetBearer('garbage', data), false);
  assert.equal(verifyFleetBearer(bearerOf(parsed), undefined), false);
  assert.throws(() => parseFleetToken('plainpassword'), /not a fleet registration token/);
  assert.throws(() => parseFleetToken(`K10${caHash(ca)}::server:abc`), /not a fleet registration token/);
});

test('proxy: the site gets the path after /proxy, without the caller\'s credentials, as the caller', () => {
  const p = '/apis/fleet.skiff.io/v1alpha1/clusters/site-3/proxy';
  assert.equal(siteTarget(`${p}/api/v1/pods?watch=1`, 'site-3'), '/api/v1/pods?watch=1');
  assert.equal(siteTarget(p, 'site-3'), '/');
  assert.equal(siteTarget(`${p}?x=1`, 'site-3'), '/?x=1');
  assert.throws(() => siteTarget(`${p}x/api`, 'site-3'), /could not find/);
  assert.throws(() => siteTarget('/apis/fleet.skiff.io/v1alpha1/clusters/site-4/proxy/api', 'site-3'), /could not find/);
  const h = siteHeaders([
    'Authorization', 'Bearer secret', 'Impersonate-User', 'root', 'Impersonate-Group', 'system:masters', 'Accept', 'application/json',
    'X-Stream-Protocol-Version', 'v4.channel.k8s.io', 'X-Stream-Protocol-Version', 'v3.channel.k8s.io', 'Cookie', 'c=1', 'Upgrade', 'SPDY/3.1', 'Connection', 'Upgrade',
  ], { name: 'alice', groups: ['dev', 'system:authenticated'], extra: { scopes: ['a b'] } }, true);
  assert.equal(h.Authorization, undefined);
  assert.equal(h.Cookie, undefined);
  assert.equal(h['Impersonate-User'], 'alice');
  assert.deepEqual(h['Impersonate-Group'], ['dev']);
  assert.deepEqual(h['Impersonate-Extra-scopes'], ['a b']);
  assert.deepEqual(h['X-Stream-Protocol-Version'], ['v4.channel.k8s.io', 'v3.channel.k8s.io'], 'repeated headers stay separate (SPDY needs them)');
  assert.equal(h.Upgrade, 'SPDY/3.1');
  assert.equal(h.Connection, 'Upgrade');
  assert.equal(siteHeaders(['Upgrade', 'x'], { name: 'bob', groups: [] }, false).Connection, 'close');
});

test('ClusterGroup status counts the clusters its selector picks and names the not-Ready ones', () => {
  const cluster = (name: string, region: string, r: string) => ({
    apiVersion: 'fleet.skiff.io/v1alpha1', kind: 'Cluster', metadata: { name, labels: { region } },
    status: { conditions: [{ type: 'Ready' as const, status: r as 'True' }] },
  });
  const clusters = [cluster('a', 'eu', 'True'), cluster('b', 'eu', 'False'), cluster('c', 'us', 'True')];
  const s = clusterGroupStatus({ apiVersion: 'x', kind: 'ClusterGroup', metadata: { name: 'eu' }, spec: { selector: { matchLabels: { region: 'eu' } } } }, clusters);
  assert.deepEqual(s, { clusterCount: 2, nonReadyClusterCount: 1, nonReadyClusters: ['b'], display: { readyClusters: '1/2' } });
  const none = clusterGroupStatus({ apiVersion: 'x', kind: 'ClusterGroup', metadata: { name: 'n' } }, clusters);
  assert.equal(none.clusterCount, 0, 'no selector picks nothing');
});

test('a site reports its nodes summed; labels are checked by the Kubernetes rules', () => {
  const node = (ready: string, cpu: string, memory: string) => ({
    apiVersion: 'v1', kind: 'Node', metadata: { name: 'n' },
    status: { capacity: { cpu, memory, pods: '110' }, conditions: [{ type: 'Ready', status: ready }] },
  });
  const r = nodeReport([node('True', '2', '4Gi'), node('False', '500m', '1Gi'), node('True', 'bogus', '512Mi')], 'v', { a: 'b' });
  assert.deepEqual(r.nodes, { ready: 2, total: 3 });
  assert.deepEqual(r.capacity, { cpu: '2500m', memory: '5632Mi', pods: '330' });
  assert.equal(formatCpu(4000), '4');
  assert.equal(formatMemory(2 ** 30 * 3), '3Gi');
  assert.equal(formatMemory(1000), '1000');
  assert.deepEqual(parseClusterLabels(['region=eu', 'tier=edge']), { region: 'eu', tier: 'edge' });
  assert.throws(() => parseClusterLabels(['noequals']), /expected key=value/);
  assert.throws(() => parseClusterLabels(['bad key=x']), /--cluster-label: labels/);
  assert.match(validLabels({ a: 'x'.repeat(64) }) ?? '', /must be no more than 63/);
  assert.equal(validLabels({ 'example.com/a': 'b' }), undefined);
});

test('fleet status table and the CRDs\' printer columns', () => {
  const out = statusTable([
    { apiVersion: 'x', kind: 'Cluster', metadata: { name: 'b', labels: { region: 'us', 'fleet.skiff.io/hollow-index': '1' } },
      status: { lastSeen: '2026-12-05T09:59:00Z', version: 'v1', display: { nodes: '1/1', state: 'Offline' }, conditions: [{ type: 'Ready', status: 'False' }] } },
    { apiVersion: 'x', kind: 'Cluster', metadata: { name: 'a' }, status: { lastSeen: '2026-12-05T09:59:50Z', version: 'v1', display: { nodes: '3/3', state: 'Ready', readyBundles: '2/3' }, conditions: [{ type: 'Ready', status: 'True' }],
        summary: { desiredReady: 3, ready: 2, notReady: 1, pending: 0, waitApplied: 0, errApplied: 0, offline: 0 } } },
  ], T0);
  const lines = out.split('\n');
  assert.match(lines[0]!, /^NAME\s+READY\s+STATE\s+NODES\s+VERSION\s+LAST-SEEN\s+BUNDLES-READY\s+LABELS$/);
  assert.match(lines[1]!, /^a\s+True\s+Ready\s+3\/3\s+v1\s+10s\s+2\/3\s+<none>$/);
  assert.match(lines[2]!, /^b\s+False\s+Offline\s+1\/1\s+v1\s+60s\s+-\s+region=us$/);
  assert.match(out, /2 clusters: 1 ready, 1 offline, 0 other; bundle deployments: 2 of 3 ready/);
  const cluster = fleetCrds().find((c) => c.metadata.name === 'clusters.fleet.skiff.io') as any;
  assert.deepEqual(cluster.spec.versions[0].additionalPrinterColumns.map((c: any) => c.name), ['Ready', 'Nodes', 'Version', 'Last-Seen', 'Bundles-Ready', 'State', 'Age']);
  assert.equal(cluster.spec.scope, 'Cluster');
  assert.deepEqual(cluster.spec.versions[0].subresources, { status: {} });
  const names = fleetCrds().map((c) => c.metadata.name).sort();
  assert.deepEqual(names, ['bundledeployments.fleet.skiff.io', 'bundles.fleet.skiff.io', 'clustergroups.fleet.skiff.io', 'clusters.fleet.skiff.io', 'gitrepos.fleet.skiff.io']);
});
