// Defaulting of built-in kinds: Kubernetes' defaults are filled in, explicit values are kept, and
// defaulting twice gives the same object as defaulting once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyCreateDefaults, applyDefaults } from '../../src/api/defaults/index.js';
import type { KObject } from '../../src/api/object.js';

type Obj = Record<string, any>;

function defaulted(key: string, obj: Obj): Obj {
  const o = structuredClone(obj) as KObject;
  const [group, plural] = key.split('/');
  applyDefaults(group, plural, o);
  return o;
}

const meta = (name: string) => ({ name, namespace: 'default' });
const container = { name: 'app', image: 'nginx:1.25' };
const template = { metadata: { labels: { app: 'web' } }, spec: { containers: [container] } };

const DEFAULTED_CONTAINER = {
  name: 'app', image: 'nginx:1.25', imagePullPolicy: 'IfNotPresent', resources: {},
  terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File',
};
const DEFAULTED_TEMPLATE_SPEC = {
  containers: [DEFAULTED_CONTAINER], restartPolicy: 'Always', dnsPolicy: 'ClusterFirst', securityContext: {},
  terminationGracePeriodSeconds: 30, schedulerName: 'default-scheduler',
};

test('pod defaults', () => {
  const pod = defaulted('/pods', {
    metadata: meta('web'),
    spec: {
      containers: [{
        ...container,
        ports: [{ containerPort: 80 }],
        env: [{ name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
        livenessProbe: { httpGet: { port: 80 } },
        resources: { limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '500m' } },
      }],
      volumes: [
        { name: 'cfg', configMap: { name: 'cfg' } },
        { name: 'sec', secret: { secretName: 's' } },
        { name: 'host', hostPath: { path: '/var/log' } },
        { name: 'scratch' },
      ],
    },
  });
  assert.deepEqual(pod.spec, {
    ...DEFAULTED_TEMPLATE_SPEC,
    enableServiceLinks: true,
    containers: [{
      ...DEFAULTED_CONTAINER,
      ports: [{ containerPort: 80, protocol: 'TCP' }],
      env: [{ name: 'NODE', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName', apiVersion: 'v1' } } }],
      livenessProbe: { httpGet: { port: 80, path: '/', scheme: 'HTTP' }, timeoutSeconds: 1, periodSeconds: 10, successThreshold: 1, failureThreshold: 3 },
      // Requests default to limits, in a Pod only; an explicit request is kept.
      resources: { limits: { cpu: '1', memory: '1Gi' }, requests: { cpu: '500m', memory: '1Gi' } },
    }],
    volumes: [
      { name: 'cfg', configMap: { name: 'cfg', defaultMode: 420 } },
      { name: 'sec', secret: { secretName: 's', defaultMode: 420 } },
      { name: 'host', hostPath: { path: '/var/log', type: '' } },
      { name: 'scratch', emptyDir: {} },
    ],
  });
});

test('imagePullPolicy follows the tag', () => {
  const cases: [string, string][] = [
    ['nginx', 'Always'], ['nginx:latest', 'Always'], ['nginx:1.25', 'IfNotPresent'],
    ['nginx@sha256:0123456789abcdef', 'IfNotPresent'], ['localhost:5000/app', 'Always'], ['localhost:5000/app:v1', 'IfNotPresent'],
  ];
  for (const [image, policy] of cases) {
    const pod = defaulted('/pods', { metadata: meta('p'), spec: { containers: [{ name: 'c', image }] } });
    assert.equal(pod.spec.containers[0].imagePullPolicy, policy, image);
  }
});

test('host networking exposes container ports on the host', () => {
  const pod = defaulted('/pods', { metadata: meta('p'), spec: { hostNetwork: true, containers: [{ ...container, ports: [{ containerPort: 8080 }] }] } });
  assert.equal(pod.spec.containers[0].ports[0].hostPort, 8080);
});

test('deployment defaults', () => {
  const d = defaulted('apps/deployments', { metadata: meta('web'), spec: { selector: { matchLabels: { app: 'web' } }, template } });
  assert.deepEqual(d.spec, {
    replicas: 1, selector: { matchLabels: { app: 'web' } },
    strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: '25%', maxSurge: '25%' } },
    revisionHistoryLimit: 10, progressDeadlineSeconds: 600,
    // Pod-only defaults (enableServiceLinks, requests from limits) stay out of templates.
    template: { metadata: { labels: { app: 'web' } }, spec: DEFAULTED_TEMPLATE_SPEC },
  });
});

test('replicaset, daemonset and statefulset defaults', () => {
  assert.equal(defaulted('apps/replicasets', { metadata: meta('r'), spec: { template } }).spec.replicas, 1);
  const ds = defaulted('apps/daemonsets', { metadata: meta('d'), spec: { template } });
  assert.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1, maxSurge: 0 } });
  assert.equal(ds.spec.revisionHistoryLimit, 10);
  const sts = defaulted('apps/statefulsets', {
    metadata: meta('db'),
    spec: { template, volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'] } }] },
  });
  assert.equal(sts.spec.replicas, 1);
  assert.equal(sts.spec.podManagementPolicy, 'OrderedReady');
  assert.deepEqual(sts.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { partition: 0 } });
  assert.deepEqual(sts.spec.persistentVolumeClaimRetentionPolicy, { whenDeleted: 'Retain', whenScaled: 'Retain' });
  assert.equal(sts.spec.revisionHistoryLimit, 10);
  assert.deepEqual(sts.spec.volumeClaimTemplates[0], {
    metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], volumeMode: 'Filesystem' }, status: { phase: 'Pending' },
  });
  // An explicit OnDelete strategy gets no rollingUpdate.
  const onDelete = defaulted('apps/statefulsets', { metadata: meta('db'), spec: { template, updateStrategy: { type: 'OnDelete' } } });
  assert.deepEqual(onDelete.spec.updateStrategy, { type: 'OnDelete' });
});

