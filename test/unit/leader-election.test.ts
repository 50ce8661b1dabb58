// Leader election over a Lease (src/client/leader-election.ts): candidates share one in-process API;
// a candidate's client can be made to fail (datastore errors) or hang (a dead server) to see terms
// end and pass. Short timings (lease 800 ms, renew deadline 500 ms, retry 100 ms) keep it quick.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TestContext } from 'node:test';
import { startLocalApi } from '../helpers/local-api.js';
import { eventually } from '../helpers/controller-env.js';
import { startLeaderElection, type LeaderElector } from '../../src/client/leader-election.js';
import { Resources, type ApiClient } from '../../src/client/types.js';
import { ApiError } from '../../src/api/status.js';
import type { KObject } from '../../src/api/object.js';

const TIMING = { leaseDurationMs: 800, renewDeadlineMs: 500, retryPeriodMs: 100 };

type Mode = 'ok' | 'fail' | 'hang';

/** A client whose reads and writes fail (503) or never answer while its mode says so (watches go on). */
function faultyClient(inner: ApiClient): { client: ApiClient; set(mode: Mode): void } {
  let mode: Mode = 'ok';
  const client = new Proxy(inner, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || !['get', 'create', 'update'].includes(String(prop))) return v;
      return (...args: unknown[]) => {
        if (mode === 'fail') return Promise.reject(new ApiError(503, 'ServiceUnavailable', 'datastore unavailable'));
        if (mode === 'hang') return new Promise(() => {});
        return (v as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
  return { client, set: (m) => { mode = m; } };
}

interface Candidate {
  id: string;
  elector: LeaderElector;
  terms: { started: number; stopped?: number }[];
  set(mode: Mode): void;
}

function candidate(t: TestContext, inner: ApiClient, id: string, leading: Set<string>, overlaps: string[]): Candidate {
  const faulty = faultyClient(inner);
  const terms: Candidate['terms'] = [];
  const elector = startLeaderElection({
    client: faulty.client, namespace: 'kube-system', name: 'kube-controller-manager', identity: id, ...TIMING,
    onStartedLeading: () => {
      if (leading.size) overlaps.push(`${id} started while ${[...leading].join(',')} led`);
      leading.add(id);
      terms.push({ started: Date.now() });
    },
    onStoppedLeading: () => {
      leading.delete(id);
      terms.at(-1)!.stopped = Date.now();
    },
  });
  t.after(() => { faulty.set('ok'); return elector.stop(); });
  return { id, elector, terms, set: faulty.set };
}

async function lease(client: ApiClient): Promise<KObject & { spec: Record<string, any> }> {
  return (await client.get(Resources.leases, 'kube-system', 'kube-controller-manager')) as KObject & { spec: Record<string, any> };
}

test('of two candidates exactly one leads, and the Lease names it', async (t) => {
  const api = await startLocalApi(t);
  const leading = new Set<string>();
  const overlaps: string[] = [];
  const a = candidate(t, api.client, 'host_a', leading, overlaps);
  const b = candidate(t, api.client, 'host_b', leading, overlaps);
  const leader = (await eventually(() => [a, b].find((c) => c.elector.isLeader()), 5000, 'a leader'))!;
  // Several renewals later still one leader, the same one, and no term was lost.
  await new Promise((r) => setTimeout(r, 1000));
  assert.deepEqual([a, b].filter((c) => c.elector.isLeader()).map((c) => c.id), [leader.id]);
  assert.equal(leader.terms.length, 1);
  assert.deepEqual(overlaps, []);
  const l = await lease(api.client);
  assert.equal(l.spec.holderIdentity, leader.id);
  assert.equal(l.spec.leaseDurationSeconds, 1);
  assert.equal(l.spec.leaseTransitions, 0);
  assert.match(l.spec.renewTime, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  const other = leader === a ? b : a;
  assert.equal(other.elector.leader(), leader.id);
});

test('a leader that cannot renew within the deadline stops leading, keeps running, and leads again', async (t) => {
  const api = await startLocalApi(t);
  const leading = new Set<string>();
  const a = candidate(t, api.client, 'host_a', leading, []);
  await eventually(() => a.elector.isLeader(), 5000, 'a leads');
  a.set('fail');
  await eventually(() => !a.elector.isLeader() && a.terms[0]?.stopped, 5000, 'a stops leading');
  // The deadline counts from when the last successful write began, a little before the term started.
  const term = a.terms[0]!.stopped! - a.terms[0]!.started;
  assert.ok(term >= TIMING.renewDeadlineMs - TIMING.retryPeriodMs, `stepped down after ${term} ms`);
  a.set('ok');
  // Still the holder of record, it renews its own Lease at once (no wait for expiry).
  await eventually(() => a.elector.isLeader(), 5000, 'a leads again');
  assert.equal(a.terms.length, 2);
});

test('a standby takes over after the leader dies, once the lease expired', async (t) => {
  const api = await startLocalApi(t);
  const leading = new Set<string>();
  const overlaps: string[] = [];
  const a = candidate(t, api.client, 'host_a', leading, overlaps);
  await eventually(() => a.elector.isLeader(), 5000, 'a leads');
  const b = candidate(t, api.client, 'host_b', leading, overlaps);
  await eventually(() => b.elector.leader() === 'host_a', 5000, 'b sees a');
  // "Dead": a's API calls never return, and it never releases.
  const died = Date.now();
  a.set('hang');
  await eventually(() => b.elector.isLeader(), 10_000, 'b takes over');
  const took = Date.now() - died;
  assert.ok(took >= TIMING.leaseDurationMs - TIMING.retryPeriodMs * 3, `took over after ${took} ms, before the lease expired`);
  const l = await lease(api.client);
  assert.equal(l.spec.holderIdentity, 'host_b');
  assert.equal(l.spec.leaseTransitions, 1);
  // a's term ended by its renew deadline (it could not know it was dead), before b's began.
  await eventually(() => a.terms[0]?.stopped, 5000, 'a stopped');
  assert.deepEqual(overlaps, []);
});

test('a leader stopping releases the lease, so the standby does not wait for expiry', async (t) => {
  const api = await startLocalApi(t);
  const leading = new Set<string>();
  const a = candidate(t, api.client, 'host_a', leading, []);
  await eventually(() => a.elector.isLeader(), 5000, 'a leads');
  // A long lease shows the release: without it the standby would wait 30 s.
  const faulty = faultyClient(api.client);
  let started = false;
  const b = startLeaderElection({
    client: faulty.client, namespace: 'kube-system', name: 'kube-controller-manager', identity: 'host_b',
    leaseDurationMs: 30_000, renewDeadlineMs: 20_000, retryPeriodMs: 100,
    onStartedLeading: () => { started = true; }, onStoppedLeading: () => {},
  });
  t.after(() => b.stop());
  await eventually(() => b.leader() === 'host_a', 5000, 'b sees a');
  await a.elector.stop();
  assert.ok(a.terms[0]!.stopped, 'a stopped leading before it returned');
  await eventually(() => started, 5000, 'b leads after the release');
  const l = await lease(api.client);
  assert.equal(l.spec.holderIdentity, 'host_b');
  assert.equal(l.spec.leaseTransitions, 1, 'a takeover after a release is a transition');
});
