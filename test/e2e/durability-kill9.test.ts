// Durability: a write the API acknowledged survives `kill -9`, the restarted server answers, and
// revisions keep growing across the restart (clients compare them). How fast a restart answers is a
// benchmark's figure (bench/restart.ts), not asserted here: tests run on busy machines.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/cluster.js';
import { ApiClient, credentialsFromKubeconfig, json } from '../helpers/api-client.js';
import { eventually } from '../helpers/wait.js';

const IN_FLIGHT = 16;
const STREAM_MS = 1500;
const COLL = '/api/v1/namespaces/default/configmaps';

let server: TestServer | undefined;
after(async () => { await server?.dispose(); });

interface Written {
  /** The highest `v` the API acknowledged for this object. */
  acked: number;
  /** A `v` sent but not answered when the server died: it may or may not have been committed. */
  pending?: number;
}

test('acknowledged creates and updates survive kill -9; the restarted server answers; revisions keep growing', async () => {
  server = await startServer();
  const s = server;
  const api = ApiClient.fromKubeconfig(s.kubeconfigPath);
  const written = new Map<string, Written>();
  let maxRv = 0n;
  let failures = 0;
  const seeRv = (obj: any) => { const rv = BigInt(obj.metadata.resourceVersion); if (rv > maxRv) maxRv = rv; };

  // Each worker creates an object, then updates it once, and goes on with the next: creates and
  // updates are both in the stream when the kill lands.
  let stop = false;
  const worker = async (w: number) => {
    for (let i = 0; !stop; i++) {
      const name = `dur-${w}-${i}`;
      try {
        written.set(name, { acked: 0, pending: 1 });
        const created = await api.post(COLL, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name }, data: { v: '1' } });
        if (created.status !== 201) { failures++; written.delete(name); continue; }
        const obj = json(created);
        seeRv(obj);
        written.set(name, { acked: 1, pending: 2 });
        const updated = await api.put(`${COLL}/${name}`, { ...obj, data: { v: '2' } });
        if (updated.status !== 200) { failures++; continue; }
        seeRv(json(updated));
        written.set(name, { acked: 2 });
      } catch {
        return;   // the server is gone: what was pending stays pending
      }
    }
  };
  const workers = Array.from({ length: IN_FLIGHT }, (_, w) => worker(w));
  await new Promise((r) => setTimeout(r, STREAM_MS));
  // On a busy machine fewer writes fit in STREAM_MS: wait for some of each kind rather than count on a rate.
  await eventually(async () => [...written.values()].filter((v) => v.acked > 0).length >= IN_FLIGHT
    && [...written.values()].some((v) => v.acked === 2), 'acknowledged creates and updates before the kill', 60_000);
  await s.kill9();
  stop = true;
  await Promise.all(workers);
  api.close();
  assert.equal(failures, 0, 'writes failed before the kill');
  const acked = [...written].filter(([, v]) => v.acked > 0);
  assert.ok(acked.length >= IN_FLIGHT, `only ${acked.length} creates were acknowledged`);

  // Restart on the same port and data dir; an authenticated GET of a stored object succeeds.
  const probe = new ApiClient(credentialsFromKubeconfig(s.kubeconfigPath), { keepAlive: false });
  const probePath = `${COLL}/${acked[0]![0]}`;
  await s.launch();
  let lastErr = '';
  await eventually(async () => {
    try {
      const r = await probe.get(probePath, { timeoutMs: 10_000 });
      if (r.status === 200) return true;
      lastErr = `HTTP ${r.status} ${r.body.slice(0, 200)}`;
    } catch (e) {
      lastErr = (e as Error).message;
    }
    return false;
  }, 'an authenticated GET after the restart', 60_000, () => lastErr);
  probe.close();

  const api2 = ApiClient.fromKubeconfig(s.kubeconfigPath);
  try {
    // Every acknowledged write is there, with at least the acknowledged content.
    const lost: string[] = [];
    const queue = acked.slice();
    await Promise.all(Array.from({ length: 32 }, async () => {
      for (let next = queue.pop(); next; next = queue.pop()) {
        const [name, st] = next;
        const r = await api2.get(`${COLL}/${name}`);
        if (r.status !== 200) { lost.push(`${name}: HTTP ${r.status}`); continue; }
        const v = Number(json(r).data.v);
        if (v !== st.acked && v !== st.pending) lost.push(`${name}: v=${v}, acknowledged ${st.acked}`);
      }
    }));
    assert.deepEqual(lost.slice(0, 20), [], `${lost.length} of ${acked.length} acknowledged writes lost after kill -9`);

    // Revisions move on from where they were, on the list and on new writes.
    const list = json(await api2.get(COLL));
    assert.ok(BigInt(list.metadata.resourceVersion) >= maxRv, `list RV ${list.metadata.resourceVersion} < ${maxRv} seen before the kill`);
    for (let i = 0; i < 3; i++) {
      const r = await api2.post(COLL, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `dur-after-${i}` } });
      assert.equal(r.status, 201, r.body);
      const rv = BigInt(json(r).metadata.resourceVersion);
      assert.ok(rv > maxRv, `new write got RV ${rv}, not above ${maxRv} seen before the kill`);
      maxRv = rv;
    }
    // Unacknowledged creates are either fully there or absent: never half an object.
    for (const [name, st] of written) {
      if (st.acked > 0) continue;
      const r = await api2.get(`${COLL}/${name}`);
      assert.ok(r.status === 404 || (r.status === 200 && json(r).data?.v === '1'), `${name}: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    }
  } finally {
    api2.close();
  }
});

test('a graceful stop (SIGTERM) loses nothing either', async () => {
  const s = await startServer();
  const api = ApiClient.fromKubeconfig(s.kubeconfigPath);
  try {
    const names = Array.from({ length: 200 }, (_, i) => `graceful-${i}`);
    const replies = await Promise.all(names.map((name) => api.post(COLL, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name } })));
    for (const r of replies) assert.equal(r.status, 201, r.body);
    const before = json(await api.get(COLL));
    await s.stop();
    assert.equal(s.proc.exitCode, 0, `exit code after SIGTERM: ${s.proc.exitCode} (signal ${s.proc.signalCode})`);
    await s.launch();
    const again = json(await api.get(COLL));
    assert.deepEqual(again.items.map((i: any) => i.metadata.name).sort(), before.items.map((i: any) => i.metadata.name).sort());
    assert.deepEqual(again.items.map((i: any) => i.metadata.uid).sort(), before.items.map((i: any) => i.metadata.uid).sort());
    assert.ok(BigInt(again.metadata.resourceVersion) >= BigInt(before.metadata.resourceVersion));
  } finally {
    api.close();
    await s.dispose();
  }
});