const jobTemplate = { spec: { containers: [container], restartPolicy: 'Never' } };

test('job defaults and generated selector', () => {
  const job = defaulted('batch/jobs', { metadata: { ...meta('pi'), uid: 'u-1' }, spec: { template: jobTemplate } });
  const generated = {
    'batch.kubernetes.io/controller-uid': 'u-1', 'batch.kubernetes.io/job-name': 'pi', 'controller-uid': 'u-1', 'job-name': 'pi',
  };
  assert.deepEqual(job.metadata.labels, generated);
  assert.deepEqual({ ...job.spec, template: undefined }, {
    completions: 1, parallelism: 1, backoffLimit: 6, completionMode: 'NonIndexed', suspend: false,
    podReplacementPolicy: 'TerminatingOrFailed', template: undefined,
    selector: { matchLabels: { 'batch.kubernetes.io/controller-uid': 'u-1' } },
  });
  assert.deepEqual(job.spec.template.metadata.labels, generated);
  assert.equal(job.spec.template.spec.restartPolicy, 'Never');
  assert.equal('manualSelector' in job.spec, false);
});

test('job completions, parallelism and restartPolicy rules', () => {
  // Parallelism alone is a work queue: completions stay unset.
  const queue = defaulted('batch/jobs', { metadata: { ...meta('q'), uid: 'u' }, spec: { parallelism: 3, template: jobTemplate } });
  assert.equal(queue.spec.parallelism, 3);
  assert.equal('completions' in queue.spec, false);
  const counted = defaulted('batch/jobs', { metadata: { ...meta('c'), uid: 'u' }, spec: { completions: 5, template: jobTemplate } });
  assert.equal(counted.spec.parallelism, 1);
  const perIndex = defaulted('batch/jobs', { metadata: { ...meta('i'), uid: 'u' }, spec: { completionMode: 'Indexed', completions: 2, backoffLimitPerIndex: 1, template: jobTemplate } });
  assert.equal(perIndex.spec.backoffLimit, 2147483647);
  // Job templates get no restartPolicy default.
  const noPolicy = defaulted('batch/jobs', { metadata: { ...meta('n'), uid: 'u' }, spec: { template: { spec: { containers: [container] } } } });
  assert.equal(noPolicy.spec.template.spec.restartPolicy, undefined);
  // A manual selector is left alone, and so are the Job's own labels.
  const manual = defaulted('batch/jobs', { metadata: { ...meta('m'), uid: 'u', labels: { team: 'a' } }, spec: { manualSelector: true, template: jobTemplate } });
  assert.equal(manual.spec.selector, undefined);
  assert.deepEqual(manual.metadata.labels, { team: 'a' });
});

test('cronjob defaults', () => {
  const cj = defaulted('batch/cronjobs', { metadata: meta('nightly'), spec: { schedule: '@daily', jobTemplate: { spec: { template: jobTemplate } } } });
  assert.equal(cj.spec.concurrencyPolicy, 'Allow');
  assert.equal(cj.spec.suspend, false);
  assert.equal(cj.spec.successfulJobsHistoryLimit, 3);
  assert.equal(cj.spec.failedJobsHistoryLimit, 1);
  // The job template gets pod defaults only; Job-level defaults apply when the Job is created.
  assert.equal(cj.spec.jobTemplate.spec.backoffLimit, undefined);
  assert.equal(cj.spec.jobTemplate.spec.template.spec.dnsPolicy, 'ClusterFirst');
});

