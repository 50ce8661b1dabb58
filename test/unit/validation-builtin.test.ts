// Validation of built-in kinds: a valid object of every kind passes, and each rule fails with
// Kubernetes' own field path and message. Objects are defaulted first, as the apiserver does.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyCreateDefaults, applyDefaults } from '../../src/api/defaults/index.js';
import { BUILTIN_KINDS, type KindInfo } from '../../src/api/kinds.js';
import type { KObject } from '../../src/api/object.js';
import { validateObject } from '../../src/api/validation/index.js';
import { errors, type StatusCause } from '../../src/api/status.js';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

type Obj = Record<string, any>;

function info(key: string): KindInfo {
  const [group, plural] = key.split('/');
  const found = BUILTIN_KINDS.find((k) => k.group === group && k.plural === plural && !k.storage);
  assert.ok(found, `no kind ${key}`);
  return found;
}

function prepare(key: string, obj: Obj, create = true): KObject {
  const o = structuredClone(obj) as KObject;
  const [group, plural] = key.split('/');
  applyDefaults(group, plural, o);
  if (create) applyCreateDefaults(group, plural, o);
  return o;
}

function validate(key: string, obj: Obj, old?: Obj): StatusCause[] {
  return validateObject(info(key), prepare(key, obj, !old), old ? prepare(key, old) : undefined);
}

const ns = (name: string) => ({ name, namespace: 'default' });
const container = { name: 'app', image: 'nginx:1.25' };
const podSpec = { containers: [container] };
const template = { metadata: { labels: { app: 'web' } }, spec: podSpec };
const selector = { matchLabels: { app: 'web' } };
const jobTemplate = { spec: { template: { spec: { ...podSpec, restartPolicy: 'Never' } } } };

