// Ephemeral containers in the API (issue 10 item 7): pod validation of spec.ephemeralContainers with
// Kubernetes' field paths and messages, the pods/ephemeralcontainers update rule (add only), and the
// agent's CRI config for a container that targets another's process namespace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { applyDefaults } from '../../src/api/defaults/index.js';
import { BUILTIN_KINDS } from '../../src/api/kinds.js';
import type { KObject } from '../../src/api/object.js';
import { validateObject } from '../../src/api/validation/index.js';
import { containerConfig } from '../../src/agent/pods/containers.js';

const pods = BUILTIN_KINDS.find((k) => k.group === '' && k.plural === 'pods' && !k.storage)!;

function pod(ephemeral: object[] = []): KObject {
  const p = {
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'p', namespace: 'default', uid: 'u1', resourceVersion: '5' },
    spec: { containers: [{ name: 'app', image: 'busybox' }], initContainers: [{ name: 'init', image: 'busybox' }], ephemeralContainers: ephemeral },
  } as KObject;
  applyDefaults('', 'pods', p);
  return p;
}

const messages = (obj: KObject, old?: KObject, sub?: string) =>
  validateObject(pods, obj, old, sub).map((c) => `${c.field}: ${c.message}`);

test('an ephemeral container may be added through pods/ephemeralcontainers, with a target', () => {
  assert.deepEqual(messages(pod([{ name: 'dbg', image: 'busybox', targetContainerName: 'app', stdin: true, tty: true }]), pod(), 'ephemeralcontainers'), []);
});

test('fields a pod would depend on are forbidden, in the Container struct order', () => {
  const bad = pod([{
    name: 'dbg', image: 'busybox', ports: [{ containerPort: 80 }], resources: { limits: { cpu: '1' } }, lifecycle: { preStop: { exec: { command: ['x'] } } },
    readinessProbe: { exec: { command: ['x'] } }, volumeMounts: [],
  }]);
  assert.deepEqual(messages(bad, pod(), 'ephemeralcontainers'), [
    'spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container',
    'spec.ephemeralContainers[0].resources: Forbidden: cannot be set for an Ephemeral Container',
    'spec.ephemeralContainers[0].readinessProbe: Forbidden: cannot be set for an Ephemeral Container',
    'spec.ephemeralContainers[0].lifecycle: Forbidden: cannot be set for an Ephemeral Container',
  ]);
  // An empty resources object is the zero value and allowed.
  assert.deepEqual(messages(pod([{ name: 'dbg', image: 'busybox', resources: {} }]), pod(), 'ephemeralcontainers'), []);
});

test('names are unique across all containers; the target must be a (non-ephemeral) container', () => {
  assert.deepEqual(messages(pod([{ name: 'init', image: 'busybox' }]), pod(), 'ephemeralcontainers'),
    ['spec.ephemeralContainers[0].name: Duplicate value: "init"']);
  assert.deepEqual(messages(pod([{ name: 'a', image: 'busybox' }, { name: 'b', image: 'busybox', targetContainerName: 'a' }]), pod(), 'ephemeralcontainers'),
    ['spec.ephemeralContainers[1].targetContainerName: Not found: "a"']);
  assert.deepEqual(messages(pod([{ name: 'a', image: 'busybox', volumeMounts: [{ name: 'v', mountPath: '/v', subPath: 'x' }] }]), pod(), 'ephemeralcontainers').slice(-1),
    ['spec.ephemeralContainers[0].volumeMounts[0].subPath: Forbidden: cannot be set for an Ephemeral Container']);
});

test('existing ephemeral containers may not be removed or changed', () => {
  const old = pod([{ name: 'a', image: 'busybox' }]);
  assert.deepEqual(messages(pod([]), old, 'ephemeralcontainers'), ['spec.ephemeralContainers: Forbidden: existing ephemeral containers "a" may not be removed\n']);
  assert.deepEqual(messages(pod([{ name: 'a', image: 'busybox:2' }]), old, 'ephemeralcontainers'), ['spec.ephemeralContainers: Forbidden: existing ephemeral containers "a" may not be changed\n']);
  assert.deepEqual(messages(pod([{ name: 'a', image: 'busybox' }, { name: 'b', image: 'busybox' }]), old, 'ephemeralcontainers'), []);
});

test('a plain pod update or create may not set ephemeral containers', () => {
  const withOne = pod([{ name: 'a', image: 'busybox' }]);
  assert.match(messages(withOne, pod()).join('\n'), /^spec: Forbidden: pod updates may not change fields other than/m);
  assert.deepEqual(messages(withOne), ['spec.ephemeralContainers: Forbidden: cannot be set on create']);
});

test('a targeted ephemeral container joins the target\'s PID namespace (CRI TARGET)', () => {
  const p = pod([{ name: 'dbg', image: 'busybox', targetContainerName: 'app' }]) as Record<string, any>;
  const settings = { kind: 'ephemeral' as const, nodeName: 'n', restartCount: 0, image: 'busybox', envs: [], mounts: [], logPath: 'dbg/0.log', qos: 'BestEffort' as const, nodeMemoryBytes: 1 << 30 };
  const targeted = containerConfig(p, p.spec.ephemeralContainers[0], { ...settings, targetId: 'abc123' });
  assert.deepEqual(targeted.linux?.securityContext?.namespaceOptions, { network: 'POD', pid: 'TARGET', ipc: 'POD', targetId: 'abc123' });
  assert.equal(targeted.annotations?.['skiff.io/container-type'], 'ephemeral');
  const own = containerConfig(p, p.spec.ephemeralContainers[0], settings);
  assert.equal(own.linux?.securityContext?.namespaceOptions?.pid, 'CONTAINER');
});
