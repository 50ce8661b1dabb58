// Priority levels of the in-flight limit (issue 15): nodes' heartbeats (Leases, Node objects) have a
// budget of their own that a burst of workload requests cannot exhaust, as Kubernetes' API priority
// and fairness gives them the node-high level. A request that finds its level full waits in a
// bounded, per-flow fair queue, and gets 429 only past the queue's bounds or its wait limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { InflightLimiter, priorityLevel, type FlowControlObserver, type PriorityLevel, type RejectReason } from '../../src/apiserver/connection-limits.js';
import { ApiError } from '../../src/api/status.js';

const node = { groups: ['system:nodes', 'system:authenticated'] };
const ri = (group: string, resource: string, namespace = '') => ({ group, resource, namespace });
const is429 = (e: unknown) => e instanceof ApiError && e.code === 429 && e.reason === 'TooManyRequests' && e.details?.retryAfterSeconds === 1;
/** Lets every settled promise run its continuations. */
const tick = () => new Promise((r) => setImmediate(r));

/** Whether a tracked acquire got its seat (a call, so TypeScript does not narrow the field for good). */
const granted = (t: { leave?: () => void }) => t.leave !== undefined;

/** A pending acquire whose outcome the test reads without awaiting it. */
function track(p: Promise<() => void>) {
  const t: { leave?: () => void; err?: unknown } = {};
  p.then((leave) => { t.leave = leave; }, (err) => { t.err = err; });
  return t;
}

function recorder() {
  const rejected: [PriorityLevel, RejectReason][] = [];
  const inQueue = new Map<PriorityLevel, number>();
  const obs: FlowControlObserver = {
    executing: () => {},
    inQueue: (l, d) => inQueue.set(l, (inQueue.get(l) ?? 0) + d),
    rejected: (l, r) => rejected.push([l, r]),
  };
  return { obs, rejected, inQueue };
}

test('requests are classed as the default FlowSchemas class them', () => {
  assert.equal(priorityLevel(node, ri('coordination.k8s.io', 'leases', 'kube-node-lease')), 'node-high');
  assert.equal(priorityLevel(node, ri('', 'nodes')), 'node-high');
  assert.equal(priorityLevel(node, ri('', 'pods', 'default')), 'system');
  assert.equal(priorityLevel(node, ri('coordination.k8s.io', 'leases', 'default')), 'system');
  assert.equal(priorityLevel({ groups: ['system:masters', 'system:authenticated'] }, ri('', 'pods', 'default')), 'exempt');
  assert.equal(priorityLevel({ groups: ['system:serviceaccounts', 'system:authenticated'] }, ri('coordination.k8s.io', 'leases', 'kube-node-lease')), 'workload');
  assert.equal(priorityLevel({ groups: [] }, ri('', 'nodes')), 'workload');
});

test('a full workload level queues its requests while node heartbeats still get in', async () => {
  const l = new InflightLimiter(100, { maxInflightWorkload: 3, maxInflightSystem: 2, maxInflightNodeHigh: 5 });
  const held = await Promise.all([l.acquire('alice', 'workload'), l.acquire('bob', 'workload'), l.acquire('carol', 'workload')]);
  const dave = track(l.acquire('dave', 'workload'));
  const beats = await Promise.all(Array.from({ length: 5 }, (_, i) => l.acquire(`system:node:n${i}`, 'node-high')));
  assert.equal(l.inFlight('node-high'), 5);
  const late = track(l.acquire('system:node:n9', 'node-high'));
  // Nodes' pod status writes have their own level too: they neither starve nor are starved by heartbeats.
  await l.acquire('system:node:n0', 'system');
  // The admin is exempt from level budgets (bounded per user only).
  for (let i = 0; i < 50; i++) await l.acquire('system:admin', 'exempt');
  await tick();
  assert.equal(granted(dave), false);
  assert.equal(granted(late), false);
  assert.equal(l.queued('workload'), 1);
  held[0]!();
  held[0]!();   // leaving twice counts once
  await tick();
  assert.ok(dave.leave, 'the waiting request got the freed seat');
  assert.equal(l.inFlight('workload'), 3);
  assert.equal(l.queued('workload'), 0);
  for (const b of beats) b();
  await tick();
  assert.ok(late.leave);
  late.leave();
  assert.equal(l.inFlight('node-high'), 0);
});

test('waiters of one flow get freed seats in the order they came', async () => {
  const l = new InflightLimiter(100, { maxInflightWorkload: 1 });
  const first = await l.acquire('alice', 'workload');
  const order: number[] = [];
  const waits = [1, 2, 3].map((n) => l.acquire('alice', 'workload').then((leave) => { order.push(n); return leave; }));
  first();
  (await waits[0]!)();
  (await waits[1]!)();
  (await waits[2]!)();
  assert.deepEqual(order, [1, 2, 3]);
  assert.equal(l.inFlight('workload'), 0);
});

test('freed seats go round-robin between flows: a flood from one user does not starve another', async () => {
  const l = new InflightLimiter(100, { maxInflightWorkload: 1 });
  const holder = await l.acquire('carol', 'workload');
  const served: string[] = [];
  const leaves: Promise<() => void>[] = [];
  const ask = (user: string) => leaves.push(l.acquire(user, 'workload').then((leave) => { served.push(user); return leave; }));
  for (let i = 0; i < 10; i++) ask('alice');
  ask('bob');
  assert.equal(l.queued('workload'), 11);
  holder();
  await tick();
  // alice's first waiter got the first freed seat; bob gets the second, not the eleventh.
  assert.deepEqual(served, ['alice']);
  (await leaves[0]!)();
  await tick();
  assert.deepEqual(served, ['alice', 'bob']);
  (await leaves[10]!)();
  for (let i = 1; i < 10; i++) { await tick(); (await leaves[i]!)(); }
  assert.equal(served.length, 11);
  assert.equal(l.inFlight('workload'), 0);
  assert.equal(l.queued('workload'), 0);
});

