// Decoding Kubernetes protobuf request bodies: bodies captured from kubectl 1.32 (see
// test/fixtures/protobuf/capture.ts), kinds kubectl does not post built with our encoder, and
// the promise that any bytes at all give either an object or a 400.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { ApiError } from '../../src/api/status.js';
import { decodeProtobuf, supportedProtobufKinds, PROTOBUF_MAGIC } from '../../src/apiserver/protobuf/decode.js';
import { encodeProtobuf } from '../../src/apiserver/protobuf/encode.js';
import { protoRoot } from '../../src/apiserver/protobuf/root.js';

const FIXTURES = new URL('../fixtures/protobuf/', import.meta.url);
const body = (name: string) => readFileSync(new URL(`${name}.pb`, FIXTURES));
const decoded = (name: string) => decodeProtobuf(body(name)).object;
const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');
const storedBodies = readdirSync(FIXTURES).filter((f) => f.endsWith('.pb')).map((f) => f.slice(0, -3));

/** A body with any typeMeta and raw bytes, for error cases the encoder refuses to build. */
function envelope(apiVersion: string, kind: string, raw: Uint8Array = new Uint8Array()): Buffer {
  const unknown = protoRoot().lookupType('k8s.io.apimachinery.pkg.runtime.Unknown');
  return Buffer.concat([PROTOBUF_MAGIC, unknown.encode(unknown.fromObject({ typeMeta: { apiVersion, kind }, raw })).finish()]);
}

function badRequest(fn: () => unknown, message?: string | RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ApiError, `expected ApiError, got ${String(err)}`);
    assert.equal(err.code, 400);
    assert.equal(err.reason, 'BadRequest');
    if (typeof message === 'string') assert.equal(err.message, message);
    else if (message) assert.match(err.message, message);
    return true;
  });
}

test('the fixtures cover every command the brief lists', () => {
  for (const name of ['namespace', 'configmap', 'secret-generic', 'secret-docker-registry', 'service-clusterip', 'service-nodeport',
    'service-loadbalancer', 'service-externalname', 'deployment', 'job', 'job-from-cronjob', 'token', 'autoscale', 'can-i']) {
    assert.ok(storedBodies.includes(name), name);
  }
});

test('every captured body decodes to what kubectl prints for the same object (--dry-run=client -o json)', () => {
  let compared = 0;
  for (const name of storedBodies) {
    let expected;
    try { expected = JSON.parse(readFileSync(new URL(`${name}.json`, FIXTURES), 'utf8')); } catch { continue; }
    assert.deepEqual(decoded(name), expected, name);
    compared++;
  }
  assert.ok(compared >= 20, `only ${compared} bodies had a dry-run rendering`);
});

test('create namespace', () => {
  assert.deepEqual(decodeProtobuf(body('namespace')), {
    apiVersion: 'v1', kind: 'Namespace',
    object: { kind: 'Namespace', apiVersion: 'v1', metadata: { name: 'team-a', creationTimestamp: null }, spec: {}, status: {} },
  });
});

test('create configmap and secrets: maps become objects, bytes become base64', () => {
  assert.deepEqual(decoded('configmap').data, { mode: 'fast', retries: '3' });
  const generic = decoded('secret-generic');
  assert.deepEqual(generic.data, { password: b64('s3cr3t!'), user: b64('admin') });
  assert.equal(generic.type, undefined, 'kubectl leaves type to the server default');
  assert.deepEqual(generic.metadata, { name: 'creds', namespace: 'default', creationTimestamp: null });

  const reg = decoded('secret-docker-registry') as { type: string; data: Record<string, string> };
  assert.equal(reg.type, 'kubernetes.io/dockerconfigjson');
  assert.deepEqual(Object.keys(reg.data), ['.dockerconfigjson']);
  assert.deepEqual(JSON.parse(Buffer.from(reg.data['.dockerconfigjson'], 'base64').toString()), {
    auths: { 'registry.example.com': { username: 'bob', password: 'hunter2', email: 'bob@example.com', auth: b64('bob:hunter2') } },
  });
});

