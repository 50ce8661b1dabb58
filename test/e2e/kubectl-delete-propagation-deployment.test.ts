// Acceptance (issue 3): deleting a Deployment with each propagation policy leaves exactly what
// Kubernetes leaves. Real kubectl against a `skiff server` running the Deployment, ReplicaSet and
// garbage-collector loops; no nodes are needed (unscheduled pods are deleted at once).
//  - background (kubectl's default): the Deployment goes at once, its ReplicaSet and pods after it;
//  - foreground: `kubectl delete` returns only after the pods and the ReplicaSet are gone;
//  - orphan: the ReplicaSet and its pods stay, the ReplicaSet without its owner reference.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
before(async () => { server = await startServer(); });


async function json(args: string[]): Promise<any> {
  return JSON.parse(ok(await server.kubectl([...args, '-o', 'json']), `kubectl ${args.join(' ')}`));
}

/** A Deployment with its ReplicaSet and `replicas` pods created by the workload loops. */
async function deployment(name: string, replicas = 2): Promise<{ rs: any; pods: any[] }> {
  ok(await server.kubectl(['create', 'deployment', name, '--image=busybox', `--replicas=${replicas}`]));
  return eventually(async () => {
    const rs = (await json(['get', 'replicasets', '-l', `app=${name}`])).items;
    const pods = (await json(['get', 'pods', '-l', `app=${name}`])).items;
    return rs.length === 1 && pods.length === replicas ? { rs: rs[0], pods } : undefined;
  }, `ReplicaSet and ${replicas} pods of ${name}`);
}

test('background deletion (the default) removes the ReplicaSet and pods after the Deployment', async () => {
  await deployment('bg');
  const out = ok(await server.kubectl(['delete', 'deployment', 'bg']));
  assert.match(out, /deployment.apps "bg" deleted/);
  await eventually(async () => {
    const rs = (await json(['get', 'replicasets', '-l', 'app=bg'])).items;
    const pods = (await json(['get', 'pods', '-l', 'app=bg'])).items;
    return rs.length === 0 && pods.length === 0;
  }, 'ReplicaSet and pods collected');
});

test('foreground deletion returns once the dependents are gone', async () => {
  await deployment('fg');
  ok(await server.kubectl(['delete', 'deployment', 'fg', '--cascade=foreground', '--timeout=60s'], { timeoutMs: 90_000 }));
  // `kubectl delete` waits for the Deployment itself, which foreground deletion keeps until the end.
  assert.equal((await json(['get', 'replicasets', '-l', 'app=fg'])).items.length, 0, 'no ReplicaSet left');
  assert.equal((await json(['get', 'pods', '-l', 'app=fg'])).items.length, 0, 'no pod left');
  const r = await server.kubectl(['get', 'deployment', 'fg']);
  assert.match(r.stderr, /NotFound|not found/);
});

test('orphan deletion leaves the ReplicaSet and its pods, without the owner reference', async () => {
  const { rs, pods } = await deployment('orphan');
  ok(await server.kubectl(['delete', 'deployment', 'orphan', '--cascade=orphan']));
  await eventually(async () => (await server.kubectl(['get', 'deployment', 'orphan'])).code !== 0, 'Deployment gone');
  const left = await eventually(async () => {
    const x = await json(['get', 'replicaset', rs.metadata.name]);
    return x.metadata.ownerReferences === undefined ? x : undefined;
  }, 'owner reference removed from the ReplicaSet');
  assert.equal(left.metadata.uid, rs.metadata.uid, 'the same ReplicaSet');
  assert.equal(left.metadata.deletionTimestamp, undefined);
  // Give the collector a moment to do anything wrong before checking the pods stayed.
  await new Promise((r) => setTimeout(r, 1000));
  const now = (await json(['get', 'pods', '-l', 'app=orphan'])).items;
  assert.deepEqual(now.map((p: any) => p.metadata.uid).sort(), pods.map((p: any) => p.metadata.uid).sort(), 'the same pods remain');
  for (const p of now) assert.equal(p.metadata.ownerReferences?.[0]?.uid, rs.metadata.uid, 'still owned by the ReplicaSet');
});
