// The ReplicaSet, DaemonSet and StatefulSet reconciles (their sync.ts) on their own: listers over a
// few objects in memory and a client that records writes; no API server, no SQLite.
// What the loops do as a whole against the real API is in replicaset-, daemonset- and
// statefulset-controller.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { KObject } from '../../src/api/object.js';
import { Expectations } from '../../src/controllers/expectations.js';
import { byControllerUid, orphansByNamespace } from '../../src/controllers/replicaset.js';
import {
  IDX_ORPHAN_PODS, IDX_PODS_BY_CONTROLLER, IDX_RS_BY_CONTROLLER, ReplicaSetSync,
} from '../../src/controllers/replicaset/sync.js';

import { DAEMONSET_OWNER_INDEX, DaemonSetSync } from '../../src/controllers/daemonset/sync.js';
import { STATEFULSET_OWNER_INDEX, StatefulSetSync } from '../../src/controllers/statefulset/sync.js';
import { controllerUidIndex } from '../../src/controllers/workload-pods.js';
import { listerOf, RecordingClient, recordedEvents } from '../helpers/in-memory.js';


type Obj = KObject & Record<string, any>;

const NOW = Date.parse('2026-01-01T12:00:00Z');

function replicaSet(replicas: number): Obj {
  return {
    apiVersion: 'apps/v1', kind: 'ReplicaSet', metadata: { name: 'web', namespace: 'default', uid: 'rs-uid', generation: 2 },
    spec: { replicas, selector: { matchLabels: { app: 'web' } }, template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
  };
}

function rsPod(name: string, o: { owned?: boolean; node?: string; ready?: boolean; phase?: string } = {}): Obj {
  return {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name, namespace: 'default', uid: `uid-${name}`, labels: { app: 'web' }, creationTimestamp: '2026-01-01T11:00:00Z',
      ...(o.owned === false ? {} : { ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web', uid: 'rs-uid', controller: true }] }),
    },
    spec: o.node ? { nodeName: o.node } : {},
    status: { phase: o.phase ?? 'Running', conditions: [{ type: 'Ready', status: o.ready ? 'True' : 'False', lastTransitionTime: '2026-01-01T11:30:00Z' }] },
  };
}

function rsSetup(rs: Obj, pods: Obj[]) {
  const client = new RecordingClient(new Map([['replicasets/default/web', rs as KObject]]));
  const expectations = new Expectations({ now: () => NOW });
  const sync = new ReplicaSetSync({
    client, events: recordedEvents(), expectations, burstReplicas: 500,
    listers: {
      sets: listerOf([rs], { [IDX_RS_BY_CONTROLLER]: byControllerUid }),
      pods: listerOf(pods, { [IDX_PODS_BY_CONTROLLER]: byControllerUid, [IDX_ORPHAN_PODS]: orphansByNamespace }),
    },
  });
  return { client, expectations, sync };
}

test('ReplicaSet: a matching orphan is adopted, the missing pod created, and status counts both', async () => {
  const { client, expectations, sync } = rsSetup(replicaSet(3), [rsPod('a', { ready: true }), rsPod('stray', { owned: false })]);
  await sync.reconcile('default/web');
  const [adopt] = client.writes('patch', 'pods');
  assert.equal(adopt!.name, 'stray');
  assert.equal(adopt!.body.metadata.ownerReferences[0].uid, 'rs-uid');
  const created = client.writes('create', 'pods');
  assert.equal(created.length, 1);
  assert.equal(created[0]!.body.metadata.generateName, 'web-');
  assert.equal(client.writes('updateStatus', 'replicasets')[0]!.body.status.replicas, 2);
  assert.equal(expectations.satisfied('default/web'), false, 'the creation is expected until the informer shows it');
});

test('ReplicaSet: surplus pods go least valuable first (unassigned, then not ready), and their deletions are expected', async () => {
  const pods = [rsPod('ready', { node: 'n1', ready: true }), rsPod('unready', { node: 'n1' }), rsPod('pending', { phase: 'Pending' })];
  const { client, expectations, sync } = rsSetup(replicaSet(1), pods);
  await sync.reconcile('default/web');
  assert.deepEqual(client.writes('delete', 'pods').map((c) => c.name).sort(), ['pending', 'unready']);
  assert.equal(expectations.satisfied('default/web'), false);
  expectations.deletionObserved('default/web', 'default/pending');
  expectations.deletionObserved('default/web', 'default/unready');
  assert.equal(expectations.satisfied('default/web'), true);
});

test('ReplicaSet: a refused creation is tried once (slow start) and reported as ReplicaFailure', async () => {
  const { client, expectations, sync } = rsSetup(replicaSet(5), []);
  client.fail('create', 'pods', 403);
  await assert.rejects(sync.reconcile('default/web'), /refused/);
  assert.equal(client.writes('create', 'pods').length, 1);
  const status = client.writes('updateStatus', 'replicasets')[0]!.body.status;
  assert.equal(status.conditions[0].type, 'ReplicaFailure');
  assert.equal(status.conditions[0].reason, 'FailedCreate');
  assert.ok(expectations.satisfied('default/web'), 'failed and untried creations are not waited for');
});

function daemonSet(): Obj {
  return {
    apiVersion: 'apps/v1', kind: 'DaemonSet', metadata: { name: 'agent', namespace: 'kube-system', uid: 'ds-uid', generation: 1 },
    spec: { selector: { matchLabels: { app: 'agent' } }, template: { metadata: { labels: { app: 'agent' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } } },
  };
}

function node(name: string, taints: Record<string, string>[] = []): Obj {
  return { apiVersion: 'v1', kind: 'Node', metadata: { name, labels: {} }, spec: { taints } };
}

test('DaemonSet: one pinned pod per eligible node, a revision recorded first, status counts the desired nodes', async () => {
  const ds = daemonSet();
  const client = new RecordingClient();
  const byOwner = { [DAEMONSET_OWNER_INDEX]: controllerUidIndex('DaemonSet') };
  const sync = new DaemonSetSync({
    client, events: recordedEvents(), expectations: new Expectations(), now: () => NOW,
    listers: {
      sets: listerOf([ds]),
      pods: listerOf([], byOwner),
      nodes: listerOf([node('n1'), node('cordoned', [{ key: 'node.kubernetes.io/unschedulable', effect: 'NoSchedule' }]),
        node('tainted', [{ key: 'dedicated', value: 'db', effect: 'NoSchedule' }])]),
      revisions: listerOf([], byOwner),
    },
  });
  await sync.reconcile('kube-system/agent');
  const writes = client.writes().map((c) => `${c.verb} ${c.resource}`);
  assert.equal(writes[0], 'create controllerrevisions', 'history first');
  const pods = client.writes('create', 'pods').map((c) => c.body);
  const pinned = pods.map((p) => p.spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values[0]);
  assert.deepEqual(pinned.sort(), ['cordoned', 'n1'], 'daemon pods tolerate unschedulable, not a foreign taint');
  assert.ok(pods[0].spec.tolerations.some((t: Obj) => t.key === 'node.kubernetes.io/not-ready' && t.effect === 'NoExecute'));
  assert.ok(pods[0].metadata.labels['controller-revision-hash']);
  const status = client.writes('updateStatus', 'daemonsets').at(-1)!.body.status;
  assert.equal(status.desiredNumberScheduled, 2);
  assert.equal(status.currentNumberScheduled, 0, 'the lister has not shown the new pods yet');
});

test('StatefulSet: OrderedReady makes the claims and pod 0, and pod 1 only once pod 0 is Running and Ready', async () => {
  const set: Obj = {
    apiVersion: 'apps/v1', kind: 'StatefulSet', metadata: { name: 'db', namespace: 'default', uid: 'sts-uid', generation: 1 },
    spec: {
      replicas: 2, serviceName: 'db', selector: { matchLabels: { app: 'db' } },
      template: { metadata: { labels: { app: 'db' } }, spec: { containers: [{ name: 'c', image: 'busybox' }] } },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
    },
  };
  const byOwner = { [STATEFULSET_OWNER_INDEX]: controllerUidIndex('StatefulSet') };
  const run = async (pods: Obj[]) => {
    const client = new RecordingClient();
    const sync = new StatefulSetSync({
      client, events: recordedEvents(), now: () => NOW,
      listers: { sets: listerOf([set]), pods: listerOf(pods, byOwner), revisions: listerOf([], byOwner), claims: listerOf([]) },
    });
    await sync.reconcile('default/db');
    return client;
  };
  const first = await run([]);
  assert.deepEqual(first.writes('create', 'persistentvolumeclaims').map((c) => c.body.metadata.name), ['data-db-0']);
  const [pod0] = first.writes('create', 'pods').map((c) => c.body);
  assert.equal(first.writes('create', 'pods').length, 1, 'one at a time');
  assert.equal(pod0.metadata.name, 'db-0');
  assert.equal(pod0.spec.hostname, 'db-0');
  assert.equal(pod0.spec.subdomain, 'db');
  assert.deepEqual(pod0.spec.volumes, [{ name: 'data', persistentVolumeClaim: { claimName: 'data-db-0' } }]);

  const running = { ...pod0, metadata: { ...pod0.metadata, uid: 'uid-db-0' }, status: { phase: 'Running', conditions: [{ type: 'Ready', status: 'True', lastTransitionTime: '2026-01-01T11:00:00Z' }] } };
  const second = await run([running]);
  assert.deepEqual(second.writes('create', 'pods').map((c) => c.body.metadata.name), ['db-1']);
  const pending = { ...running, status: { phase: 'Pending' } };
  assert.deepEqual((await run([pending])).writes('create', 'pods'), [], 'pod 1 waits for pod 0');
});