test('create service: ports with int targetPort, nodePort, types', () => {
  assert.deepEqual(decoded('service-nodeport'), {
    kind: 'Service', apiVersion: 'v1',
    metadata: { name: 'np', namespace: 'default', creationTimestamp: null, labels: { app: 'np' } },
    spec: { ports: [{ name: '80-8080', protocol: 'TCP', port: 80, targetPort: 8080, nodePort: 30080 }], selector: { app: 'np' }, type: 'NodePort' },
    status: { loadBalancer: {} },
  });
  const cip = decoded('service-clusterip') as { spec: { ports: unknown[]; type: string } };
  assert.equal(cip.spec.type, 'ClusterIP');
  assert.deepEqual(cip.spec.ports, [
    { name: '80-8080', protocol: 'TCP', port: 80, targetPort: 8080 },
    { name: '443-8443', protocol: 'TCP', port: 443, targetPort: 8443 },
  ]);
  assert.deepEqual((decoded('service-externalname') as { spec: unknown }).spec, { selector: { app: 'ext' }, type: 'ExternalName', externalName: 'db.example.com' });
  assert.equal((decoded('service-loadbalancer') as { spec: { type: string } }).spec.type, 'LoadBalancer');
});

test('create deployment: pointer zero replicas kept, empty strategy and resources kept', () => {
  assert.deepEqual(decoded('deployment'), {
    kind: 'Deployment', apiVersion: 'apps/v1',
    metadata: { name: 'web', namespace: 'default', creationTimestamp: null, labels: { app: 'web' } },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: 'web' } },
      template: {
        metadata: { creationTimestamp: null, labels: { app: 'web' } },
        spec: { containers: [{ name: 'nginx', image: 'nginx:1.25', ports: [{ containerPort: 80 }], resources: {} }] },
      },
      strategy: {},
    },
    status: {},
  });
  const idle = decoded('deployment-zero') as { spec: { replicas: number; template: { spec: { containers: Array<{ command: string[] }> } } } };
  assert.equal(idle.spec.replicas, 0);
  assert.deepEqual(idle.spec.template.spec.containers[0].command, ['sleep', '3600']);
});

test('create job, and create job --from=cronjob (owner reference, annotation)', () => {
  const job = decoded('job') as { spec: { template: { spec: Record<string, unknown> } } };
  assert.deepEqual(job.spec.template.spec, {
    containers: [{ name: 'once', image: 'busybox', command: ['echo', 'hello'], resources: {} }], restartPolicy: 'Never',
  });
  const manual = decoded('job-from-cronjob') as { metadata: Record<string, unknown>; spec: { backoffLimit: number } };
  assert.deepEqual(manual.metadata.ownerReferences, [
    { apiVersion: 'batch/v1', kind: 'CronJob', name: 'nightly', uid: '0f6d9c62-1c1d-4d6b-9b3e-0c9d0b0a0001', controller: true },
  ]);
  assert.deepEqual(manual.metadata.annotations, { 'cronjob.kubernetes.io/instantiate': 'manual' });
  assert.equal(manual.spec.backoffLimit, 2);
});

test('create token: TokenRequest with its nil pointer and zero Time written as Go writes them', () => {
  assert.deepEqual(decodeProtobuf(body('token')), {
    apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest',
    object: {
      kind: 'TokenRequest', apiVersion: 'authentication.k8s.io/v1', metadata: { creationTimestamp: null },
      spec: { audiences: ['api'], expirationSeconds: 600, boundObjectRef: null },
      status: { token: '', expirationTimestamp: null },
    },
  });
});

test('autoscale and auth can-i', () => {
  assert.deepEqual((decoded('autoscale') as { spec: unknown }).spec, {
    scaleTargetRef: { kind: 'Deployment', name: 'web', apiVersion: 'apps/v1' }, maxReplicas: 5, targetCPUUtilizationPercentage: 80,
  });
  assert.deepEqual(decoded('can-i'), {
    kind: 'SelfSubjectAccessReview', apiVersion: 'authorization.k8s.io/v1', metadata: { creationTimestamp: null },
    spec: { resourceAttributes: { namespace: 'default', verb: 'get', resource: 'pods' } },
    status: { allowed: false },
  });
  assert.deepEqual((decoded('can-i-subresource') as { spec: unknown }).spec, {
    resourceAttributes: { namespace: 'prod', verb: 'update', group: 'apps', resource: 'deployments', subresource: 'scale' },
  });
});

test('Quantity and IntOrString strings', () => {
  assert.deepEqual((decoded('quota') as { spec: unknown }).spec, { hard: { cpu: '1', memory: '1Gi', pods: '10' } });
  assert.equal((decoded('pdb') as { spec: { minAvailable: unknown } }).spec.minAvailable, '50%');
});

