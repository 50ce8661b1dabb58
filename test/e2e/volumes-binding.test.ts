// PersistentVolume binding and volume-aware scheduling end to end, with real kubectl against
// `skiff server` and two hollow nodes (control plane only; the real agent mounting these volumes is
// covered by pods-features): a claim gets the smallest matching volume, a volume's node affinity
// steers its pod, a WaitForFirstConsumer claim is bound only after its pod's node is chosen, an
// unbound immediate claim keeps its pod pending with kube-scheduler's message, and a deleted claim
// releases a Retain volume.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, REPO_ROOT, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
let hollow: ChildProcess | undefined;
const NS = 'volumes';
const NODES = ['vol-0', 'vol-1'];

const k = async (args: string[], input?: string) => ok(await server.kubectl(args, { input }));
const json = async (args: string[]) => JSON.parse(await k([...args, '-o', 'json']));

const pinnedTo = (node: string) => ({ required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [node] }] }] } });
const pv = (name: string, size: string, extra: object = {}) => ({
  apiVersion: 'v1', kind: 'PersistentVolume', metadata: { name },
  spec: { capacity: { storage: size }, accessModes: ['ReadWriteOnce'], storageClassName: '', persistentVolumeReclaimPolicy: 'Retain', hostPath: { path: `/tmp/${name}` }, ...extra },
});
const pvc = (name: string, size: string, className: string) => ({
  apiVersion: 'v1', kind: 'PersistentVolumeClaim', metadata: { name, namespace: NS },
  spec: { accessModes: ['ReadWriteOnce'], storageClassName: className, resources: { requests: { storage: size } } },
});
const pod = (name: string, claim: string) => ({
  apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: NS },
  spec: { containers: [{ name: 'c', image: 'busybox' }], volumes: [{ name: 'v', persistentVolumeClaim: { claimName: claim } }] },
});
const apply = (...objs: object[]) => k(['apply', '-f', '-'], JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objs }));

before(async () => {
  server = await startServer();
  const token = readFileSync(join(server.dataDir, 'server', 'node-token'), 'utf8').trim();
  hollow = spawn(join(REPO_ROOT, 'bin', 'skiff'), ['hollow', '--server', server.url, '--token', token,
    '--data-dir', join(server.dataDir, 'hollow'), '--count', '2', '--name-prefix', 'vol-', '--pod-start-delay', '50'], { stdio: 'ignore' });
  await eventually(async () => (await k(['get', 'nodes', '--no-headers'])).split('\n').filter((l) => / Ready /.test(l)).length === 2, 'two Ready hollow nodes');
  await k(['create', 'namespace', NS]);
});

after(async () => {
  if (hollow && hollow.exitCode === null) hollow.kill('SIGKILL');
  await server?.dispose();
});
process.on('exit', () => { if (hollow && hollow.exitCode === null) hollow.kill('SIGKILL'); });

test('a claim gets the smallest matching volume; the volume\'s node affinity steers the pod', async () => {
  await apply(pv('vol-large', '5Gi'), pv('vol-small', '1Gi', { nodeAffinity: pinnedTo(NODES[1]!) }), pv('vol-fast', '1Gi', { storageClassName: 'fast' }));
  await apply(pvc('plain', '512Mi', ''));
  const claim = await eventually(async () => { const c = await json(['get', 'pvc', 'plain', '-n', NS]); return c.status?.phase === 'Bound' && c; }, 'the claim bound');
  assert.equal(claim.spec.volumeName, 'vol-small');
  assert.deepEqual(claim.status.capacity, { storage: '1Gi' });
  assert.equal(claim.metadata.annotations['pv.kubernetes.io/bind-completed'], 'yes');
  const vol = await eventually(async () => { const v = await json(['get', 'pv', 'vol-small']); return v.status?.phase === 'Bound' && v; }, 'the volume bound');
  assert.deepEqual([vol.spec.claimRef.namespace, vol.spec.claimRef.name, vol.spec.claimRef.uid], [NS, 'plain', claim.metadata.uid]);
  assert.match(await k(['get', 'pv', 'vol-small']), new RegExp(`vol-small\\s+1Gi\\s+RWO\\s+Retain\\s+Bound\\s+${NS}/plain`));
  assert.equal((await json(['get', 'pv', 'vol-large'])).status.phase, 'Available');

  await apply(pod('steered', 'plain'));
  const p = await eventually(async () => { const x = await json(['get', 'pod', 'steered', '-n', NS]); return x.spec.nodeName && x; }, 'the pod scheduled');
  assert.equal(p.spec.nodeName, NODES[1]);
});

