// Pulls from a private registry, end to end as root: Debian's `docker-registry` on loopback (plain HTTP,
// htpasswd auth) holds a busybox image pushed by this test over the registry HTTP API; a real server
// and `skiff agent` with its own containerd then run pods from it. Without credentials, or with a wrong
// password, the pull fails (ErrImagePull/ImagePullBackOff); with `kubectl create secret docker-registry`
// as imagePullSecrets the pod runs; and a registries.yaml mirror with `configs.<host>.auth` lets a pod
// without secrets pull through the mirror. Everything is torn down, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxImage } from '../helpers/images.js';
import { PASSWORD, RegistryHarness, USER, registryRequirements } from '../helpers/registry.js';

const REPO = 'team/busybox';
const TAG = 'private';
const h = new RegistryHarness();

before(async () => {
  const missing = registryRequirements();
  if (missing.length) throw new Error(`the private registry end-to-end test needs: ${missing.join(', ')}`);
  await h.startRegistry();
  await h.pushImage(busyboxImage({ name: `127.0.0.1:${h.port}/${REPO}:${TAG}` }), REPO, TAG);
  // A mirror reached by another name of the same registry, with credentials in registries.yaml only:
  // pulls of the 127.0.0.1 name get none of them.
  await h.startCluster([
    'mirrors:',
    '  mirror.skiff.test:',
    `    endpoint: ["http://localhost:${h.port}"]`,
    'configs:',
    `  "localhost:${h.port}":`,
    `    auth: { username: ${USER}, password: ${PASSWORD} }`,
    '',
  ].join('\n'));
});

after(() => h.dispose());

const refused = /401|unauthorized|authoriz/i;

test('a private image starts only with the right imagePullSecrets', async () => {
  const image = `127.0.0.1:${h.port}/${REPO}:${TAG}`;
  await h.createPod('no-secret', image);
  await h.k(['create', 'secret', 'docker-registry', 'badcred', `--docker-server=127.0.0.1:${h.port}`, `--docker-username=${USER}`, '--docker-password=wrong']);
  await h.createPod('bad-secret', image, ['badcred']);
  await h.pullFails('no-secret', refused, 'the registry refused the pull');
  await h.pullFails('bad-secret', refused, 'the registry refused the pull');

  await h.k(['create', 'secret', 'docker-registry', 'regcred', `--docker-server=127.0.0.1:${h.port}`, `--docker-username=${USER}`, `--docker-password=${PASSWORD}`]);
  await h.createPod('with-secret', image, ['regcred']);
  await h.running('with-secret');
});

test('registries.yaml: a mirror with configs auth serves a pod without imagePullSecrets', async () => {
  await h.createPod('via-mirror', `mirror.skiff.test/${REPO}:${TAG}`);
  await h.running('via-mirror');
  const hosts = readFileSync(join(h.agentDir, 'agent', 'etc', 'containerd', 'certs.d', 'mirror.skiff.test', 'hosts.toml'), 'utf8');
  assert.match(hosts, new RegExp(`\\[host\\."http://localhost:${h.port}"\\]`));
});