test('Eviction embedding DeleteOptions (what drain posts)', () => {
  const eviction = {
    apiVersion: 'policy/v1', kind: 'Eviction',
    metadata: { name: 'web-1', namespace: 'default' },
    deleteOptions: { gracePeriodSeconds: 0, preconditions: { uid: 'u-1' }, dryRun: ['All'] },
  };
  assert.deepEqual(decodeProtobuf(encodeProtobuf(eviction)).object, {
    ...eviction, metadata: { ...eviction.metadata, creationTimestamp: null },
  });
});

test('DeleteOptions is accepted under any known group version, not under unknown ones', () => {
  const opts = { kind: 'DeleteOptions', gracePeriodSeconds: 30, propagationPolicy: 'Foreground', orphanDependents: false };
  for (const apiVersion of ['meta.k8s.io/v1', 'v1', 'apps/v1', 'batch/v1']) {
    assert.deepEqual(decodeProtobuf(encodeProtobuf({ ...opts, apiVersion })).object, { ...opts, apiVersion });
  }
  const raw = protoRoot().lookupType('k8s.io.apimachinery.pkg.apis.meta.v1.DeleteOptions').encode({ gracePeriodSeconds: 1 }).finish();
  badRequest(() => decodeProtobuf(envelope('example.com/v1', 'DeleteOptions', raw)),
    'unable to decode protobuf body: no kind "DeleteOptions" is registered for version "example.com/v1"');
});

test('a Pod with the usual spec fields: inline sources, empty emptyDir, pointer zeros, probes, affinity', () => {
  const pod = {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name: 'p', generateName: 'p-', namespace: 'ns', uid: 'u1', resourceVersion: '42', generation: 3,
      creationTimestamp: '2024-01-02T03:04:05Z', deletionGracePeriodSeconds: 0,
      labels: { app: 'p', tier: 'web' }, annotations: { note: 'x' }, finalizers: ['example.com/f'],
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'rs', uid: 'u0', controller: true, blockOwnerDeletion: true }],
      managedFields: [{ manager: 'kubectl', operation: 'Update', apiVersion: 'v1', time: '2024-01-02T03:04:05Z', fieldsType: 'FieldsV1', fieldsV1: { 'f:metadata': { 'f:labels': {} } } }],
    },
    spec: {
      volumes: [
        { name: 'cache', emptyDir: {} },
        { name: 'tmp', emptyDir: { medium: 'Memory', sizeLimit: '64Mi' } },
        { name: 'cfg', configMap: { name: 'settings', items: [{ key: 'a', path: 'a.txt' }], defaultMode: 420 } },
        { name: 'sec', secret: { secretName: 'creds', optional: false } },
        { name: 'data', persistentVolumeClaim: { claimName: 'pvc' } },
        { name: 'host', hostPath: { path: '/var/log', type: 'Directory' } },
        { name: 'proj', projected: { sources: [{ serviceAccountToken: { path: 'token', expirationSeconds: 3600 } }, { downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } }] } },
      ],
      initContainers: [{ name: 'init', image: 'busybox', command: ['true'], resources: {} }],
      containers: [{
        name: 'app', image: 'example/app:1', args: ['--port=8080'], workingDir: '/srv', imagePullPolicy: 'IfNotPresent',
        ports: [{ name: 'http', containerPort: 8080, protocol: 'TCP' }, { containerPort: 9090, hostPort: 19090, hostIP: '127.0.0.1' }],
        env: [
          { name: 'A', value: '1' },
          { name: 'B', valueFrom: { configMapKeyRef: { name: 'settings', key: 'mode', optional: true } } },
          { name: 'C', valueFrom: { fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.name' } } },
          { name: 'D', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
          { name: 'E', valueFrom: { secretKeyRef: { name: 'creds', key: 'user' } } },
        ],
        envFrom: [{ prefix: 'S_', secretRef: { name: 'creds' } }, { configMapRef: { name: 'settings' } }],
        resources: { limits: { cpu: '500m', memory: '128Mi' }, requests: { cpu: '100m' } },
        volumeMounts: [{ name: 'cache', mountPath: '/cache', readOnly: true }, { name: 'cfg', mountPath: '/etc/app', subPath: 'a.txt' }],
        livenessProbe: { httpGet: { path: '/healthz', port: 'http', scheme: 'HTTP', httpHeaders: [{ name: 'X', value: 'y' }] }, initialDelaySeconds: 5, periodSeconds: 10 },
        readinessProbe: { tcpSocket: { port: 8080 }, failureThreshold: 3 },
        startupProbe: { exec: { command: ['cat', '/ready'] } },
        lifecycle: { preStop: { exec: { command: ['sleep', '5'] } } },
        securityContext: { runAsUser: 0, runAsNonRoot: false, privileged: false, readOnlyRootFilesystem: true, capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] } },
        stdin: true, tty: true,
      }],
      restartPolicy: 'Always', terminationGracePeriodSeconds: 0, dnsPolicy: 'ClusterFirst',
      nodeSelector: { disk: 'ssd' }, serviceAccountName: 'builder', automountServiceAccountToken: false, nodeName: 'n1',
      securityContext: { runAsGroup: 1000, fsGroup: 2000, sysctls: [{ name: 'net.ipv4.ip_forward', value: '1' }] },
      imagePullSecrets: [{ name: 'regcred' }],
      affinity: {
        nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'zone', operator: 'In', values: ['a', 'b'] }] }] } },
        podAntiAffinity: { preferredDuringSchedulingIgnoredDuringExecution: [{ weight: 100, podAffinityTerm: { labelSelector: { matchLabels: { app: 'p' } }, topologyKey: 'kubernetes.io/hostname' } }] },
      },
      tolerations: [{ key: 'k', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 0 }, { operator: 'Exists' }],
      hostAliases: [{ ip: '10.0.0.1', hostnames: ['db'] }],
      priority: 0, enableServiceLinks: false,
      topologySpreadConstraints: [{ maxSkew: 1, topologyKey: 'zone', whenUnsatisfiable: 'DoNotSchedule', labelSelector: { matchLabels: { app: 'p' } } }],
    },
  };
  // What Go would add: the zero status struct, and nothing else (everything above is set or a pointer).
  assert.deepEqual(decodeProtobuf(encodeProtobuf(pod)).object, { ...pod, status: {} });
});