test('WaitForFirstConsumer: the claim waits for its pod, then binds to a volume on the node chosen for it', async () => {
  await apply(
    { apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass', metadata: { name: 'local-disks' }, provisioner: 'kubernetes.io/no-provisioner', volumeBindingMode: 'WaitForFirstConsumer' },
    pv('disk-on-0', '2Gi', { storageClassName: 'local-disks', nodeAffinity: pinnedTo(NODES[0]!) }),
    pvc('late', '1Gi', 'local-disks'),
  );
  await eventually(async () => /waiting for first consumer to be created before binding/.test(await k(['describe', 'pvc', 'late', '-n', NS])), 'the WaitForFirstConsumer event');
  assert.equal((await json(['get', 'pvc', 'late', '-n', NS])).status.phase, 'Pending');
  await apply(pod('consumer', 'late'));
  const p = await eventually(async () => { const x = await json(['get', 'pod', 'consumer', '-n', NS]); return x.spec.nodeName && x; }, 'the pod scheduled');
  assert.equal(p.spec.nodeName, NODES[0]);
  const claim = await json(['get', 'pvc', 'late', '-n', NS]);
  assert.deepEqual([claim.status.phase, claim.spec.volumeName, claim.metadata.annotations['volume.kubernetes.io/selected-node']], ['Bound', 'disk-on-0', NODES[0]]);
});

test('the default local-path class provisions a volume pinned to the pod\'s node', async () => {
  assert.match(await k(['get', 'storageclass']), /local-path \(default\)\s+rancher\.io\/local-path\s+Delete\s+WaitForFirstConsumer/);
  await apply({ ...pvc('dyn', '100Mi', ''), spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '100Mi' } } } }, pod('dyn-user', 'dyn'));
  const p = await eventually(async () => { const x = await json(['get', 'pod', 'dyn-user', '-n', NS]); return x.spec.nodeName && x; }, 'the pod scheduled');
  const claim = await json(['get', 'pvc', 'dyn', '-n', NS]);
  assert.deepEqual([claim.spec.storageClassName, claim.status.phase, claim.spec.volumeName], ['local-path', 'Bound', `pvc-${claim.metadata.uid}`]);
  const vol = await json(['get', 'pv', claim.spec.volumeName]);
  assert.deepEqual(vol.spec.nodeAffinity, pinnedTo(p.spec.nodeName));
  assert.equal(vol.spec.persistentVolumeReclaimPolicy, 'Delete');
});

test('an unbound immediate claim keeps its pod pending with kube-scheduler\'s message', async () => {
  await apply(pvc('too-big', '50Gi', ''), pod('starved', 'too-big'));
  const events = await eventually(async () => {
    const out = await k(['get', 'events', '-n', NS, '--field-selector', 'involvedObject.name=starved', '-o', 'json']);
    return JSON.parse(out).items.find((e: any) => e.reason === 'FailedScheduling');
  }, 'a FailedScheduling event');
  assert.equal(events.message, '0/2 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/2 nodes are available: 2 Preemption is not helpful for scheduling.');
  assert.match(await k(['describe', 'pvc', 'too-big', '-n', NS]), /no persistent volumes available for this claim and no storage class is set/);
  // A volume that fits arrives: the claim binds and the pod is scheduled without being touched.
  await apply(pv('vol-huge', '64Gi'));
  await eventually(async () => (await json(['get', 'pod', 'starved', '-n', NS])).spec.nodeName, 'the pod scheduled after its claim bound');
});

test('deleting a claim releases its Retain volume', async () => {
  await k(['delete', 'pod', 'steered', '-n', NS, '--grace-period=0', '--force']);
  await k(['delete', 'pvc', 'plain', '-n', NS]);
  await eventually(async () => (await json(['get', 'pv', 'vol-small'])).status?.phase === 'Released', 'the volume Released');
  // A new claim does not take a released volume: its data belongs to the old claim.
  await apply(pvc('again', '1Gi', ''));
  await eventually(async () => (await json(['get', 'pvc', 'again', '-n', NS])).status?.phase === 'Bound', 'the new claim bound');
  assert.notEqual((await json(['get', 'pvc', 'again', '-n', NS])).spec.volumeName, 'vol-small');
});

test('a generic ephemeral volume gets a claim owned by its pod, bound on the pod\'s node, deleted with the pod', async () => {
  await apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'eph', namespace: NS }, spec: {
    containers: [{ name: 'c', image: 'busybox' }],
    volumes: [{ name: 'scratch', ephemeral: { volumeClaimTemplate: { metadata: { labels: { use: 'scratch' } },
      spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '10Mi' } } } } } }],
  } });
  const p = await eventually(async () => { const x = await json(['get', 'pod', 'eph', '-n', NS]); return x.spec.nodeName && x; }, 'the pod scheduled');
  const claim = await json(['get', 'pvc', 'eph-scratch', '-n', NS]);
  assert.deepEqual([claim.metadata.ownerReferences[0].uid, claim.metadata.labels.use, claim.spec.storageClassName, claim.status.phase],
    [p.metadata.uid, 'scratch', 'local-path', 'Bound']);
  assert.equal(claim.metadata.annotations['volume.kubernetes.io/selected-node'], p.spec.nodeName);
  await k(['delete', 'pod', 'eph', '-n', NS, '--grace-period=0', '--force']);
  await eventually(async () => (await server.kubectl(['get', 'pvc', 'eph-scratch', '-n', NS])).code !== 0, 'the claim deleted with its pod');
});