test('past the per-flow or per-level queue bound: 429 with Retry-After 1', async () => {
  const { obs, rejected } = recorder();
  const l = new InflightLimiter(100, { maxInflightWorkload: 1, queueLengthPerFlow: 2, maxQueuedPerLevel: 3 }, obs);
  const holder = await l.acquire('carol', 'workload');
  const a = [track(l.acquire('alice', 'workload')), track(l.acquire('alice', 'workload'))];
  await assert.rejects(l.acquire('alice', 'workload'), is429);          // alice's flow is full
  const b = track(l.acquire('bob', 'workload'));                         // another flow still queues
  await assert.rejects(l.acquire('dave', 'workload'), is429);           // the level's queue is full
  assert.deepEqual(rejected, [['workload', 'queue-full'], ['workload', 'queue-full']]);
  assert.equal(l.queued('workload'), 3);
  // The full workload queue holds up no other level.
  (await l.acquire('system:node:n1', 'node-high'))();
  holder();
  await tick(); a[0]!.leave!();
  await tick(); b.leave!();
  await tick(); a[1]!.leave!();
  assert.equal(l.inFlight('workload'), 0);
});

test('a request that waits longer than queueWaitMs gets 429 and leaves the queue', async () => {
  const { obs, rejected, inQueue } = recorder();
  const l = new InflightLimiter(100, { maxInflightNodeHigh: 1, queueWaitMs: 50 }, obs);
  const holder = await l.acquire('system:node:a', 'node-high');
  await assert.rejects(l.acquire('system:node:b', 'node-high'), is429);
  assert.deepEqual(rejected, [['node-high', 'time-out']]);
  assert.equal(l.queued('node-high'), 0);
  assert.equal(inQueue.get('node-high'), 0);
  holder();
  assert.equal(l.inFlight('node-high'), 0);
});

test('a waiter whose client goes away leaves the queue and never takes a seat', async () => {
  const { obs, rejected } = recorder();
  const l = new InflightLimiter(100, { maxInflightWorkload: 1 }, obs);
  const holder = await l.acquire('alice', 'workload');
  const gone = new AbortController();
  const w = track(l.acquire('bob', 'workload', gone.signal));
  const next = track(l.acquire('carol', 'workload'));
  assert.equal(l.queued('workload'), 2);
  gone.abort();
  await tick();
  assert.ok(is429(w.err));
  assert.deepEqual(rejected, [['workload', 'cancelled']]);
  assert.equal(l.queued('workload'), 1);
  holder();
  await tick();
  assert.equal(granted(w), false);
  assert.ok(next.leave, 'the seat went to the next waiter, not to the one that left');
  next.leave();
  assert.equal(l.inFlight('workload'), 0);
  assert.equal(l.queued('workload'), 0);
  await assert.rejects(l.acquire('bob', 'workload', AbortSignal.abort()), is429);
  assert.equal(l.inFlight('workload'), 0);
});

test('admit: a response that closes while queued leaves the queue; one that closes later gives its seat back', async () => {
  const res = () => Object.assign(new EventEmitter(), { destroyed: false });
  const l = new InflightLimiter(100, { maxInflightWorkload: 1 });
  const r1 = res();
  await l.admit(r1, 'alice', 'workload');
  const r2 = res();
  const waiting = track(l.admit(r2, 'bob', 'workload'));
  await tick();
  r2.destroyed = true;
  r2.emit('close');
  await tick();
  assert.ok(is429(waiting.err));
  assert.equal(l.queued('workload'), 0);
  assert.equal(r2.listenerCount('close'), 0);
  const r3 = res();
  const third = track(l.admit(r3, 'carol', 'workload'));
  r1.emit('close');   // alice's response is done: her seat goes to carol
  await tick();
  assert.ok(third.leave);
  assert.equal(l.inFlight('workload'), 1);
  r3.emit('close');
  assert.equal(l.inFlight('workload'), 0);
  await assert.rejects(l.admit(Object.assign(new EventEmitter(), { destroyed: true }), 'dave', 'workload'), is429);
  assert.equal(l.inFlight('workload'), 0);
});

test("the per-user limit queues too, and a user held by it does not hold up others", async () => {
  const l = new InflightLimiter(2, { maxInflightWorkload: 10 });
  const admin = [await l.acquire('system:admin', 'exempt'), await l.acquire('system:admin', 'exempt')];
  const third = track(l.acquire('system:admin', 'exempt'));
  const a = [await l.acquire('alice', 'workload'), await l.acquire('alice', 'workload')];
  const a3 = track(l.acquire('alice', 'workload'));
  // The workload level has seats: bob is served at once although alice waits in the same level.
  const b = await l.acquire('bob', 'workload');
  await tick();
  assert.equal(granted(third), false);
  assert.equal(granted(a3), false);
  admin[0]!();
  a[0]!();
  await tick();
  assert.ok(third.leave);
  assert.ok(a3.leave);
  for (const f of [admin[1]!, third.leave, a[1]!, a3.leave, b]) f();
  assert.equal(l.inFlight('workload'), 0);
  assert.equal(l.inFlight('exempt'), 0);
});