test('plain zero scalars are dropped as Go omitempty does, pointer ones kept', () => {
  const out = decodeProtobuf(encodeProtobuf({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'z', generation: 0 },
    spec: { hostNetwork: false, activeDeadlineSeconds: 0, containers: [{ name: 'c', image: '', stdin: false }] },
  })).object;
  assert.deepEqual(out.spec, { activeDeadlineSeconds: 0, containers: [{ name: 'c', resources: {} }] });
  assert.deepEqual(out.metadata, { name: 'z', creationTimestamp: null });
});

test('Lease and Events: Time keeps seconds, MicroTime keeps microseconds', () => {
  const lease = {
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'node-1', namespace: 'kube-node-lease', creationTimestamp: null },
    spec: { holderIdentity: 'node-1', leaseDurationSeconds: 40, acquireTime: '2024-01-02T03:04:05.000000Z', renewTime: '2024-01-02T03:04:06.123456Z', leaseTransitions: 0 },
  };
  assert.deepEqual(decodeProtobuf(encodeProtobuf(lease)).object, lease);

  const event = {
    apiVersion: 'v1', kind: 'Event', metadata: { name: 'e.1', namespace: 'default', creationTimestamp: null },
    involvedObject: { kind: 'Pod', namespace: 'default', name: 'p', uid: 'u', apiVersion: 'v1', fieldPath: 'spec.containers{c}' },
    reason: 'Pulled', message: 'pulled', source: { component: 'kubelet', host: 'n1' },
    firstTimestamp: '2024-01-02T03:04:05Z', lastTimestamp: '2024-01-02T03:04:07Z', count: 2, type: 'Normal',
    eventTime: '2024-01-02T03:04:05.000001Z', reportingComponent: 'kubelet', reportingInstance: 'n1',
  };
  assert.deepEqual(decodeProtobuf(encodeProtobuf(event)).object, event);

  // Kubernetes reads a Time's nanos but drops them (its JSON has whole seconds only).
  const meta = protoRoot().lookupType('k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta');
  const ns = protoRoot().lookupType('k8s.io.api.core.v1.Namespace');
  const raw = ns.encode({ metadata: meta.fromObject({ name: 'n', creationTimestamp: { seconds: 1704164645, nanos: 999 } }) }).finish();
  assert.deepEqual(decodeProtobuf(envelope('v1', 'Namespace', raw)).object.metadata, { name: 'n', creationTimestamp: '2024-01-02T03:04:05Z' });
});