const VALID: Record<string, Obj> = {
  '/pods': { metadata: ns('web'), spec: podSpec },
  '/services': { metadata: ns('web'), spec: { selector: { app: 'web' }, ports: [{ port: 80 }] } },
  '/namespaces': { metadata: { name: 'team-a' } },
  '/nodes': { metadata: { name: 'node-1' }, spec: { taints: [{ key: 'dedicated', value: 'edge', effect: 'NoSchedule' }] } },
  '/configmaps': { metadata: ns('cfg'), data: { 'app.conf': 'x=1' } },
  '/secrets': { metadata: ns('tls'), type: 'kubernetes.io/tls', data: { 'tls.crt': 'YQ==', 'tls.key': 'Yg==' } },
  '/serviceaccounts': { metadata: ns('builder') },
  '/endpoints': { metadata: ns('web'), subsets: [{ addresses: [{ ip: '10.42.0.5' }], ports: [{ port: 80 }] }] },
  '/events': { metadata: ns('web.1'), involvedObject: { kind: 'Pod', name: 'web', namespace: 'default' }, reason: 'Started' },
  '/persistentvolumes': { metadata: { name: 'pv-1' }, spec: { capacity: { storage: '1Gi' }, accessModes: ['ReadWriteOnce'], hostPath: { path: '/data' } } },
  '/persistentvolumeclaims': { metadata: ns('data'), spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } },
  '/limitranges': { metadata: ns('limits'), spec: { limits: [{ type: 'Container', max: { cpu: '1' } }] } },
  '/resourcequotas': { metadata: ns('quota'), spec: { hard: { pods: '10' } } },
  '/podtemplates': { metadata: ns('tpl'), template },
  '/replicationcontrollers': { metadata: ns('rc'), spec: { selector: { app: 'web' }, template } },
  'apps/deployments': { metadata: ns('web'), spec: { selector, template } },
  'apps/replicasets': { metadata: ns('web-1'), spec: { selector, template } },
  'apps/daemonsets': { metadata: ns('agent'), spec: { selector, template } },
  'apps/statefulsets': {
    metadata: ns('db'),
    spec: {
      selector, serviceName: 'db',
      // The mount names a claim template, not a volume: Kubernetes accepts this for StatefulSets.
      template: { metadata: { labels: { app: 'web' } }, spec: { containers: [{ ...container, volumeMounts: [{ name: 'data', mountPath: '/data' }] }] } },
      volumeClaimTemplates: [{ metadata: { name: 'data' }, spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } } }],
    },
  },
  'apps/controllerrevisions': { metadata: ns('web-abc'), data: { spec: {} }, revision: 1 },
  'batch/jobs': { metadata: { ...ns('pi'), uid: '4d2a' }, spec: { template: { spec: { ...podSpec, restartPolicy: 'Never' } } } },
  'batch/cronjobs': { metadata: ns('nightly'), spec: { schedule: '0 3 * * *', jobTemplate } },
  'autoscaling/horizontalpodautoscalers': {
    apiVersion: 'autoscaling/v2', metadata: ns('web'), spec: { scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' }, maxReplicas: 5 },
  },
  'policy/poddisruptionbudgets': { metadata: ns('web'), spec: { minAvailable: 1, selector } },
  'coordination.k8s.io/leases': { metadata: ns('node-1'), spec: { holderIdentity: 'node-1', leaseDurationSeconds: 40 } },
  'discovery.k8s.io/endpointslices': { metadata: ns('web-x'), addressType: 'IPv4', endpoints: [{ addresses: ['10.42.0.5'] }], ports: [{ port: 80 }] },
  'events.k8s.io/events': {
    metadata: ns('web.2'), eventTime: '2024-01-01T00:00:00.000000Z', reportingController: 'skiff.io/scheduler', reportingInstance: 'skiff-1',
    action: 'Binding', reason: 'Scheduled', type: 'Normal', regarding: { kind: 'Pod', name: 'web', namespace: 'default' },
  },
  'rbac.authorization.k8s.io/roles': { metadata: ns('reader'), rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['get'] }] },
  'rbac.authorization.k8s.io/rolebindings': {
    metadata: ns('reader'), roleRef: { kind: 'Role', name: 'reader' }, subjects: [{ kind: 'ServiceAccount', name: 'builder' }, { kind: 'User', name: 'alice' }],
  },
  'rbac.authorization.k8s.io/clusterroles': { metadata: { name: 'system:probe' }, rules: [{ nonResourceURLs: ['/healthz'], verbs: ['get'] }] },
  'rbac.authorization.k8s.io/clusterrolebindings': {
    metadata: { name: 'probe' }, roleRef: { kind: 'ClusterRole', name: 'system:probe' }, subjects: [{ kind: 'ServiceAccount', name: 'sa', namespace: 'default' }],
  },
  'storage.k8s.io/storageclasses': { metadata: { name: 'local-path' }, provisioner: 'rancher.io/local-path' },
  'networking.k8s.io/ingresses': {
    metadata: ns('web'),
    spec: { rules: [{ host: 'web.example.com', http: { paths: [{ path: '/', pathType: 'Prefix', backend: { service: { name: 'web', port: { number: 80 } } } }] } }] },
  },
  'networking.k8s.io/ingressclasses': { metadata: { name: 'traefik' }, spec: { controller: 'traefik.io/ingress-controller' } },
  'networking.k8s.io/networkpolicies': { metadata: ns('deny'), spec: { podSelector: {}, ingress: [{ ports: [{ port: 80 }] }] } },
  'scheduling.k8s.io/priorityclasses': { metadata: { name: 'high' }, value: 1000 },
  'apiextensions.k8s.io/customresourcedefinitions': {
    metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com', scope: 'Namespaced', names: { plural: 'widgets', kind: 'Widget' },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object' } } }],
    },
  },
  'storage.k8s.io/csidrivers': { metadata: { name: 'hostpath.csi.k8s.io' }, spec: { attachRequired: false, volumeLifecycleModes: ['Persistent', 'Ephemeral'] } },
  'storage.k8s.io/csinodes': { metadata: { name: 'node-1' }, spec: { drivers: [{ name: 'hostpath.csi.k8s.io', nodeID: 'node-1' }] } },
  'storage.k8s.io/csistoragecapacities': { metadata: ns('cap-1'), storageClassName: 'local-path', capacity: '10Gi' },
  'storage.k8s.io/volumeattachments': { metadata: { name: 'va-1' }, spec: { attacher: 'hostpath.csi.k8s.io', nodeName: 'node-1', source: { persistentVolumeName: 'pv-1' } } },
  'admissionregistration.k8s.io/mutatingwebhookconfigurations': {
    metadata: { name: 'inject' },
    webhooks: [{
      name: 'inject.example.com', admissionReviewVersions: ['v1'], sideEffects: 'None', reinvocationPolicy: 'IfNeeded',
      clientConfig: { url: 'https://hooks.example.com/inject' }, rules: [{ operations: ['CREATE'], apiGroups: [''], apiVersions: ['v1'], resources: ['pods'] }],
    }],
  },
  'admissionregistration.k8s.io/validatingwebhookconfigurations': {
    metadata: { name: 'check' },
    webhooks: [{ name: 'check.example.com', admissionReviewVersions: ['v1'], sideEffects: 'NoneOnDryRun', clientConfig: { service: { name: 'hook', namespace: 'default' } } }],
  },
  'admissionregistration.k8s.io/validatingadmissionpolicies': {
    metadata: { name: 'replicas' },
    spec: {
      matchConstraints: { resourceRules: [{ operations: ['CREATE'], apiGroups: ['apps'], apiVersions: ['v1'], resources: ['deployments'] }] },
      validations: [{ expression: 'object.spec.replicas <= 5' }],
    },
  },
  'admissionregistration.k8s.io/validatingadmissionpolicybindings': { metadata: { name: 'replicas' }, spec: { policyName: 'replicas', validationActions: ['Deny', 'Audit'] } },
  'apiregistration.k8s.io/apiservices': {
    metadata: { name: 'v1beta1.custom.metrics.k8s.io' },
    spec: { group: 'custom.metrics.k8s.io', version: 'v1beta1', groupPriorityMinimum: 100, versionPriority: 100, service: { name: 'adapter', namespace: 'monitoring' } },
  },
  'certificates.k8s.io/certificatesigningrequests': {
    metadata: { name: 'alice' },
    spec: { request: Buffer.from(opensslCsr()).toString('base64'), signerName: 'kubernetes.io/kube-apiserver-client', usages: ['client auth'], expirationSeconds: 3600 },
  },
  'node.k8s.io/runtimeclasses': { metadata: { name: 'gvisor' }, handler: 'runsc', overhead: { podFixed: { cpu: '250m' } }, scheduling: { nodeSelector: { sandbox: 'gvisor' } } },
  'flowcontrol.apiserver.k8s.io/flowschemas': { metadata: { name: 'probes' }, spec: { priorityLevelConfiguration: { name: 'exempt' }, matchingPrecedence: 2 } },
  'flowcontrol.apiserver.k8s.io/prioritylevelconfigurations': { metadata: { name: 'exempt' }, spec: { type: 'Exempt' } },
};

