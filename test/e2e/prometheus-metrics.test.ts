// `kubectl get --raw /metrics`: kube-apiserver-named metrics in Prometheus' text format, readable by
// admins and system:monitoring, refused (403) to others.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer } from '../helpers/cluster.js';
import { ok } from '../helpers/kubectl.js';
import { eventually } from '../helpers/wait.js';
import { parsePrometheusText, type Scrape } from '../helpers/prom-text.js';

let server: TestServer;
before(async () => { server = await startServer(); });
after(async () => { await server?.dispose(); });

const scrape = async (): Promise<Scrape> => parsePrometheusText(ok(await server.kubectl(['get', '--raw', '/metrics'])));

test('kubectl get --raw /metrics parses and carries the apiserver, storage, workqueue, scheduler and process metrics', async () => {
  ok(await server.kubectl(['create', 'configmap', 'm1', '--from-literal=a=b']));
  // No node: the scheduler tries and fails, which it counts.
  ok(await server.kubectl(['run', 'nowhere', '--image=busybox', '--restart=Never']));
  // Any path a client sends must not become a label value (unbounded series).
  assert.equal((await server.request('GET', `/api/v1/namespaces/default/bogus${process.pid}`)).status, 404);
  const watch = server.request('GET', '/api/v1/namespaces/default/pods?watch=1&timeoutSeconds=8');
  const s = await eventually(async () => {
    const m = await scrape();
    return m.samples.some((x) => x.name === 'scheduler_schedule_attempts_total' && x.labels.result === 'unschedulable' && x.value > 0)
      && m.samples.some((x) => x.name === 'apiserver_longrunning_requests' && x.labels.verb === 'WATCH' && x.labels.resource === 'pods' && x.value === 1) && m;
  }, 'an unschedulable attempt and an open watch counted', 30_000);
  await watch;
  for (const name of [
    'apiserver_request_total', 'apiserver_request_duration_seconds', 'apiserver_current_inflight_requests', 'apiserver_longrunning_requests',
    'apiserver_storage_objects', 'etcd_request_duration_seconds', 'workqueue_depth', 'workqueue_adds_total', 'workqueue_queue_duration_seconds',
    'workqueue_work_duration_seconds', 'workqueue_retries_total', 'scheduler_schedule_attempts_total',
    'process_cpu_seconds_total', 'process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds',
  ]) assert.ok(s.names.has(name), `${name} missing`);
  assert.equal(s.types.get('apiserver_request_duration_seconds'), 'histogram');
  const create = s.samples.find((x) => x.name === 'apiserver_request_total' && x.labels.resource === 'configmaps' && x.labels.verb === 'POST');
  assert.deepEqual(create?.labels, { verb: 'POST', dry_run: '', group: '', version: 'v1', resource: 'configmaps', subresource: '', scope: 'namespace', component: 'apiserver', code: '201' });
  assert.ok(!s.samples.some((x) => x.labels.resource?.startsWith('bogus')), 'unserved resources are not labels');
  const cms = s.samples.find((x) => x.name === 'apiserver_storage_objects' && x.labels.resource === 'configmaps');
  assert.ok(cms && cms.value >= 1, 'stored configmaps counted');
  assert.ok(s.samples.some((x) => x.name === 'workqueue_adds_total' && x.labels.name === 'namespace' && x.value > 0), 'the namespace controller queue reports');
  assert.ok(s.samples.some((x) => x.name === 'apiserver_storage_objects' && x.labels.resource === 'deployments.apps'), 'group resources are named resource.group');
});

test('a token without system:monitoring gets 403; with the system:monitoring role, 200', async () => {
  ok(await server.kubectl(['create', 'serviceaccount', 'scraper']));
  const token = ok(await server.kubectl(['create', 'token', 'scraper'])).trim();
  const denied = await server.request('GET', '/metrics', { token });
  assert.equal(denied.status, 403);
  assert.equal(denied.json().message, 'forbidden: User "system:serviceaccount:default:scraper" cannot get path "/metrics"');
  ok(await server.kubectl(['create', 'clusterrolebinding', 'scraper-monitoring', '--clusterrole=system:monitoring', '--serviceaccount=default:scraper']));
  const allowed = await eventually(async () => { const r = await server.request('GET', '/metrics', { token }); return r.status === 200 && r; }, 'allowed after binding');
  assert.match(String(allowed.headers['content-type']), /^text\/plain; version=0\.0\.4/);
  parsePrometheusText(allowed.body);
});
