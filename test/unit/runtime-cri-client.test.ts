// CriClient against a fake CRI server on a unix socket (same proto definitions): request and response
// mapping, int64 and bytes handling, timeouts and error classification. Field numbers of the messages
// the agent depends on are pinned here, because a wrong number still encodes fine and would only show
// up as a runtime silently ignoring a field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { criPackageDefinition, criRoot } from '../../src/agent/runtime/cri-proto.js';
import { CriClient, CriError, criTarget, isNotFound, isUnavailable, nanosToDate } from '../../src/agent/runtime/cri-client.js';

type Handler = (call: grpc.ServerUnaryCall<any, any>, cb: grpc.sendUnaryData<any>) => void;

async function fakeRuntime(t: TestContext, runtime: Record<string, Handler>, images: Record<string, Handler> = {}, socket?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-cri-'));
  const path = socket ?? join(dir, 'cri.sock');
  const pkg = grpc.loadPackageDefinition(criPackageDefinition()) as any;
  const server = new grpc.Server();
  server.addService(pkg.runtime.v1.RuntimeService.service, runtime);
  server.addService(pkg.runtime.v1.ImageService.service, images);
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${path}`, grpc.ServerCredentials.createInsecure(), (e) => e ? reject(e) : resolve()));
  t.after(() => { server.forceShutdown(); rmSync(dir, { recursive: true, force: true }); });
  return { path, server };
}

function client(t: TestContext, path: string, timeoutMs = 2_000): CriClient {
  const c = new CriClient(path, { timeoutMs });
  t.after(() => c.close());
  return c;
}

test('requests arrive with the fields set; int64 come back as strings and bytes as Buffers', async (t) => {
  const seen: Record<string, any> = {};
  const { path } = await fakeRuntime(t, {
    Version: (call, cb) => { seen.version = call.request; cb(null, { version: '0.1.0', runtimeName: 'fake', runtimeVersion: '1', runtimeApiVersion: 'v1' }); },
    RunPodSandbox: (call, cb) => { seen.run = call.request; cb(null, { podSandboxId: 'sb1' }); },
    ContainerStatus: (call, cb) => {
      seen.status = call.request;
      cb(null, { status: { id: call.request.containerId, state: 'CONTAINER_RUNNING', startedAt: '1700000000123456789', exitCode: 0 }, info: { pid: '42' } });
    },
    ExecSync: (call, cb) => { seen.exec = call.request; cb(null, { stdout: Buffer.from('hi\n'), stderr: Buffer.alloc(0), exitCode: 7 }); },
    PortForward: (call, cb) => { seen.pf = call.request; cb(null, { url: 'http://127.0.0.1:1/portforward/x' }); },
    StopContainer: (call, cb) => { seen.stop = call.request; cb(null, {}); },
  }, {
    ImageStatus: (call, cb) => cb(null, call.request.image.image === 'present'
      ? { image: { id: 'sha256:abc', repoTags: ['present'], size: '123' } }
      : {}),
    PullImage: (call, cb) => { seen.pull = call.request; cb(null, { imageRef: 'sha256:def' }); },
  });
  const cri = client(t, path);

  assert.equal((await cri.version()).runtimeName, 'fake');
  assert.equal(seen.version.version, 'v1');

  assert.equal(await cri.runPodSandbox({
    metadata: { name: 'p', uid: 'u', namespace: 'n' },
    portMappings: [{ protocol: 'UDP', containerPort: 53, hostPort: 5353 }],
    linux: { cgroupParent: '/pods', securityContext: { runAsUser: { value: 1000 } } },
  }), 'sb1');
  assert.equal(seen.run.config.metadata.name, 'p');
  assert.equal(seen.run.config.portMappings[0].protocol, 'UDP');
  assert.equal(seen.run.config.linux.securityContext.runAsUser.value, '1000');

  const st = await cri.containerStatus('c1', true);
  assert.equal(seen.status.verbose, true);
  assert.equal(st.status?.state, 'CONTAINER_RUNNING');
  assert.equal(st.status?.startedAt, '1700000000123456789', 'nanoseconds keep full precision');
  assert.equal(nanosToDate(st.status!.startedAt)?.getTime(), 1700000000123);
  assert.equal(nanosToDate(st.status!.finishedAt), null);
  assert.equal(st.info.pid, '42');

  const ex = await cri.execSync('c1', ['echo', 'hi'], 5);
  assert.ok(Buffer.isBuffer(ex.stdout));
  assert.equal(ex.stdout.toString(), 'hi\n');
  assert.equal(ex.exitCode, 7);
  assert.deepEqual(seen.exec.cmd, ['echo', 'hi']);
  assert.equal(seen.exec.timeout, '5');

  assert.match(await cri.portForward('sb1', [80, 443]), /portforward/);
  assert.deepEqual(seen.pf.port, [80, 443]);
  await cri.stopContainer('c1', 30);
  assert.equal(seen.stop.timeout, '30');

  assert.equal((await cri.imageStatus('present'))?.id, 'sha256:abc');
  assert.equal(await cri.imageStatus('absent'), null, 'an empty ImageStatus means "not present"');
  assert.equal(await cri.pullImage('reg.local/app:1', { username: 'u', password: 'p', serverAddress: 'reg.local' }), 'sha256:def');
  assert.deepEqual([seen.pull.auth.username, seen.pull.auth.password, seen.pull.image.image], ['u', 'p', 'reg.local/app:1']);
});

test('errors name the RPC and the gRPC code; NOT_FOUND, deadline and unreachable runtime are told apart', async (t) => {
  const { path } = await fakeRuntime(t, {
    RemoveContainer: (_call, cb) => cb({ code: grpc.status.NOT_FOUND, details: 'container "x" not found' }),
    ListContainers: () => { /* never answers */ },
  });
  const cri = client(t, path, 200);
  await assert.rejects(cri.removeContainer('x'), (err: unknown) => {
    assert.ok(err instanceof CriError);
    assert.ok(isNotFound(err));
    assert.equal(err.rpc, 'RemoveContainer');
    assert.match(err.message, /CRI RemoveContainer failed \(NOT_FOUND\): container "x" not found/);
    return true;
  });
  // ListContainers never answers: only the client's deadline can end the call.
  await assert.rejects(cri.listContainers(), (err: unknown) => err instanceof CriError && err.code === grpc.status.DEADLINE_EXCEEDED);
  await assert.rejects(cri.podSandboxStats('s'), (err: unknown) => err instanceof CriError && err.code === grpc.status.UNIMPLEMENTED);

  const nowhere = client(t, join(tmpdir(), `skiff-no-such-${process.pid}.sock`), 500);
  await assert.rejects(nowhere.version(), (err: unknown) => {
    assert.ok(isUnavailable(err), String(err));
    assert.match((err as Error).message, /runtime not reachable at/);
    return true;
  });
});

test('waitReady retries until a runtime starts serving the socket; gives up on a non-CRI server', { timeout: 60_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'skiff-cri-late-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, 'late.sock');
  const cri = client(t, path);
  const ready = cri.waitReady(5_000);
  await new Promise((r) => setTimeout(r, 300));
  await fakeRuntime(t, { Version: (_c, cb) => cb(null, { runtimeName: 'late' }) }, {}, path);
  assert.equal((await ready).runtimeName, 'late');

  const other = mkdtempSync(join(tmpdir(), 'skiff-cri-other-'));
  t.after(() => rmSync(other, { recursive: true, force: true }));
  const server = new grpc.Server();
  const sock = join(other, 'x.sock');
  await new Promise<void>((resolve, reject) => server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (e) => e ? reject(e) : resolve()));
  t.after(() => server.forceShutdown());
  // No waiting for a server that does not speak CRI: with an hour to wait, only giving up at once
  // lets this finish before the test's timeout.
  await assert.rejects(client(t, sock).waitReady(3_600_000), /UNIMPLEMENTED/);
});

test('endpoint spellings', () => {
  assert.equal(criTarget('/run/x.sock'), 'unix:///run/x.sock');
  assert.equal(criTarget('unix:///run/x.sock'), 'unix:///run/x.sock');
  assert.equal(criTarget('unix:/run/x.sock'), 'unix:///run/x.sock');
  assert.throws(() => criTarget('tcp://1.2.3.4:1'), /absolute unix socket/);
});

test('field numbers the agent relies on match upstream runtime.v1', () => {
  const root = criRoot();
  const id = (type: string, field: string) => root.lookupType(`runtime.v1.${type}`).fields[field]?.id;
  const pinned: [string, string, number][] = [
    ['PodSandboxConfig', 'metadata', 1], ['PodSandboxConfig', 'logDirectory', 3], ['PodSandboxConfig', 'dnsConfig', 4],
    ['PodSandboxConfig', 'portMappings', 5], ['PodSandboxConfig', 'linux', 8],
    ['LinuxPodSandboxConfig', 'cgroupParent', 1], ['LinuxPodSandboxConfig', 'sysctls', 3],
    ['LinuxSandboxSecurityContext', 'privileged', 6], ['LinuxSandboxSecurityContext', 'runAsGroup', 8],
    ['ContainerConfig', 'envs', 6], ['ContainerConfig', 'mounts', 7], ['ContainerConfig', 'devices', 8],
    ['ContainerConfig', 'logPath', 11], ['ContainerConfig', 'tty', 14], ['ContainerConfig', 'linux', 15],
    ['LinuxContainerResources', 'memoryLimitInBytes', 4], ['LinuxContainerResources', 'oomScoreAdj', 5],
    ['LinuxContainerResources', 'memorySwapLimitInBytes', 10],
    ['LinuxContainerSecurityContext', 'runAsUser', 5], ['LinuxContainerSecurityContext', 'readonlyRootfs', 7],
    ['LinuxContainerSecurityContext', 'runAsGroup', 12], ['LinuxContainerSecurityContext', 'seccomp', 15],
    ['ContainerStatus', 'exitCode', 7], ['ContainerStatus', 'reason', 10], ['ContainerStatus', 'logPath', 15],
    ['ContainerStatus', 'imageId', 17], ['Container', 'imageRef', 5], ['Container', 'createdAt', 7],
    ['PodSandboxStatus', 'network', 5], ['PodSandboxStatusResponse', 'containersStatuses', 3],
    ['ExecSyncResponse', 'exitCode', 3], ['PullImageRequest', 'auth', 2], ['PullImageRequest', 'sandboxConfig', 3],
    ['AuthConfig', 'serverAddress', 4], ['AuthConfig', 'registryToken', 6], ['ImageSpec', 'userSpecifiedImage', 18],
    ['Image', 'pinned', 8], ['MemoryUsage', 'workingSetBytes', 2], ['ContainerStats', 'writableLayer', 4],
    ['ImageFsInfoResponse', 'containerFilesystems', 2],
  ];
  for (const [type, field, n] of pinned) assert.equal(id(type, field), n, `${type}.${field}`);
  // Bytes on the wire for a tiny message: field 1 (string) and field 2 (varint bool).
  const T = root.lookupType('runtime.v1.ContainerStatusRequest');
  assert.equal(Buffer.from(T.encode(T.fromObject({ containerId: 'x', verbose: true })).finish()).toString('hex'), '0a01781001');
});