test('Binding, ServiceAccount and binary Secret data', () => {
  const binding = { apiVersion: 'v1', kind: 'Binding', metadata: { name: 'p', namespace: 'default', creationTimestamp: null }, target: { kind: 'Node', name: 'n1' } };
  assert.deepEqual(decodeProtobuf(encodeProtobuf(binding)).object, binding);
  const sa = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'sa', creationTimestamp: null }, secrets: [{ name: 's' }], automountServiceAccountToken: false };
  assert.deepEqual(decodeProtobuf(encodeProtobuf(sa)).object, sa);
  const bytes = Buffer.from([0, 1, 2, 0xfe, 0xff]);
  const secret = { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'bin', creationTimestamp: null }, data: { blob: bytes.toString('base64') }, immutable: true };
  assert.deepEqual(decodeProtobuf(encodeProtobuf(secret)).object, secret);
});

test('cluster-extension kinds round-trip: CSR approval, webhook configuration, RuntimeClass, APIService', () => {
  const csr = {
    apiVersion: 'certificates.k8s.io/v1', kind: 'CertificateSigningRequest', metadata: { name: 'alice', creationTimestamp: null },
    spec: { request: b64('-----BEGIN CERTIFICATE REQUEST-----\n'), signerName: 'kubernetes.io/kube-apiserver-client', expirationSeconds: 600, usages: ['client auth'] },
    status: { conditions: [{ type: 'Approved', status: 'True', reason: 'KubectlApprove', message: 'ok', lastUpdateTime: '2026-01-01T00:00:00Z', lastTransitionTime: null }] },
  };
  assert.deepEqual(decodeProtobuf(encodeProtobuf(csr)).object, csr);
  const vwc = {
    apiVersion: 'admissionregistration.k8s.io/v1', kind: 'ValidatingWebhookConfiguration', metadata: { name: 'v', creationTimestamp: null },
    webhooks: [{ name: 'v.example.com', clientConfig: { url: 'https://x.example.com/v' }, sideEffects: 'None', admissionReviewVersions: ['v1'], timeoutSeconds: 5 }],
  };
  assert.deepEqual(decodeProtobuf(encodeProtobuf(vwc)).object, vwc);
  const rc = { apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'kata', creationTimestamp: null }, handler: 'kata', overhead: { podFixed: { cpu: '250m' } } };
  assert.deepEqual(decodeProtobuf(encodeProtobuf(rc)).object, rc);
  const apisvc = {
    apiVersion: 'apiregistration.k8s.io/v1', kind: 'APIService', metadata: { name: 'v1beta1.metrics.k8s.io', creationTimestamp: null },
    spec: { group: 'metrics.k8s.io', version: 'v1beta1', groupPriorityMinimum: 100, versionPriority: 100, service: { namespace: 'kube-system', name: 'metrics-server', port: 443 } },
    status: {},
  };
  assert.deepEqual(decodeProtobuf(encodeProtobuf(apisvc)).object, apisvc);
});

test('supportedProtobufKinds lists the kinds kubectl and client libraries post', () => {
  const kinds = supportedProtobufKinds();
  for (const k of ['v1/Namespace', 'v1/ConfigMap', 'v1/Secret', 'v1/Service', 'v1/Pod', 'v1/Binding', 'v1/Event', 'v1/ServiceAccount',
    'apps/v1/Deployment', 'batch/v1/Job', 'batch/v1/CronJob', 'authentication.k8s.io/v1/TokenRequest',
    'autoscaling/v1/HorizontalPodAutoscaler', 'authorization.k8s.io/v1/SelfSubjectAccessReview', 'policy/v1/Eviction',
    'meta.k8s.io/v1/DeleteOptions', 'coordination.k8s.io/v1/Lease', 'events.k8s.io/v1/Event',
    'certificates.k8s.io/v1/CertificateSigningRequest', 'node.k8s.io/v1/RuntimeClass', 'apiregistration.k8s.io/v1/APIService',
    'admissionregistration.k8s.io/v1/MutatingWebhookConfiguration', 'flowcontrol.apiserver.k8s.io/v1/FlowSchema']) {
    assert.ok(kinds.includes(k), k);
  }
});

