// Container env: $(VAR) expansion, envFrom with prefix, fieldRef/resourceFieldRef, configMap/secret
// keys with optional, and the CreateContainerConfigError messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ContainerConfigError, containerEnv, expandVars } from '../../src/agent/pods/env.js';
import { PodSources } from '../../src/agent/pods/sources.js';
import type { PodApi } from '../../src/agent/pods/pod-api.js';

/** A stand-in PodApi that serves fixed configMaps and secrets. */
function fakeApi(cms: Record<string, object>, secrets: Record<string, object>): PodApi {
  const fail = () => { throw new Error('not used'); };
  return {
    getConfigMap: async (_ns, n) => cms[n] as any, getSecret: async (_ns, n) => secrets[n] as any,
    getPersistentVolumeClaim: fail, getPersistentVolume: fail, createToken: fail, updatePodStatus: fail, deletePod: fail, recordEvent: () => {},
  };
}

const pod = {
  metadata: { name: 'web', namespace: 'ns1', uid: 'u1', labels: { app: 'web' } },
  spec: { nodeName: 'n1', serviceAccountName: 'sa', containers: [] as object[] },
};
const node = { cpuCores: 4, memoryBytes: 8 * 2 ** 30, ephemeralStorageBytes: 0 };
const ctx = (api: PodApi) => ({ nodeName: 'n1', podIPs: ['10.1.0.2'], hostIPs: ['192.0.2.1'], sources: new PodSources(api, 'ns1'), node });

test('expandVars: $(VAR), $$ escapes, unknown names kept', () => {
  const vars = new Map([['A', 'x'], ['B', 'y']]);
  assert.equal(expandVars('$(A)-$(B)', vars), 'x-y');
  assert.equal(expandVars('$$(A) $(C) $A $(A', vars), '$(A) $(C) $A $(A');
});

test('env values, fieldRefs, resources, keys and envFrom with prefix, in order; later entries win', async () => {
  const api = fakeApi({ cm: { data: { a: '1', b: '2' } } }, { s: { data: { pw: Buffer.from('secret').toString('base64') } } });
  const c = {
    name: 'c', resources: { limits: { memory: '128Mi' }, requests: { cpu: '250m' } },
    envFrom: [{ prefix: 'P_', configMapRef: { name: 'cm' } }, { configMapRef: { name: 'missing', optional: true } }],
    env: [
      { name: 'NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
      { name: 'APP', valueFrom: { fieldRef: { fieldPath: "metadata.labels['app']" } } },
      { name: 'IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
      { name: 'HOST', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
      { name: 'SA', valueFrom: { fieldRef: { fieldPath: 'spec.serviceAccountName' } } },
      { name: 'MEM', valueFrom: { resourceFieldRef: { resource: 'limits.memory', divisor: '1Mi' } } },
      { name: 'CPU_M', valueFrom: { resourceFieldRef: { resource: 'requests.cpu', divisor: '1m' } } },
      { name: 'CPU_LIMIT', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } },
      { name: 'PW', valueFrom: { secretKeyRef: { name: 's', key: 'pw' } } },
      { name: 'OPT', valueFrom: { configMapKeyRef: { name: 'cm', key: 'nope', optional: true } } },
      { name: 'P_a', value: 'overridden $(NAME)' },
    ],
  };
  const env = Object.fromEntries((await containerEnv(pod, c, ctx(api))).map((e) => [e.key, e.value]));
  assert.deepEqual(env, {
    P_a: 'overridden web', P_b: '2', NAME: 'web', APP: 'web', IP: '10.1.0.2', HOST: '192.0.2.1', SA: 'sa',
    MEM: '128', CPU_M: '250', CPU_LIMIT: '4', PW: 'secret',
  });
});

test('missing sources and keys are CreateContainerConfigErrors with the kubelet\'s wording', async () => {
  const api = fakeApi({ cm: { data: {} } }, {});
  const one = (e: object) => containerEnv(pod, { name: 'c', env: [e] }, ctx(api));
  await assert.rejects(one({ name: 'X', valueFrom: { configMapKeyRef: { name: 'cm', key: 'k' } } }),
    (err: Error) => err instanceof ContainerConfigError && err.message === "couldn't find key k in ConfigMap ns1/cm");
  await assert.rejects(one({ name: 'X', valueFrom: { secretKeyRef: { name: 's', key: 'k' } } }),
    (err: Error) => err instanceof ContainerConfigError && err.message === 'secret "s" not found');
  await assert.rejects(containerEnv(pod, { name: 'c', envFrom: [{ configMapRef: { name: 'gone' } }] }, ctx(api)), /configmap "gone" not found/);
});