/** A PKCS#10 request made by openssl, as users make them. */
function opensslCsr(): string {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-validation-'));
  try {
    execFileSync('openssl', ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', join(dir, 'k'),
      '-subj', '/CN=alice/O=devs', '-out', join(dir, 'csr')], { stdio: 'pipe' });
    return readFileSync(join(dir, 'csr'), 'utf8');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('a valid object of every kind passes', () => {
  for (const [key, obj] of Object.entries(VALID)) {
    assert.deepEqual(validate(key, obj), [], key);
  }
});

test('every built-in stored kind has a valid fixture', () => {
  const missing = BUILTIN_KINDS.filter((k) => !k.virtual && !k.storage && !VALID[`${k.group}/${k.plural}`]).map((k) => `${k.group}/${k.plural}`);
  assert.deepEqual(missing, []);
});

interface Case { name: string; kind: string; obj: Obj; old?: Obj; field: string; message: string }

const set = (base: Obj, path: string, value: unknown): Obj => {
  const o = structuredClone(base);
  const keys = path.split('.');
  let cur: any = o;
  for (const k of keys.slice(0, -1)) cur = cur[k] ??= {};
  if (value === undefined) delete cur[keys.at(-1)!]; else cur[keys.at(-1)!] = value;
  return o;
};

const SUBDOMAIN_MSG = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')";
const LABEL_MSG = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name' or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')";
const DNS1035_MSG = "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name' or 'abc-123', regex used for validation is '[a-z]([-a-z0-9]*[a-z0-9])?')";

const pod = VALID['/pods'];
const deploy = VALID['apps/deployments'];
const job = VALID['batch/jobs'];
const cron = VALID['batch/cronjobs'];
const svc = VALID['/services'];
const sts = VALID['apps/statefulsets'];
const withContainer = (c: Obj) => set(pod, 'spec.containers', [{ ...container, ...c }]);

