// The health pages' format (Kubernetes' healthz handler) and the server's check list: what turns red
// when the datastore fails, the informers lag, the loops stop or the server shuts down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ServerResponse } from 'node:http';
import { serveHealth, type HealthCheck } from '../../src/apiserver/health.js';
import { serverHealthChecks } from '../../src/server/health-checks.js';
import type { ControllerManager } from '../../src/server/controller-manager.js';

async function page(checks: readonly HealthCheck[], rest = '', query = '', endpoint: 'livez' | 'readyz' | 'healthz' = 'readyz') {
  const out = { status: 0, body: '' };
  const res = {
    headersSent: false,
    writeHead(code: number) { out.status = code; return this; },
    end(buf: Buffer) { out.body = String(buf); },
  } as unknown as ServerResponse;
  await serveHealth(res, endpoint, checks, rest, new URLSearchParams(query));
  return out;
}

const ok = (name: string): HealthCheck => ({ name, check: () => {} });
const bad = (name: string, why: string): HealthCheck => ({ name, check: async () => { throw new Error(why); } });

test('passing: "ok", or the list and "<endpoint> check passed" with ?verbose', async () => {
  const checks = [ok('ping'), ok('etcd')];
  assert.deepEqual(await page(checks), { status: 200, body: 'ok' });
  assert.deepEqual(await page(checks, '', 'verbose', 'livez'), { status: 200, body: '[+]ping ok\n[+]etcd ok\nlivez check passed\n' });
});

test('failing: 500 with the list (reasons withheld) and "<endpoint> check failed", verbose or not', async () => {
  const checks = [ok('ping'), bad('etcd', 'database is locked'), ok('shutdown')];
  for (const q of ['', 'verbose']) {
    const r = await page(checks, '', q);
    assert.equal(r.status, 500);
    assert.equal(r.body, '[+]ping ok\n[-]etcd failed: reason withheld\n[+]shutdown ok\nreadyz check failed\n');
  }
});

test('?exclude skips a check (and warns about names that match none); /<endpoint>/<check> runs one', async () => {
  const checks = [ok('ping'), bad('etcd', 'database is locked')];
  assert.deepEqual(await page(checks, '', 'exclude=etcd'), { status: 200, body: 'ok' });
  assert.equal((await page(checks, '', 'verbose&exclude=etcd&exclude=nope')).body,
    '[+]ping ok\n[+]etcd excluded: ok\nwarn: some health checks cannot be excluded: no matches for "nope"\nreadyz check passed\n');
  assert.deepEqual(await page(checks, 'ping'), { status: 200, body: 'ok' });
  assert.deepEqual(await page(checks, 'etcd'), { status: 500, body: 'internal server error: database is locked\n' });
  await assert.rejects(page(checks, 'nope'), (e: any) => e.code === 404);
});

test('the server\'s checks follow the datastore, the informers, the loops and shutdown', async () => {
  let dbError: Error | undefined;
  let unsynced: string[] = ['pods.v1'];
  let running = true;
  let shuttingDown = false;
  const cm = { running: () => running, unsyncedInformers: () => unsynced } as unknown as ControllerManager;
  const checks = serverHealthChecks({
    backend: { checkHealth: async () => { if (dbError) throw dbError; } },
    bootstrapped: () => true, controllers: () => cm, shuttingDown: () => shuttingDown,
  });
  const failing = async (endpoint: 'livez' | 'readyz') => {
    const r = await page(checks[endpoint], '', 'verbose', endpoint);
    return r.body.split('\n').filter((l) => l.startsWith('[-]')).map((l) => l.slice(3, l.indexOf(' failed')));
  };
  assert.deepEqual(await failing('readyz'), ['informer-sync']);
  assert.deepEqual(await failing('livez'), []);
  unsynced = [];
  assert.deepEqual(await failing('readyz'), []);
  dbError = new Error('disk I/O error');
  assert.deepEqual(await failing('readyz'), ['etcd', 'etcd-readiness']);
  assert.deepEqual(await failing('livez'), ['etcd']);
  dbError = undefined;
  shuttingDown = true;
  running = false;
  assert.deepEqual(await failing('readyz'), ['poststarthook/start-controller-manager', 'shutdown']);
  assert.deepEqual(await failing('livez'), ['poststarthook/start-controller-manager']);
});
