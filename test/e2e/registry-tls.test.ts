// TLS registries and mirror rewrites, end to end as root: Debian's `docker-registry` serves HTTPS on
// loopback with a certificate from a test CA (openssl CLI), htpasswd auth; a real server and
// `skiff agent` with its own containerd pull from it as registries.yaml says. The same registry is
// reached under two names: `localhost:PORT` with TLS configured but no CA (the pull fails with the
// x509 error in the pod's status) and `127.0.0.1:PORT` with `tls.ca_file` (the pod runs). A mirror
// for `registry.example:5000` with `rewrite` pulls `registry.example:5000/app:v1` from the image
// pushed as `mirror/library/app:v1`; containerd and the pod's status then know only the original name.
// Everything is torn down, also on failure. Adds about 15 s (one server, one agent, one registry).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { busyboxImage } from '../helpers/images.js';
import { CriClient } from '../../src/agent/runtime/cri-client.js';
import { containerdPaths } from '../../src/agent/runtime/containerd-config.js';
import { PASSWORD, RegistryHarness, USER, makeTestCa, registryRequirements } from '../helpers/registry.js';

const h = new RegistryHarness();
let cri: CriClient | undefined;

before(async () => {
  const missing = registryRequirements([['/usr/bin/openssl', 'openssl']]);
  if (missing.length) throw new Error(`the TLS registry end-to-end test needs: ${missing.join(', ')}`);
  const pki = makeTestCa(h.dir);
  h.ca = pki.ca;
  await h.startRegistry({ tls: pki });
  await h.pushImage(busyboxImage(), 'team/app', 'v1');
  // Another image (its own ID), so the rewritten pod cannot borrow the first one's names.
  await h.pushImage(busyboxImage({ env: ['FLAVOR=mirror'] }), 'mirror/library/app', 'v1');
  const auth = `auth: { username: ${USER}, password: ${PASSWORD} }`;
  await h.startCluster([
    'mirrors:',
    '  registry.example:5000:',
    `    endpoint: ["https://127.0.0.1:${h.port}"]`,
    '    rewrite: { "^(.*)$": "mirror/library/$1" }',
    'configs:',
    `  "127.0.0.1:${h.port}":`,
    `    ${auth}`,
    `    tls: { ca_file: ${pki.ca} }`,
    `  "localhost:${h.port}":`,
    `    ${auth}`,
    '    tls: { insecure_skip_verify: false }',
    '',
  ].join('\n'));
  cri = new CriClient(containerdPaths(h.agentDir).socket);
});

after(async () => {
  cri?.close();
  await h.dispose();
});

test('an HTTPS registry: x509 error without tls.ca_file, the pod runs with it', async () => {
  await h.createPod('untrusted', `localhost:${h.port}/team/app:v1`);
  await h.createPod('trusted', `127.0.0.1:${h.port}/team/app:v1`);
  await h.pullFails('untrusted', /x509: certificate signed by unknown authority/, 'the pull failed on the unknown CA');
  await h.running('trusted');
  const hosts = readFileSync(join(h.agentDir, 'agent', 'etc', 'containerd', 'certs.d', `127.0.0.1:${h.port}`, 'hosts.toml'), 'utf8');
  assert.match(hosts, new RegExp(`^ca = "${h.ca}"$`, 'm'));
});

test('rewrite: the pod gets the image pushed under the mirror layout, known by the name it asked for', async () => {
  const image = 'registry.example:5000/app:v1';
  // Two pods at once: their pulls of the same rewritten reference must not trip over each other.
  await Promise.all([h.createPod('rewritten', image), h.createPod('rewritten-too', image)]);
  await h.running('rewritten');
  await h.running('rewritten-too');
  const status = (await h.pod('rewritten')).status.containerStatuses[0];
  assert.equal(status.image, image, 'the status shows the name the pod asked for');
  const st = await cri!.imageStatus(image);
  assert.ok(st, 'CRI resolves the original name');
  assert.ok(st.repoTags.includes(image), `repoTags ${st.repoTags}`);
  assert.ok(st.repoDigests.some((d) => d.startsWith('registry.example:5000/app@sha256:')), `repoDigests ${st.repoDigests}`);
  assert.equal(await cri!.imageStatus(`127.0.0.1:${h.port}/mirror/library/app:v1`), null, 'the mirror name is gone');
  // CRI reports an image by its repo digest when it has one, else by ID.
  assert.ok([st.id, ...st.repoDigests].includes(status.imageID), `imageID ${status.imageID}: the container runs the mirrored image`);
});

test('rewrite: nothing at the mirror falls back to the registry itself, and both failures are reported', async () => {
  await h.createPod('rewritten-missing', 'registry.example:5000/missing:v1');
  await h.pullFails('rewritten-missing', /rewritten pulls failed too: 127\.0\.0\.1:\d+\/mirror\/library\/missing:v1: .*not found/, 'both pulls failed');
});