test('service defaults', () => {
  const svc = defaulted('/services', { metadata: meta('web'), spec: { selector: { app: 'web' }, ports: [{ port: 80 }, { name: 'm', port: 9090, targetPort: 'metrics' }] } });
  assert.deepEqual(svc.spec, {
    selector: { app: 'web' },
    ports: [{ port: 80, protocol: 'TCP', targetPort: 80 }, { name: 'm', port: 9090, targetPort: 'metrics', protocol: 'TCP' }],
    type: 'ClusterIP', sessionAffinity: 'None', internalTrafficPolicy: 'Cluster', ipFamilyPolicy: 'SingleStack', ipFamilies: ['IPv4'],
  });
  const np = defaulted('/services', { metadata: meta('np'), spec: { type: 'NodePort', ports: [{ port: 80 }] } });
  assert.equal(np.spec.externalTrafficPolicy, 'Cluster');
  const lb = defaulted('/services', { metadata: meta('lb'), spec: { type: 'LoadBalancer', ports: [{ port: 80 }] } });
  assert.equal(lb.spec.allocateLoadBalancerNodePorts, true);
  const ext = defaulted('/services', { metadata: meta('ext'), spec: { type: 'ExternalName', externalName: 'example.com' } });
  assert.deepEqual(ext.spec, { type: 'ExternalName', externalName: 'example.com', sessionAffinity: 'None' });
  const headless = defaulted('/services', { metadata: meta('h'), spec: { clusterIP: 'None', ports: [{ port: 80 }] } });
  assert.deepEqual([headless.spec.clusterIPs, headless.spec.ipFamilyPolicy, headless.spec.ipFamilies], [['None'], 'RequireDualStack', ['IPv4', 'IPv6']]);
  const sticky = defaulted('/services', { metadata: meta('s'), spec: { sessionAffinity: 'ClientIP', ports: [{ port: 80 }] } });
  assert.deepEqual(sticky.spec.sessionAffinityConfig, { clientIP: { timeoutSeconds: 10800 } });
});

test('namespace defaults, with the finalizer on create only', () => {
  const ns = defaulted('/namespaces', { metadata: { name: 'team-a' } });
  assert.deepEqual(ns, { metadata: { name: 'team-a', labels: { 'kubernetes.io/metadata.name': 'team-a' } }, status: { phase: 'Active' } });
  applyCreateDefaults('', 'namespaces', ns as KObject);
  assert.deepEqual((ns as Obj).spec, { finalizers: ['kubernetes'] });
  // Once the namespace controller removed it, later writes must not bring it back.
  const finalized = defaulted('/namespaces', { ...ns, spec: { finalizers: [] }, status: { phase: 'Terminating' } });
  assert.deepEqual(finalized.spec.finalizers, []);
  assert.equal(finalized.status.phase, 'Terminating');
});

test('secret, claim and volume defaults', () => {
  const secret = defaulted('/secrets', { metadata: meta('s'), data: { a: 'eA==' }, stringData: { b: 'hello' } });
  assert.deepEqual(secret, { metadata: meta('s'), type: 'Opaque', data: { a: 'eA==', b: 'aGVsbG8=' } });
  const pvc = defaulted('/persistentvolumeclaims', { metadata: meta('c'), spec: { accessModes: ['ReadWriteOnce'] } });
  assert.equal(pvc.spec.volumeMode, 'Filesystem');
  const pv = defaulted('/persistentvolumes', { metadata: { name: 'pv' }, spec: { hostPath: { path: '/x' } } });
  assert.deepEqual([pv.spec.persistentVolumeReclaimPolicy, pv.spec.volumeMode, pv.status.phase], ['Retain', 'Filesystem', 'Pending']);
});

test('hpa, networkpolicy, rbac and crd defaults', () => {
  const hpa = defaulted('autoscaling/horizontalpodautoscalers', {
    apiVersion: 'autoscaling/v2', metadata: meta('web'), spec: { maxReplicas: 3, behavior: { scaleDown: { selectPolicy: 'Min' } } },
  });
  assert.equal(hpa.spec.minReplicas, 1);
  assert.deepEqual(hpa.spec.metrics, [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 80 } } }]);
  assert.deepEqual(hpa.spec.behavior, {
    scaleUp: { stabilizationWindowSeconds: 0, selectPolicy: 'Max', policies: [{ type: 'Pods', value: 4, periodSeconds: 15 }, { type: 'Percent', value: 100, periodSeconds: 15 }] },
    scaleDown: { selectPolicy: 'Min', stabilizationWindowSeconds: 300, policies: [{ type: 'Percent', value: 100, periodSeconds: 15 }] },
  });
  const np = defaulted('networking.k8s.io/networkpolicies', { metadata: meta('np'), spec: { podSelector: {}, egress: [{ ports: [{ port: 53 }] }] } });
  assert.deepEqual(np.spec.policyTypes, ['Ingress', 'Egress']);
  assert.equal(np.spec.egress[0].ports[0].protocol, 'TCP');
  const rb = defaulted('rbac.authorization.k8s.io/rolebindings', { metadata: meta('rb'), roleRef: { kind: 'Role', name: 'r' }, subjects: [{ kind: 'User', name: 'u' }, { kind: 'ServiceAccount', name: 'sa' }] });
  assert.deepEqual(rb.roleRef.apiGroup, 'rbac.authorization.k8s.io');
  assert.deepEqual(rb.subjects, [{ kind: 'User', name: 'u', apiGroup: 'rbac.authorization.k8s.io' }, { kind: 'ServiceAccount', name: 'sa' }]);
  const crd = defaulted('apiextensions.k8s.io/customresourcedefinitions', { metadata: { name: 'widgets.example.com' }, spec: { names: { plural: 'widgets', kind: 'Widget' } } });
  assert.deepEqual(crd.spec.names, { plural: 'widgets', kind: 'Widget', singular: 'widget', listKind: 'WidgetList' });
  assert.deepEqual(crd.spec.conversion, { strategy: 'None' });
});