test('malformed bodies are 400s with Kubernetes-like messages', () => {
  badRequest(() => decodeProtobuf(Buffer.alloc(0)), 'unable to decode protobuf body: empty data');
  badRequest(() => decodeProtobuf(Buffer.from('{"kind":"Pod"}')),
    'unable to decode protobuf body: provided data does not appear to be a protobuf message, expected prefix [107 56 115 0]');
  badRequest(() => decodeProtobuf(Buffer.from('k8s')), /expected prefix/);
  badRequest(() => decodeProtobuf(PROTOBUF_MAGIC), 'unable to decode protobuf body: empty body');
  badRequest(() => decodeProtobuf(envelope('v1', 'Foo')), 'unable to decode protobuf body: no kind "Foo" is registered for version "v1"');
  badRequest(() => decodeProtobuf(envelope('apps/v9', 'Deployment')), 'unable to decode protobuf body: no kind "Deployment" is registered for version "apps/v9"');
  badRequest(() => decodeProtobuf(envelope('__proto__', 'toString')), /no kind "toString" is registered/);
  badRequest(() => decodeProtobuf(envelope('v1', 'hasOwnProperty')), /no kind "hasOwnProperty" is registered/);
  badRequest(() => decodeProtobuf(envelope('v1', 'PodSpec')), /no kind "PodSpec" is registered/);
  badRequest(() => decodeProtobuf(envelope('v1', '')), /Object 'Kind' is missing/);
  badRequest(() => decodeProtobuf(envelope('', 'Pod')), /Object 'apiVersion' is missing/);
  const full = body('deployment');
  badRequest(() => decodeProtobuf(full.subarray(0, full.length - 3)), /^unable to decode protobuf body: /);
  badRequest(() => decodeProtobuf(envelope('v1', 'Namespace', Buffer.from([0x0a, 0x05, 0x0a]))), /^unable to decode protobuf body: /);
  // managedFields[].fieldsV1 must hold JSON.
  const om = protoRoot().lookupType('k8s.io.apimachinery.pkg.apis.meta.v1.ObjectMeta');
  const ns = protoRoot().lookupType('k8s.io.api.core.v1.Namespace');
  const raw = ns.encode({ metadata: om.fromObject({ managedFields: [{ fieldsV1: { Raw: Buffer.from('{nope') } }] }) }).finish();
  badRequest(() => decodeProtobuf(envelope('v1', 'Namespace', raw)), 'unable to decode protobuf body: Namespace: FieldsV1 does not hold JSON');
});

test('every truncation of every captured body gives an object or a 400', () => {
  for (const name of storedBodies) {
    const full = body(name);
    for (let n = 0; n < full.length; n++) tryDecode(full.subarray(0, n), `${name}[0:${n}]`);
  }
});

// "Never hang" is bounded by the test's timeout, not by a time budget.
test('fuzz: random and mutated bodies never throw anything but a 400, and never hang', { timeout: 120_000 }, () => {
  let seed = 0x5eed;
  const rand = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x80000000; };
  const bodies = storedBodies.map(body);
  for (let i = 0; i < 4000; i++) {
    let buf: Buffer;
    if (i % 2 === 0) {
      buf = Buffer.from(bodies[i % bodies.length]);
      for (let flips = 1 + Math.floor(rand() * 4); flips > 0; flips--) buf[Math.floor(rand() * buf.length)] = Math.floor(rand() * 256);
    } else {
      buf = Buffer.from(Array.from({ length: Math.floor(rand() * 200) }, () => Math.floor(rand() * 256)));
      if (i % 4 === 1) buf = Buffer.concat([PROTOBUF_MAGIC, buf]);
    }
    tryDecode(buf, `case ${i}: ${buf.toString('hex')}`);
  }
  // Pathological shapes: deeply nested groups, a length far past the end, a huge varint.
  tryDecode(Buffer.concat([PROTOBUF_MAGIC, Buffer.alloc(200_000, 0x0b)]), 'nested groups');
  tryDecode(Buffer.concat([PROTOBUF_MAGIC, Buffer.from([0x12, 0xff, 0xff, 0xff, 0xff, 0x0f])]), 'long length');
  tryDecode(Buffer.concat([PROTOBUF_MAGIC, Buffer.alloc(64, 0xff)]), 'endless varint');
  tryDecode(envelope('v1', 'Pod', Buffer.alloc(100_000, 0x0b)), 'nested groups in the object');
});

function tryDecode(buf: Buffer, what: string): void {
  try {
    const out = decodeProtobuf(buf);
    assert.equal(typeof out.object, 'object', what);
    JSON.stringify(out.object);
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== 400) assert.fail(`${what}: threw ${err instanceof Error ? err.stack : String(err)}`);
  }
}
