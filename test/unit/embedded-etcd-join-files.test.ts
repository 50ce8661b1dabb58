// A server joining with embedded etcd receives every CA of the cluster: the request-header CA was
// missing, so each server had its own and the servers rewrote extension-apiserver-authentication
// in turn, about 75 times a second with three servers (found by `npm run test:datastores`).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CLUSTER_FILES } from '../../src/server/embedded-etcd-join.js';
import { SHARED_FILES } from '../../src/server/datastore-bootstrap.js';

test('a joining embedded-etcd server gets every CA and key an external-datastore server shares', () => {
  const joined = new Set(CLUSTER_FILES.map(([f]) => `tls/${f}`));
  for (const f of ['request-header-ca.crt', 'request-header-ca.key', 'server-ca.crt', 'server-ca.key', 'client-ca.crt', 'client-ca.key', 'service.key']) {
    assert.ok(joined.has(`tls/${f}`), f);
  }
  for (const shared of SHARED_FILES.filter((s) => s.required)) assert.ok(joined.has(shared.path), shared.path);
});