const CASES: Case[] = [
  // metadata
  { name: 'subdomain name', kind: '/pods', obj: set(pod, 'metadata.name', 'Foo_1'), field: 'metadata.name', message: `Invalid value: "Foo_1": ${SUBDOMAIN_MSG}` },
  { name: 'name required', kind: '/configmaps', obj: set(VALID['/configmaps'], 'metadata.name', undefined), field: 'metadata.name', message: 'Required value: name or generateName is required' },
  { name: 'namespace names are labels', kind: '/namespaces', obj: { metadata: { name: 'a.b' } }, field: 'metadata.name', message: 'Invalid value: "a.b": must not contain dots' },
  { name: 'service names are DNS-1035 labels', kind: '/services', obj: set(svc, 'metadata.name', '1web'), field: 'metadata.name', message: `Invalid value: "1web": ${DNS1035_MSG}` },
  { name: 'statefulset names are labels', kind: 'apps/statefulsets', obj: set(sts, 'metadata.name', 'DB'), field: 'metadata.name', message: `Invalid value: "DB": ${LABEL_MSG}` },
  { name: 'RBAC names are path segments', kind: 'rbac.authorization.k8s.io/roles', obj: set(VALID['rbac.authorization.k8s.io/roles'], 'metadata.name', 'a/b'), field: 'metadata.name', message: `Invalid value: "a/b": may not contain '/'` },
  { name: 'namespace required', kind: '/pods', obj: set(pod, 'metadata.namespace', undefined), field: 'metadata.namespace', message: 'Required value' },
  { name: 'namespace forbidden on cluster kinds', kind: '/nodes', obj: set(VALID['/nodes'], 'metadata.namespace', 'default'), field: 'metadata.namespace', message: 'Forbidden: not allowed on this type' },
  { name: 'label key', kind: '/pods', obj: set(pod, 'metadata.labels', { 'a/b/c': 'x' }), field: 'metadata.labels', message: `Invalid value: "a/b/c": a qualified name must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName' or 'my.name' or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')` },
  { name: 'label value', kind: '/pods', obj: set(pod, 'metadata.labels', { app: 'a b' }), field: 'metadata.labels', message: `Invalid value: "a b": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue' or 'my_value' or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')` },
  { name: 'label value length', kind: '/pods', obj: set(pod, 'metadata.labels', { app: 'x'.repeat(64) }), field: 'metadata.labels', message: `Invalid value: "${'x'.repeat(64)}": must be no more than 63 characters` },
  { name: 'annotations size', kind: '/pods', obj: set(pod, 'metadata.annotations', { big: 'x'.repeat(256 * 1024) }), field: 'metadata.annotations', message: 'Too long: may not be more than 262144 bytes' },
  // pod spec
  { name: 'containers required', kind: '/pods', obj: set(pod, 'spec.containers', []), field: 'spec.containers', message: 'Required value' },
  { name: 'image required', kind: '/pods', obj: withContainer({ image: undefined }), field: 'spec.containers[0].image', message: 'Required value' },
  { name: 'container name label', kind: '/pods', obj: withContainer({ name: 'App' }), field: 'spec.containers[0].name', message: `Invalid value: "App": ${LABEL_MSG}` },
  { name: 'container names unique', kind: '/pods', obj: set(pod, 'spec.containers', [container, container]), field: 'spec.containers[1].name', message: 'Duplicate value: "app"' },
  { name: 'port range', kind: '/pods', obj: withContainer({ ports: [{ containerPort: 70000 }] }), field: 'spec.containers[0].ports[0].containerPort', message: 'Invalid value: 70000: must be between 1 and 65535, inclusive' },
  { name: 'port name length', kind: '/pods', obj: withContainer({ ports: [{ containerPort: 80, name: 'a-very-long-port-name' }] }), field: 'spec.containers[0].ports[0].name', message: 'Invalid value: "a-very-long-port-name": must be no more than 15 characters' },
  { name: 'port protocol', kind: '/pods', obj: withContainer({ ports: [{ containerPort: 80, protocol: 'HTTP' }] }), field: 'spec.containers[0].ports[0].protocol', message: 'Unsupported value: "HTTP": supported values: "SCTP", "TCP", "UDP"' },
  { name: 'restart policy', kind: '/pods', obj: set(pod, 'spec.restartPolicy', 'Sometimes'), field: 'spec.restartPolicy', message: 'Unsupported value: "Sometimes": supported values: "Always", "OnFailure", "Never"' },
  { name: 'dns policy', kind: '/pods', obj: set(pod, 'spec.dnsPolicy', 'Custom'), field: 'spec.dnsPolicy', message: 'Unsupported value: "Custom": supported values: "ClusterFirstWithHostNet", "ClusterFirst", "Default", "None"' },
  { name: 'grace period', kind: '/pods', obj: set(pod, 'spec.terminationGracePeriodSeconds', -5), field: 'spec.terminationGracePeriodSeconds', message: 'Invalid value: -5: must be greater than or equal to 0' },
  { name: 'volume names unique', kind: '/pods', obj: set(pod, 'spec.volumes', [{ name: 'v', emptyDir: {} }, { name: 'v', emptyDir: {} }]), field: 'spec.volumes[1].name', message: 'Duplicate value: "v"' },
  { name: 'one volume source', kind: '/pods', obj: set(pod, 'spec.volumes', [{ name: 'v', emptyDir: {}, hostPath: { path: '/x' } }]), field: 'spec.volumes[0].hostPath', message: 'Forbidden: may not specify more than 1 volume type' },
  { name: 'mount refers to a volume', kind: '/pods', obj: withContainer({ volumeMounts: [{ name: 'data', mountPath: '/data' }] }), field: 'spec.containers[0].volumeMounts[0].name', message: 'Not found: "data"' },
  { name: 'requests within limits', kind: '/pods', obj: withContainer({ resources: { requests: { cpu: '2' }, limits: { cpu: '500m' } } }), field: 'spec.containers[0].resources.requests', message: 'Invalid value: "2": must be less than or equal to cpu limit of 500m' },
  { name: 'env var name', kind: '/pods', obj: withContainer({ env: [{ name: 'A=B', value: '1' }] }), field: 'spec.containers[0].env[0].name', message: `Invalid value: "A=B": a valid environment variable name must consist only of printable ASCII characters other than '='` },
  { name: 'env fieldRef path', kind: '/pods', obj: withContainer({ env: [{ name: 'N', valueFrom: { fieldRef: { fieldPath: 'status.phase' } } }] }), field: 'spec.containers[0].env[0].valueFrom.fieldRef.fieldPath', message: 'Unsupported value: "status.phase": supported values: "metadata.name", "metadata.namespace", "metadata.uid", "spec.nodeName", "spec.serviceAccountName", "status.hostIP", "status.hostIPs", "status.podIP", "status.podIPs"' },
  { name: 'liveness successThreshold', kind: '/pods', obj: withContainer({ livenessProbe: { exec: { command: ['true'] }, successThreshold: 2 } }), field: 'spec.containers[0].livenessProbe.successThreshold', message: 'Invalid value: 2: must be 1' },
  { name: 'probe handler', kind: '/pods', obj: withContainer({ readinessProbe: { periodSeconds: 5 } }), field: 'spec.containers[0].readinessProbe', message: 'Required value: must specify a handler type' },
  // workloads
  { name: 'replicas', kind: 'apps/deployments', obj: set(deploy, 'spec.replicas', -1), field: 'spec.replicas', message: 'Invalid value: -1: must be greater than or equal to 0' },
  { name: 'selector required', kind: 'apps/deployments', obj: set(deploy, 'spec.selector', undefined), field: 'spec.selector', message: 'Required value' },
  { name: 'selector not empty', kind: 'apps/replicasets', obj: set(VALID['apps/replicasets'], 'spec.selector', {}), field: 'spec.selector', message: 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string(nil), MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: empty selector is invalid for deployment' },
  { name: 'selector matches template', kind: 'apps/deployments', obj: set(deploy, 'spec.template.metadata.labels', { app: 'x' }), field: 'spec.template.metadata.labels', message: 'Invalid value: map[string]string{"app":"x"}: `selector` does not match template `labels`' },
  { name: 'deployment restartPolicy', kind: 'apps/deployments', obj: set(deploy, 'spec.template.spec.restartPolicy', 'Never'), field: 'spec.template.spec.restartPolicy', message: 'Unsupported value: "Never": supported values: "Always"' },
  { name: 'deployment template is validated', kind: 'apps/deployments', obj: set(deploy, 'spec.template.spec.containers', [{ name: 'app' }]), field: 'spec.template.spec.containers[0].image', message: 'Required value' },
  { name: 'maxSurge and maxUnavailable both 0', kind: 'apps/deployments', obj: set(deploy, 'spec.strategy', { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 0 } }), field: 'spec.strategy.rollingUpdate.maxUnavailable', message: 'Invalid value: intstr.IntOrString{Type:0, IntVal:0, StrVal:""}: may not be 0 when `maxSurge` is 0' },
  { name: 'percent format', kind: 'apps/deployments', obj: set(deploy, 'spec.strategy', { type: 'RollingUpdate', rollingUpdate: { maxSurge: 'lots', maxUnavailable: 1 } }), field: 'spec.strategy.rollingUpdate.maxSurge', message: `Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"lots"}: a valid percent string must be a numeric string followed by an ending '%' (e.g. '1%' or '93%', regex used for validation is '[0-9]+%')` },
  { name: 'strategy type', kind: 'apps/deployments', obj: set(deploy, 'spec.strategy', { type: 'BlueGreen' }), field: 'spec.strategy', message: 'Unsupported value: apps.DeploymentStrategy{Type:"BlueGreen", RollingUpdate:(*apps.RollingUpdateDeployment)(nil)}: supported values: "Recreate", "RollingUpdate"' },
  { name: 'daemonset selector must match', kind: 'apps/daemonsets', obj: set(VALID['apps/daemonsets'], 'spec.selector', undefined), field: 'spec.template.metadata.labels', message: 'Invalid value: map[string]string{"app":"web"}: `selector` does not match template `labels`' },
  { name: 'statefulset selector', kind: 'apps/statefulsets', obj: set(sts, 'spec.selector', undefined), field: 'spec.selector', message: 'Required value' },
  { name: 'statefulset pod management', kind: 'apps/statefulsets', obj: set(sts, 'spec.podManagementPolicy', 'Random'), field: 'spec.podManagementPolicy', message: `Invalid value: "Random": must be 'OrderedReady' or 'Parallel'` },
  { name: 'job restartPolicy required', kind: 'batch/jobs', obj: set(job, 'spec.template.spec.restartPolicy', undefined), field: 'spec.template.spec.restartPolicy', message: 'Required value: valid values: "OnFailure", "Never"' },
  { name: 'job restartPolicy Always', kind: 'batch/jobs', obj: set(job, 'spec.template.spec.restartPolicy', 'Always'), field: 'spec.template.spec.restartPolicy', message: 'Required value: valid values: "OnFailure", "Never"' },
  { name: 'job backoffLimit', kind: 'batch/jobs', obj: set(job, 'spec.backoffLimit', -1), field: 'spec.backoffLimit', message: 'Invalid value: -1: must be greater than or equal to 0' },
  { name: 'job completions', kind: 'batch/jobs', obj: set(job, 'spec.completions', -2), field: 'spec.completions', message: 'Invalid value: -2: must be greater than or equal to 0' },
  { name: 'job manual selector required', kind: 'batch/jobs', obj: set(job, 'spec.manualSelector', true), field: 'spec.selector', message: 'Required value' },
  { name: 'job generated label conflict', kind: 'batch/jobs', obj: set(job, 'spec.template.metadata', { labels: { 'job-name': 'other' } }), field: 'spec.template.metadata.labels[job-name]', message: `Invalid value: map[string]string{"batch.kubernetes.io/controller-uid":"4d2a", "batch.kubernetes.io/job-name":"pi", "controller-uid":"4d2a", "job-name":"other"}: must be 'pi'` },
  { name: 'cron schedule range', kind: 'batch/cronjobs', obj: set(cron, 'spec.schedule', '61 * * * *'), field: 'spec.schedule', message: 'Invalid value: "61 * * * *": end of range (61) above maximum (59): 61' },
  { name: 'cron schedule fields', kind: 'batch/cronjobs', obj: set(cron, 'spec.schedule', 'hourly'), field: 'spec.schedule', message: 'Invalid value: "hourly": expected exactly 5 fields, found 1: [hourly]' },
  { name: 'cron descriptor', kind: 'batch/cronjobs', obj: set(cron, 'spec.schedule', '@fortnightly'), field: 'spec.schedule', message: 'Invalid value: "@fortnightly": unrecognized descriptor: @fortnightly' },
  { name: 'cron int', kind: 'batch/cronjobs', obj: set(cron, 'spec.schedule', '0 x * * *'), field: 'spec.schedule', message: 'Invalid value: "0 x * * *": failed to parse int from x: strconv.Atoi: parsing "x": invalid syntax' },
  { name: 'cron TZ prefix', kind: 'batch/cronjobs', obj: set(cron, 'spec.schedule', 'CRON_TZ=UTC 0 3 * * *'), field: 'spec.schedule', message: 'Invalid value: "CRON_TZ=UTC 0 3 * * *": cannot use TZ or CRON_TZ in schedule, use timeZone field instead' },
  { name: 'cron job template restartPolicy', kind: 'batch/cronjobs', obj: set(cron, 'spec.jobTemplate.spec.template.spec.restartPolicy', 'Always'), field: 'spec.jobTemplate.spec.template.spec.restartPolicy', message: 'Required value: valid values: "OnFailure", "Never"' },
  { name: 'cron concurrency', kind: 'batch/cronjobs', obj: set(cron, 'spec.concurrencyPolicy', 'Sometimes'), field: 'spec.concurrencyPolicy', message: 'Unsupported value: "Sometimes": supported values: "Allow", "Forbid", "Replace"' },
  { name: 'cron time zone', kind: 'batch/cronjobs', obj: set(cron, 'spec.timeZone', 'Mars/Olympus'), field: 'spec.timeZone', message: 'Invalid value: "Mars/Olympus": unknown time zone Mars/Olympus' },
  // services
  { name: 'service ports required', kind: '/services', obj: set(svc, 'spec.ports', []), field: 'spec.ports', message: 'Required value' },
  { name: 'service port range', kind: '/services', obj: set(svc, 'spec.ports', [{ port: 0, targetPort: 80 }]), field: 'spec.ports[0].port', message: 'Invalid value: 0: must be between 1 and 65535, inclusive' },
  { name: 'service port names', kind: '/services', obj: set(svc, 'spec.ports', [{ name: 'http', port: 80 }, { port: 443 }]), field: 'spec.ports[1].name', message: 'Required value' },
  { name: 'service port duplicate', kind: '/services', obj: set(svc, 'spec.ports', [{ name: 'a', port: 80 }, { name: 'b', port: 80 }]), field: 'spec.ports[1]', message: 'Duplicate value: core.ServicePort{Name:"", Protocol:"TCP", AppProtocol:(*string)(nil), Port:80, TargetPort:intstr.IntOrString{Type:0, IntVal:0, StrVal:""}, NodePort:0}' },
  { name: 'service type', kind: '/services', obj: set(svc, 'spec.type', 'Internal'), field: 'spec.type', message: 'Unsupported value: "Internal": supported values: "ClusterIP", "ExternalName", "LoadBalancer", "NodePort"' },
  { name: 'externalName required', kind: '/services', obj: { metadata: ns('ext'), spec: { type: 'ExternalName' } }, field: 'spec.externalName', message: 'Required value' },
  { name: 'headless NodePort', kind: '/services', obj: set(set(svc, 'spec.type', 'NodePort'), 'spec.clusterIP', 'None'), field: 'spec.clusterIPs[0]', message: `Invalid value: "None": may not be set to 'None' for NodePort services` },
  // config and secrets
  { name: 'config key', kind: '/configmaps', obj: set(VALID['/configmaps'], 'data', { 'a b': '1' }), field: 'data[a b]', message: `Invalid value: "a b": a valid config key must consist of alphanumeric characters, '-', '_' or '.' (e.g. 'key.name' or 'KEY_NAME' or 'key-name', regex used for validation is '[-._a-zA-Z0-9]+')` },
  { name: 'configmap size', kind: '/configmaps', obj: set(VALID['/configmaps'], 'data', { big: 'x'.repeat(1024 * 1024 + 1) }), field: '', message: 'Too long: may not be more than 1048576 bytes' },
  { name: 'tls secret keys', kind: '/secrets', obj: set(VALID['/secrets'], 'data', { 'tls.crt': 'YQ==' }), field: 'data[tls.key]', message: 'Required value' },
  { name: 'dockerconfigjson key', kind: '/secrets', obj: { metadata: ns('pull'), type: 'kubernetes.io/dockerconfigjson', data: {} }, field: 'data[.dockerconfigjson]', message: 'Required value' },
  // others
  { name: 'taint effect', kind: '/nodes', obj: set(VALID['/nodes'], 'spec.taints', [{ key: 'k', effect: 'NoRun' }]), field: 'metadata.taints[0].effect', message: 'Unsupported value: "NoRun": supported values: "NoSchedule", "PreferNoSchedule", "NoExecute"' },
  { name: 'pvc storage', kind: '/persistentvolumeclaims', obj: set(VALID['/persistentvolumeclaims'], 'spec.resources', {}), field: 'spec.resources[storage]', message: 'Required value' },
  { name: 'pvc access modes', kind: '/persistentvolumeclaims', obj: set(VALID['/persistentvolumeclaims'], 'spec.accessModes', []), field: 'spec.accessModes', message: 'Required value: at least 1 access mode is required' },
  { name: 'event namespace', kind: '/events', obj: set(VALID['/events'], 'involvedObject.namespace', 'other'), field: 'involvedObject.namespace', message: 'Invalid value: "other": does not match event.namespace' },
  { name: 'rbac verbs', kind: 'rbac.authorization.k8s.io/roles', obj: set(VALID['rbac.authorization.k8s.io/roles'], 'rules', [{ apiGroups: [''], resources: ['pods'] }]), field: 'rules[0].verbs', message: 'Required value: verbs must contain at least one value' },
  { name: 'rbac roleRef kind', kind: 'rbac.authorization.k8s.io/clusterrolebindings', obj: set(VALID['rbac.authorization.k8s.io/clusterrolebindings'], 'roleRef.kind', 'Role'), field: 'roleRef.kind', message: 'Unsupported value: "Role": supported values: "ClusterRole"' },
  { name: 'crd name', kind: 'apiextensions.k8s.io/customresourcedefinitions', obj: set(VALID['apiextensions.k8s.io/customresourcedefinitions'], 'metadata.name', 'widget.example.com'), field: 'metadata.name', message: 'Invalid value: "widget.example.com": must be spec.names.plural+"."+spec.group' },
  { name: 'crd storage version', kind: 'apiextensions.k8s.io/customresourcedefinitions', obj: set(VALID['apiextensions.k8s.io/customresourcedefinitions'], 'spec.versions.0.storage', false), field: 'spec.versions', message: 'Invalid value: [{"name":"v1","served":true,"storage":false,"schema":{"openAPIV3Schema":{"type":"object"}}}]: must have exactly one version marked as storage version' },
  { name: 'crd schema', kind: 'apiextensions.k8s.io/customresourcedefinitions', obj: set(VALID['apiextensions.k8s.io/customresourcedefinitions'], 'spec.versions.0.schema', undefined), field: 'spec.versions[0].schema.openAPIV3Schema', message: 'Required value: schemas are required' },
  { name: 'crd scope', kind: 'apiextensions.k8s.io/customresourcedefinitions', obj: set(VALID['apiextensions.k8s.io/customresourcedefinitions'], 'spec.scope', undefined), field: 'spec.scope', message: 'Required value' },
  { name: 'lease duration', kind: 'coordination.k8s.io/leases', obj: set(VALID['coordination.k8s.io/leases'], 'spec.leaseDurationSeconds', 0), field: 'spec.leaseDurationSeconds', message: 'Invalid value: 0: must be greater than 0' },
  { name: 'ingress pathType', kind: 'networking.k8s.io/ingresses', obj: set(VALID['networking.k8s.io/ingresses'], 'spec.rules.0.http.paths.0.pathType', undefined), field: 'spec.rules[0].http.paths[0].pathType', message: 'Required value: pathType must be specified' },
  { name: 'hpa max replicas', kind: 'autoscaling/horizontalpodautoscalers', obj: set(VALID['autoscaling/horizontalpodautoscalers'], 'spec.maxReplicas', 0), field: 'spec.maxReplicas', message: 'Invalid value: 0: must be greater than 0' },
  { name: 'runtimeclass handler is a label', kind: 'node.k8s.io/runtimeclasses', obj: set(VALID['node.k8s.io/runtimeclasses'], 'handler', 'Run_SC'), field: 'handler', message: `Invalid value: "Run_SC": ${LABEL_MSG}` },
  { name: 'webhook timeout', kind: 'admissionregistration.k8s.io/validatingwebhookconfigurations', obj: set(VALID['admissionregistration.k8s.io/validatingwebhookconfigurations'], 'webhooks.0.timeoutSeconds', 31), field: 'webhooks[0].timeoutSeconds', message: 'Invalid value: 31: the timeout value must be between 1 and 30 seconds' },
  { name: 'webhook url scheme', kind: 'admissionregistration.k8s.io/mutatingwebhookconfigurations', obj: set(VALID['admissionregistration.k8s.io/mutatingwebhookconfigurations'], 'webhooks.0.clientConfig.url', 'http://hooks.example.com/'), field: 'webhooks[0].clientConfig.url', message: `Invalid value: "http://hooks.example.com/": 'https' is the only allowed URL scheme` },
  { name: 'policy binding needs a policy', kind: 'admissionregistration.k8s.io/validatingadmissionpolicybindings', obj: set(VALID['admissionregistration.k8s.io/validatingadmissionpolicybindings'], 'spec.policyName', undefined), field: 'spec.policyName', message: 'Required value' },
  { name: 'flowschema precedence', kind: 'flowcontrol.apiserver.k8s.io/flowschemas', obj: set(VALID['flowcontrol.apiserver.k8s.io/flowschemas'], 'spec.matchingPrecedence', 10001), field: 'spec.matchingPrecedence', message: 'Invalid value: 10001: must be between 1 and 10000, inclusive' },
  { name: 'apiservice name is version.group', kind: 'apiregistration.k8s.io/apiservices', obj: set(VALID['apiregistration.k8s.io/apiservices'], 'metadata.name', 'v1.custom.metrics.k8s.io'), field: 'metadata.name', message: 'Invalid value: "v1.custom.metrics.k8s.io": must be v1beta1.custom.metrics.k8s.io' },
  { name: 'volumeattachment source', kind: 'storage.k8s.io/volumeattachments', obj: set(VALID['storage.k8s.io/volumeattachments'], 'spec.source', {}), field: 'spec.source', message: 'Required value: must specify exactly one of inlineVolumeSpec and persistentVolumeName' },
  { name: 'pdb both set', kind: 'policy/poddisruptionbudgets', obj: set(VALID['policy/poddisruptionbudgets'], 'spec.maxUnavailable', '200%'), field: 'spec.maxUnavailable', message: 'Invalid value: intstr.IntOrString{Type:1, IntVal:0, StrVal:"200%"}: must not be greater than 100%' },
];