test('explicit values are kept', () => {
  const d = defaulted('apps/deployments', {
    metadata: meta('web'),
    spec: {
      replicas: 0, revisionHistoryLimit: 0, strategy: { type: 'Recreate' },
      template: { spec: { restartPolicy: 'Always', terminationGracePeriodSeconds: 0, dnsPolicy: 'Default', containers: [{ ...container, imagePullPolicy: 'Never' }] } },
    },
  });
  assert.equal(d.spec.replicas, 0);
  assert.equal(d.spec.revisionHistoryLimit, 0);
  assert.deepEqual(d.spec.strategy, { type: 'Recreate' });
  assert.equal(d.spec.template.spec.terminationGracePeriodSeconds, 0);
  assert.equal(d.spec.template.spec.dnsPolicy, 'Default');
  assert.equal(d.spec.template.spec.containers[0].imagePullPolicy, 'Never');
  const job = defaulted('batch/jobs', { metadata: { ...meta('j'), uid: 'u' }, spec: { suspend: true, backoffLimit: 0, template: jobTemplate } });
  assert.deepEqual([job.spec.suspend, job.spec.backoffLimit], [true, 0]);
  const svc = defaulted('/services', { metadata: meta('s'), spec: { type: 'NodePort', externalTrafficPolicy: 'Local', ports: [{ port: 80, targetPort: 8080, protocol: 'UDP' }] } });
  assert.deepEqual(svc.spec.ports[0], { port: 80, targetPort: 8080, protocol: 'UDP' });
  assert.equal(svc.spec.externalTrafficPolicy, 'Local');
});

test('defaulting twice equals defaulting once', () => {
  const fixtures: [string, Obj][] = [
    ['/pods', { metadata: meta('p'), spec: { containers: [{ ...container, resources: { limits: { cpu: '1' } } }], volumes: [{ name: 'v' }] } }],
    ['/services', { metadata: meta('s'), spec: { clusterIP: 'None', ports: [{ port: 80 }] } }],
    ['/namespaces', { metadata: { name: 'n' } }],
    ['/secrets', { metadata: meta('s'), stringData: { a: 'b' } }],
    ['/replicationcontrollers', { metadata: meta('rc'), spec: { template } }],
    ['/persistentvolumeclaims', { metadata: meta('c'), spec: {} }],
    ['/limitranges', { metadata: meta('l'), spec: { limits: [{ type: 'Container', max: { cpu: '2' }, min: { memory: '1Mi' } }] } }],
    ['apps/deployments', { metadata: meta('d'), spec: { template } }],
    ['apps/daemonsets', { metadata: meta('d'), spec: { template } }],
    ['apps/statefulsets', { metadata: meta('s'), spec: { template, volumeClaimTemplates: [{ metadata: { name: 'x' }, spec: {} }] } }],
    ['batch/jobs', { metadata: { ...meta('j'), uid: 'u' }, spec: { template: jobTemplate } }],
    ['batch/cronjobs', { metadata: meta('c'), spec: { jobTemplate: { spec: { template: jobTemplate } } } }],
    ['autoscaling/horizontalpodautoscalers', { apiVersion: 'autoscaling/v2', metadata: meta('h'), spec: { behavior: {} } }],
    ['networking.k8s.io/networkpolicies', { metadata: meta('n'), spec: {} }],
    ['storage.k8s.io/storageclasses', { metadata: { name: 's' }, provisioner: 'p' }],
    ['apiextensions.k8s.io/customresourcedefinitions', { metadata: { name: 'a.b.c' }, spec: { names: { kind: 'A' } } }],
  ];
  for (const [key, obj] of fixtures) {
    const once = defaulted(key, obj);
    assert.notDeepEqual(once, obj, `${key}: defaults applied`);
    assert.deepEqual(defaulted(key, once), once, key);
  }
});
