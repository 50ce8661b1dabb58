// Acceptance (issue 3, quotas and limit ranges): with the real kubectl against an API-only server,
// `kubectl create quota` then pods beyond it get Kubernetes' exceeded-quota error, and a LimitRange's
// defaults show up in the pod kubectl reads back.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, type TestServer, API_ONLY } from '../helpers/cluster.js';
import { ok, fails } from '../helpers/kubectl.js';

let server: TestServer;
before(async () => { server = await startServer({ args: API_ONLY }); });

let nsCount = 0;
async function namespace(prefix: string): Promise<string> {
  const ns = `${prefix}-${++nsCount}`;
  ok(await server.kubectl(['create', 'namespace', ns]), `create namespace ${ns}`);
  return ns;
}

function podYaml(name: string, resources = ''): string {
  return `apiVersion: v1
kind: Pod
metadata:
  name: ${name}
spec:
  containers:
  - name: c
    image: busybox
${resources}`;
}

const CPU_REQUEST = `    resources:
      requests:
        cpu: 400m
`;

test('kubectl create quota, then pods beyond it are refused with the exceeded-quota error', async () => {
  const ns = await namespace('quota');
  assert.equal(ok(await server.kubectl(['create', 'quota', 'q', '-n', ns, '--hard=pods=2,requests.cpu=1'])).trim(), 'resourcequota/q created');

  fails(await server.kubectl(['create', '-n', ns, '-f', '-'], { input: podYaml('bare') }),
    /^Error from server \(Forbidden\): error when creating "STDIN": pods "bare" is forbidden: failed quota: q: must specify requests\.cpu for: c$/m);
  ok(await server.kubectl(['create', '-n', ns, '-f', '-'], { input: podYaml('a', CPU_REQUEST) }));
  fails(await server.kubectl(['create', '-n', ns, '-f', '-'], { input: podYaml('b', CPU_REQUEST.replace('400m', '700m')) }),
    /^Error from server \(Forbidden\): error when creating "STDIN": pods "b" is forbidden: exceeded quota: q, requested: requests\.cpu=700m, used: requests\.cpu=400m, limited: requests\.cpu=1$/m);
  ok(await server.kubectl(['create', '-n', ns, '-f', '-'], { input: podYaml('b', CPU_REQUEST) }));
  fails(await server.kubectl(['create', '-n', ns, '-f', '-'], { input: podYaml('c', CPU_REQUEST.replace('400m', '100m')) }),
    /^Error from server \(Forbidden\): error when creating "STDIN": pods "c" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2$/m);
  const names = ok(await server.kubectl(['get', 'pods', '-n', ns, '-o', 'name'])).trim().split('\n');
  assert.deepEqual(names, ['pod/a', 'pod/b']);
});

test('a LimitRange fills in a pod\'s missing resources and refuses one over its max', async () => {
  const ns = await namespace('limits');
  ok(await server.kubectl(['create', '-n', ns, '-f', '-'], { input: `apiVersion: v1
kind: LimitRange
metadata:
  name: defaults
spec:
  limits:
  - type: Container
    default:
      cpu: 500m
      memory: 256Mi
    defaultRequest:
      cpu: 100m
      memory: 128Mi
    max:
      cpu: "1"
` }));
  ok(await server.kubectl(['create', '-n', ns, '-f', '-'], { input: podYaml('p') }));
  const pod = JSON.parse(ok(await server.kubectl(['get', 'pod', 'p', '-n', ns, '-o', 'json'])));
  assert.deepEqual(pod.spec.containers[0].resources, { limits: { cpu: '500m', memory: '256Mi' }, requests: { cpu: '100m', memory: '128Mi' } });
  assert.equal(pod.metadata.annotations['kubernetes.io/limit-ranger'], 'LimitRanger plugin set: cpu, memory request for container c; cpu, memory limit for container c');
  const yaml = ok(await server.kubectl(['get', 'pod', 'p', '-n', ns, '-o', 'yaml']));
  assert.match(yaml, /resources:\n\s+limits:\n\s+cpu: 500m\n\s+memory: 256Mi\n\s+requests:\n\s+cpu: 100m\n\s+memory: 128Mi/);

  fails(await server.kubectl(['create', '-n', ns, '-f', '-'], { input: podYaml('big', '    resources:\n      limits:\n        cpu: "2"\n') }),
    /^Error from server \(Forbidden\): error when creating "STDIN": pods "big" is forbidden: maximum cpu usage per Container is 1, but limit is 2$/m);
});
