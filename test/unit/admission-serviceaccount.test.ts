import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Store } from '../../src/storage/types.js';
import { mountServiceAccountToken, SERVICE_ACCOUNT_MOUNT_PATH } from '../../src/apiserver/admission-serviceaccount.js';

/** Only `get` is used: a map of stored objects by key. */
function storeWith(objects: Record<string, object>): Store {
  return { get: (key: string) => (objects[key] ? { obj: objects[key] } : undefined) } as unknown as Store;
}
const sa = (extra: object = {}) => ({ '/core/serviceaccounts/ns/default': { metadata: { name: 'default', namespace: 'ns' }, ...extra } });
const pod = (spec: object) => ({ metadata: { name: 'p', namespace: 'ns' }, spec: { serviceAccountName: 'default', containers: [{ name: 'c' }], ...spec } }) as any;

test('service-account volume: projected token, CA, namespace; mounted read-only in every container', () => {
  const p = pod({ initContainers: [{ name: 'i' }] });
  mountServiceAccountToken(storeWith(sa()), p);
  assert.equal(p.spec.volumes.length, 1);
  const v = p.spec.volumes[0];
  assert.match(v.name, /^kube-api-access-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
  assert.equal(v.projected.defaultMode, 420);
  assert.deepEqual(v.projected.sources.map((s: object) => Object.keys(s)[0]), ['serviceAccountToken', 'configMap', 'downwardAPI']);
  assert.deepEqual(v.projected.sources[0].serviceAccountToken, { expirationSeconds: 3607, path: 'token' });
  for (const c of [...p.spec.initContainers, ...p.spec.containers]) {
    assert.deepEqual(c.volumeMounts, [{ name: v.name, readOnly: true, mountPath: SERVICE_ACCOUNT_MOUNT_PATH }]);
  }
});

test('service-account volume: opt-outs, a missing account, and containers that mount the path themselves', () => {
  const none = (p: any) => assert.equal(p.spec.volumes, undefined);
  let p = pod({ automountServiceAccountToken: false });
  mountServiceAccountToken(storeWith(sa()), p);
  none(p);
  p = pod({});
  mountServiceAccountToken(storeWith(sa({ automountServiceAccountToken: false })), p);
  none(p);
  // The pod's own true wins over the account's false.
  p = pod({ automountServiceAccountToken: true });
  mountServiceAccountToken(storeWith(sa({ automountServiceAccountToken: false })), p);
  assert.equal(p.spec.volumes.length, 1);
  p = pod({});
  mountServiceAccountToken(storeWith({}), p);
  none(p);
  const own = { name: 'mine', mountPath: SERVICE_ACCOUNT_MOUNT_PATH };
  p = pod({ containers: [{ name: 'a', volumeMounts: [own] }, { name: 'b' }] });
  mountServiceAccountToken(storeWith(sa()), p);
  assert.deepEqual(p.spec.containers[0].volumeMounts, [own]);
  assert.equal(p.spec.containers[1].volumeMounts[0].name, p.spec.volumes[0].name);
});
