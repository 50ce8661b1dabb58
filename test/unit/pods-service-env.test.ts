import { test } from 'node:test';
import assert from 'node:assert/strict';
import { serviceEnv } from '../../src/agent/pods/service-env.js';

const svc = (namespace: string, name: string, clusterIP: string, ports: object[]) => ({ metadata: { namespace, name }, spec: { clusterIP, ports } });
const services = [
  svc('default', 'kubernetes', '10.43.0.1', [{ name: 'https', port: 443, protocol: 'TCP' }]),
  svc('shop', 'redis-main', '10.43.7.9', [{ name: 'redis', port: 6379, protocol: 'TCP' }, { name: 'dns', port: 53, protocol: 'UDP' }]),
  svc('shop', 'headless', 'None', [{ port: 80 }]),
  svc('other', 'web', '10.43.8.8', [{ port: 80 }]),
];
const pod = (spec: object = {}) => ({ metadata: { namespace: 'shop', name: 'p' }, spec });

test('service env: the master service always, the namespace\'s services with enableServiceLinks', () => {
  const env = serviceEnv(pod(), services);
  assert.equal(env.get('KUBERNETES_SERVICE_HOST'), '10.43.0.1');
  assert.equal(env.get('KUBERNETES_SERVICE_PORT'), '443');
  assert.equal(env.get('KUBERNETES_SERVICE_PORT_HTTPS'), '443');
  assert.equal(env.get('KUBERNETES_PORT'), 'tcp://10.43.0.1:443');
  assert.equal(env.get('KUBERNETES_PORT_443_TCP'), 'tcp://10.43.0.1:443');
  assert.equal(env.get('KUBERNETES_PORT_443_TCP_PROTO'), 'tcp');
  assert.equal(env.get('KUBERNETES_PORT_443_TCP_PORT'), '443');
  assert.equal(env.get('KUBERNETES_PORT_443_TCP_ADDR'), '10.43.0.1');
  assert.equal(env.get('REDIS_MAIN_SERVICE_HOST'), '10.43.7.9');
  assert.equal(env.get('REDIS_MAIN_SERVICE_PORT'), '6379');
  assert.equal(env.get('REDIS_MAIN_SERVICE_PORT_DNS'), '53');
  assert.equal(env.get('REDIS_MAIN_PORT_53_UDP'), 'udp://10.43.7.9:53');
  assert.ok(![...env.keys()].some((k) => k.startsWith('HEADLESS_') || k.startsWith('WEB_')), 'no headless, no other namespace');
  const off = serviceEnv(pod({ enableServiceLinks: false }), services);
  assert.equal(off.get('KUBERNETES_SERVICE_HOST'), '10.43.0.1');
  assert.equal(off.get('REDIS_MAIN_SERVICE_HOST'), undefined);
  assert.equal(serviceEnv(pod(), []).size, 0);
});