const show = (cs: StatusCause[]) => cs.map((c) => `${c.field}: ${c.message}`).join('\n');

for (const c of CASES) {
  test(`create: ${c.kind} ${c.name}`, () => {
    const causes = validate(c.kind, c.obj);
    assert.ok(causes.some((x) => x.field === c.field && x.message === c.message), `expected\n${c.field}: ${c.message}\ngot\n${show(causes)}`);
  });
}

const UPDATES: Case[] = [
  { name: 'runtimeclass handler immutable', kind: 'node.k8s.io/runtimeclasses', obj: set(VALID['node.k8s.io/runtimeclasses'], 'handler', 'kata'), old: VALID['node.k8s.io/runtimeclasses'], field: 'handler', message: 'Invalid value: "kata": field is immutable' },
  { name: 'selector immutable', kind: 'apps/deployments', old: deploy, obj: set(set(deploy, 'spec.selector.matchLabels', { app: 'y' }), 'spec.template.metadata.labels', { app: 'y' }), field: 'spec.selector', message: 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"y"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable' },
  { name: 'replicaset selector immutable', kind: 'apps/replicasets', old: VALID['apps/replicasets'], obj: set(VALID['apps/replicasets'], 'spec.selector.matchExpressions', [{ key: 'tier', operator: 'DoesNotExist' }]), field: 'spec.selector', message: 'Invalid value: v1.LabelSelector{MatchLabels:map[string]string{"app":"web"}, MatchExpressions:[]v1.LabelSelectorRequirement{v1.LabelSelectorRequirement{Key:"tier", Operator:"DoesNotExist", Values:[]string(nil)}}}: field is immutable' },
  { name: 'statefulset spec', kind: 'apps/statefulsets', old: sts, obj: set(sts, 'spec.serviceName', 'other'), field: 'spec', message: "Forbidden: updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', 'updateStrategy', 'persistentVolumeClaimRetentionPolicy' and 'minReadySeconds' are forbidden" },
  { name: 'job template immutable', kind: 'batch/jobs', old: job, obj: set(job, 'spec.template.spec.containers.0.image', 'busybox'), field: 'spec.template', message: '' },
  { name: 'job completions immutable', kind: 'batch/jobs', old: job, obj: set(job, 'spec.completions', 3), field: 'spec.completions', message: 'Invalid value: 3: field is immutable' },
  { name: 'service clusterIP', kind: '/services', old: set(svc, 'spec.clusterIP', '10.43.0.10'), obj: set(set(svc, 'spec.clusterIP', 'None'), 'spec.clusterIPs', ['None']), field: 'spec.clusterIPs[0]', message: 'Invalid value: []string{"None"}: may not change once set' },
  { name: 'immutable configmap', kind: '/configmaps', old: set(VALID['/configmaps'], 'immutable', true), obj: set(set(VALID['/configmaps'], 'immutable', true), 'data', { a: '2' }), field: 'data', message: 'Forbidden: field is immutable when `immutable` is set' },
  { name: 'secret type', kind: '/secrets', old: { metadata: ns('s'), data: {} }, obj: { metadata: ns('s'), type: 'kubernetes.io/basic-auth', data: { username: 'YQ==' } }, field: 'type', message: 'Invalid value: "kubernetes.io/basic-auth": field is immutable' },
  { name: 'namespace name', kind: '/namespaces', old: VALID['/namespaces'], obj: { metadata: { name: 'team-b' } }, field: 'metadata.name', message: 'Invalid value: "team-b": field is immutable' },
  { name: 'pvc spec', kind: '/persistentvolumeclaims', old: VALID['/persistentvolumeclaims'], obj: set(VALID['/persistentvolumeclaims'], 'spec.accessModes', ['ReadWriteMany']), field: 'spec', message: 'Forbidden: spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims' },
  { name: 'pod spec', kind: '/pods', old: pod, obj: set(pod, 'spec.containers.0.name', 'other'), field: 'spec', message: 'Forbidden: pod updates may not change fields other than `spec.containers[*].image`,`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)' },
  { name: 'rolebinding roleRef', kind: 'rbac.authorization.k8s.io/rolebindings', old: VALID['rbac.authorization.k8s.io/rolebindings'], obj: set(VALID['rbac.authorization.k8s.io/rolebindings'], 'roleRef.name', 'writer'), field: 'roleRef', message: 'Invalid value: rbac.RoleRef{APIGroup:"rbac.authorization.k8s.io", Kind:"Role", Name:"writer"}: cannot change roleRef' },
];

for (const c of UPDATES) {
  test(`update: ${c.kind} ${c.name}`, () => {
    const causes = validate(c.kind, c.obj, c.old);
    const match = (x: StatusCause) => x.field === c.field && (c.message ? x.message === c.message : x.message!.endsWith(': field is immutable'));
    assert.ok(causes.some(match), `expected\n${c.field}: ${c.message}\ngot\n${show(causes)}`);
  });
}

test('allowed updates pass', () => {
  assert.deepEqual(validate('/pods', set(pod, 'spec.containers.0.image', 'nginx:1.26'), pod), []);
  assert.deepEqual(validate('apps/deployments', set(deploy, 'spec.replicas', 3), deploy), []);
  assert.deepEqual(validate('apps/statefulsets', set(sts, 'spec.replicas', 3), sts), []);
  assert.deepEqual(validate('/services', set(svc, 'spec.ports', [{ port: 8080 }]), svc), []);
  // A suspended Job that never ran may change its pods' scheduling directives.
  const suspended = set(job, 'spec.suspend', true);
  assert.deepEqual(validate('batch/jobs', set(suspended, 'spec.template.spec.nodeSelector', { zone: 'a' }), suspended), []);
});

test('the apiserver wraps the causes in the message kubectl prints', () => {
  const causes = validate('apps/deployments', set(deploy, 'spec.replicas', -1));
  assert.equal(errors.invalid('Deployment', 'apps', 'web', causes).message,
    'Deployment.apps "web" is invalid: spec.replicas: Invalid value: -1: must be greater than or equal to 0');
});

test('a pod update that keeps the stored spec object does not validate it again; a changed one does', () => {
  // A spec stored before a rule existed (here: an image with trailing whitespace, refused since).
  const stored = prepare('/pods', set(pod, 'spec.containers.0.image', 'nginx:1.25 '));
  const status = { ...stored, status: { phase: 'Running' } };
  assert.deepEqual(validateObject(info('/pods'), status as KObject, stored, 'status'), []);
  const relabelled = { ...stored, metadata: { ...stored.metadata, labels: { tier: 'web' } } };
  assert.deepEqual(validateObject(info('/pods'), relabelled as KObject, stored), []);
  // The same content in a new object is a spec write, and is checked.
  const copied = { ...stored, spec: structuredClone(stored.spec) };
  assert.ok(validateObject(info('/pods'), copied as KObject, stored).some((c) => c.message?.includes('leading or trailing whitespace')));
});
