// Streaming through the agent tunnel, end to end: a real API server (in this process), a node that
// joined through /v1-skiff/node-credentials and dialled its tunnel with those credentials, a real
// containerd running a busybox pod, and the real kubectl 1.32 and client-node against the server:
// logs (tail, follow, timestamps), exec (output, exit code, stdin, a tty), attach, cp, port-forward to
// an HTTP server in the pod. kubectl's first choices, WebSocket v5 exec/attach and SPDY tunnelled in a
// WebSocket for port-forward, are translated by the server (its logs say kubectl did not fall back);
// kubectl's SPDY and client-node's WebSocket v4 reach containerd spliced. The pod object is bound
// to the node by name and its status names the container, as the agent's pod worker will write it.
// Everything is torn down afterwards, also on failure.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import { get as httpGet } from 'node:http';
import { join } from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { freePort } from '../helpers/cluster.js';
import { runKubectl, kubectlBinary, KubectlStream, ok, fails, type KubectlResult } from '../helpers/kubectl.js';
import { TEST_IMAGE, writeBusyboxImage } from '../helpers/images.js';
import { KubeConfig, Exec, PortForward } from '../helpers/client-node.js';
import type { V1Status } from '../helpers/client-node.js';
import { parseToken } from '../../src/pki/token.js';
import type { PodSandboxConfig } from '../../src/agent/runtime/cri-types.js';
import { removeLabelled } from '../helpers/runtime-cleanup.js';

process.env.SKIFF_LOG_LEVEL ??= 'warn';
// After the log level is set: modules create their loggers when they load.
const { startServer } = await import('../../src/server/run.js');
const { ContainerdSupervisor } = await import('../../src/agent/runtime/containerd.js');
const { CriClient } = await import('../../src/agent/runtime/cri-client.js');
const { writeBridgeCniConfig } = await import('../../src/agent/runtime/cni-config.js');
const { imagesDir, ensurePauseImage, importImageDir } = await import('../../src/agent/runtime/images.js');
const { teardownRuntime } = await import('../../src/agent/runtime/teardown.js');
const { AgentTunnel, runtimeStreamHandler } = await import('../../src/agent/tunnel/client.js');

const run = randomBytes(3).toString('hex');
const BRIDGE = `skst${run}`;
const POD_CIDR = `10.${150 + (randomBytes(1)[0]! % 40)}.${randomBytes(1)[0]}.0/24`;
const CGROUP_PARENT = `/skiff-st-${run}`;
const NODE = `node-${run}`;
const NS = 'default';

function missingPrerequisites(): string[] {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) missing.push('root (containerd needs it)');
  for (const bin of ['containerd', 'ctr', 'runc', 'containerd-shim-runc-v2', 'ip']) {
    if (spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0) missing.push(`${bin} on PATH`);
  }
  if (!existsSync('/usr/lib/cni/bridge')) missing.push('/usr/lib/cni/bridge (containernetworking-plugins)');
  if (!existsSync('/bin/busybox')) missing.push('/bin/busybox (busybox-static)');
  if (spawnSync('sh', ['-c', 'command -v script']).status !== 0) missing.push('script (util-linux), for a terminal');
  return missing;
}

// Short: containerd's socket path must fit a unix socket address.
const dataDir = mkdtempSync('/tmp/skiff-st-');
const kubeconfig = join(dataDir, 'kubeconfig.yaml');
type Running = Awaited<ReturnType<typeof startServer>>;
let server: Running | undefined;
let port = 0;
let supervisor: InstanceType<typeof ContainerdSupervisor> | undefined;
let cri: InstanceType<typeof CriClient> | undefined;
let tunnel: InstanceType<typeof AgentTunnel> | undefined;
let nodeCreds: { certPem: string; keyPem: string; caPem: string } | undefined;
const streams: KubectlStream[] = [];
let containerId = '';
let podUid = '';
let containerStarted = 0;

after(async () => {
  for (const s of streams) await s.stop();
  tunnel?.stop();
  await server?.close().catch(() => undefined);
  await removeLabelled(cri, 'skiff-e2e', run);
  cri?.close();
  await supervisor?.stop().catch(() => undefined);
  await teardownRuntime({ dataDir, cgroupParents: [CGROUP_PARENT], removeDataDir: true });
  spawnSync('ip', ['link', 'del', BRIDGE], { stdio: 'ignore' });
});

const kubectlBase = () => ['--kubeconfig', kubeconfig, '--cache-dir', join(dataDir, 'kubectl-cache')];
const kubectl = (args: string[], input?: string, timeoutMs?: number): Promise<KubectlResult> =>
  runKubectl(kubectlBase(), args, { input, timeoutMs });
/** kubectl with its WebSocket protocols switched off: the SPDY/3.1 upgrade of kubectl ≤ 1.29. */
const kubectlSpdy = (args: string[], input?: string): Promise<KubectlResult> =>
  runKubectl(kubectlBase(), args, { input, env: { KUBECTL_REMOTE_COMMAND_WEBSOCKETS: 'false', KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' } });
function kubectlStream(args: string[]): KubectlStream {
  const s = new KubectlStream(kubectlBase(), args);
  streams.push(s);
  return s;
}

function httpsJson(method: string, path: string, opts: { body?: object; headers?: Record<string, string> } = {}): Promise<{ status: number; body: any }> {
  const body = opts.body ? Buffer.from(JSON.stringify(opts.body)) : undefined;
  return new Promise((resolve, reject) => {
    const req = httpsRequest({
      host: '127.0.0.1', port, method, path, ca: server!.ctx.caBundlePem, agent: false,
      headers: { ...opts.headers, ...(body ? { 'content-type': 'application/json', 'content-length': String(body.length) } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined> | T | undefined, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const POD_SCRIPT = [
  'echo hello', 'echo to-stderr >&2',
  'mkdir -p /www', 'echo hi-from-httpd > /www/index.html', 'httpd -p 8080 -h /www',
  'i=0', 'while true; do i=$((i+1)); echo tick $i; sleep 0.3; done',
].join('; ');

before(async () => {
  const missing = missingPrerequisites();
  assert.deepEqual(missing, [], `this end-to-end test needs: ${missing.join('; ')}`);

  port = await freePort();
  server = await startServer({
    dataDir, bindAddress: '127.0.0.1', httpsListenPort: port, tlsSan: [], writeKubeconfig: kubeconfig, writeKubeconfigMode: 0o600,
    clusterCidr: '10.42.0.0/16', serviceCidr: '10.43.0.0/16', serviceNodePortRange: '30000-32767', clusterDns: '10.43.0.10',
    clusterDomain: 'cluster.local', disableAgent: true, disableControllerManager: true, watchCacheSize: 1000, disableScheduler: true,
    nodeMonitorGracePeriodSeconds: 40, defaultNotReadyTolerationSeconds: 300, defaultUnreachableTolerationSeconds: 300,
  });

  // Join as a node: the cluster token buys a client certificate for system:node:<NODE>.
  const token = parseToken(readFileSync(join(dataDir, 'server', 'token'), 'utf8'));
  const joined = await httpsJson('POST', '/v1-skiff/node-credentials', {
    headers: { authorization: `Bearer ${token.password}` },
    body: { nodeName: NODE, nodePassword: randomBytes(16).toString('hex') },
  });
  assert.equal(joined.status, 200, JSON.stringify(joined.body));
  nodeCreds = joined.body;

  // The node's runtime: our own containerd, the busybox image imported offline, a bridge network.
  mkdirSync(imagesDir(dataDir), { recursive: true });
  writeBusyboxImage(imagesDir(dataDir), 'busybox.tar');
  writeBridgeCniConfig(join(dataDir, 'agent', 'cni', 'conf'), POD_CIDR, BRIDGE, { ipMasq: false, portMap: false });
  supervisor = new ContainerdSupervisor({ dataDir });
  await supervisor.start();
  cri = new CriClient(supervisor.endpoint, { timeoutMs: 20_000 });
  await ensurePauseImage({ dataDir, containerdSocket: supervisor.endpoint, cri });
  await importImageDir({ dataDir, containerdSocket: supervisor.endpoint, cri });

  tunnel = new AgentTunnel({
    serverUrl: `https://127.0.0.1:${port}`, nodeName: NODE, caPem: nodeCreds!.caPem, certPem: nodeCreds!.certPem, keyPem: nodeCreds!.keyPem,
    serve: runtimeStreamHandler({ cri }),
  });
  tunnel.start();
  await tunnel.waitConnected(10_000);

  // The pod object, bound to the node, then its sandbox and container, then the status naming it.
  const pod = `apiVersion: v1
kind: Pod
metadata: { name: web, namespace: ${NS} }
spec:
  nodeName: ${NODE}
  containers: [{ name: main, image: "${TEST_IMAGE}" }]
`;
  ok(await kubectl(['apply', '-f', '-'], pod), 'create pod');
  podUid = ok(await kubectl(['get', 'pod', 'web', '-o', 'jsonpath={.metadata.uid}']), 'pod uid');
  const sandboxConfig: PodSandboxConfig = {
    metadata: { name: 'web', uid: podUid, namespace: NS, attempt: 0 },
    hostname: 'web',
    logDirectory: join(dataDir, 'pods', `${NS}_web_${podUid}`),
    labels: { 'skiff-e2e': run, 'io.kubernetes.pod.uid': podUid },
    linux: { cgroupParent: CGROUP_PARENT },
  };
  const sandboxId = await cri.runPodSandbox(sandboxConfig);
  // A first attempt that already exited: what `logs --previous` reads, as after a restart.
  const previousId = await cri.createContainer(sandboxId, {
    metadata: { name: 'main', attempt: 0 },
    image: { image: TEST_IMAGE },
    command: ['sh', '-c', 'echo previous-run; exit 1'],
    logPath: 'main/0.log',
    labels: { 'skiff-e2e': run },
  }, sandboxConfig);
  await cri.startContainer(previousId);
  await eventually('the first attempt exits', async () =>
    (await cri!.containerStatus(previousId)).status?.state === 'CONTAINER_EXITED' ? true : undefined);
  containerId = await cri.createContainer(sandboxId, {
    metadata: { name: 'main', attempt: 1 },
    image: { image: TEST_IMAGE },
    command: ['sh', '-c', POD_SCRIPT],
    logPath: 'main/1.log',
    labels: { 'skiff-e2e': run },
  }, sandboxConfig);
  await cri.startContainer(containerId);
  containerStarted = Date.now();
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  const status = {
    phase: 'Running',
    containerStatuses: [{
      name: 'main', containerID: `containerd://${containerId}`, image: TEST_IMAGE, imageID: '', ready: true, started: true,
      restartCount: 1, state: { running: { startedAt: now } },
      lastState: { terminated: { exitCode: 1, reason: 'Error', containerID: `containerd://${previousId}`, startedAt: now, finishedAt: now } },
    }],
  };
  ok(await kubectl(['patch', 'pod', 'web', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]), 'pod status');
  await eventually('the pod logs its first ticks', () => {
    const f = join(sandboxConfig.logDirectory!, 'main', '1.log');
    return existsSync(f) && readFileSync(f, 'utf8').includes('tick 2') ? true : undefined;
  });
});

test('kubectl logs: whole log (stdout and stderr), --tail, --timestamps, --since', async () => {
  const all = ok(await kubectl(['logs', 'web']), 'logs');
  // stdout and stderr are separate pipes, copied into the log independently: where the stderr line
  // lands among the stdout lines is the runtime's doing (on a busy machine it came after "tick 1").
  const logged = all.split('\n');
  assert.deepEqual(logged.filter((l) => l !== 'to-stderr').slice(0, 3), ['hello', 'tick 1', 'tick 2'], all);
  assert.equal(logged.filter((l) => l === 'to-stderr').length, 1, `the stderr line once: ${all}`);
  const tail = ok(await kubectl(['logs', 'web', '--tail=1']), 'logs --tail');
  assert.match(tail, /^tick \d+\n$/);
  const ts = ok(await kubectl(['logs', 'web', '--tail=2', '--timestamps']), 'logs --timestamps');
  const lines = ts.trimEnd().split('\n');
  assert.equal(lines.length, 2, ts);
  for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+(Z|[+-]\d\d:\d\d) tick \d+$/);
  await new Promise((r) => setTimeout(r, Math.max(0, containerStarted + 2_500 - Date.now())));
  const recent = ok(await kubectl(['logs', 'web', '--since=1s']), 'logs --since');
  assert.doesNotMatch(recent, /hello/, 'entries older than --since are skipped');
  assert.match(recent, /tick \d+\n/);
  const limited = ok(await kubectl(['logs', 'web', '-c', 'main', '--limit-bytes=6']), 'logs --limit-bytes');
  assert.equal(limited.length, 6);
  assert.ok(all.startsWith(limited), `${JSON.stringify(limited)} starts the log`);
});

test('kubectl logs -f streams new lines as the container writes them', async () => {
  const f = kubectlStream(['logs', '-f', 'web', '--tail=1']);
  const first = Number((await f.waitFor(/tick (\d+)\n/))[1]);
  await f.waitFor(new RegExp(`tick ${first + 3}\\n`), 10_000);
  assert.equal(f.proc.exitCode, null, 'still following');
  await f.stop();
});

test('kubectl logs --previous reads the terminated attempt named in lastState', async () => {
  assert.equal(ok(await kubectl(['logs', 'web', '--previous'])), 'previous-run\n');
});

test('kubectl logs errors: unknown container, --previous without one, a pod with no node', async () => {
  fails(await kubectl(['logs', 'web', '-c', 'nope']), /container nope is not valid for pod web/);
  ok(await kubectl(['apply', '-f', '-'], `apiVersion: v1\nkind: Pod\nmetadata: { name: fresh, namespace: ${NS} }\nspec: { nodeName: ${NODE}, containers: [{ name: c, image: x }] }\n`));
  const status = { containerStatuses: [{ name: 'c', image: 'x', imageID: '', ready: false, restartCount: 0, state: { running: {} }, containerID: `containerd://${containerId}` }] };
  ok(await kubectl(['patch', 'pod', 'fresh', '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]));
  fails(await kubectl(['logs', 'fresh', '--previous']), /previous terminated container "c" in pod "fresh" not found/);
  ok(await kubectl(['apply', '-f', '-'], `apiVersion: v1\nkind: Pod\nmetadata: { name: unbound, namespace: ${NS} }\nspec: { containers: [{ name: c, image: x }] }\n`));
  fails(await kubectl(['logs', 'unbound']), /does not have a host assigned|waiting to start/);
});

test('kubectl exec (WebSocket v5, translated): output, stderr and the exit code; stdin with -i until EOF', async () => {
  const verbose = await kubectl(['-v=7', 'exec', 'web', '--', 'true']);
  assert.equal(verbose.code, 0, verbose.stderr);
  assert.match(verbose.stderr, /The subprotocol is v5\.channel\.k8s\.io/, 'kubectl negotiated v5');
  assert.doesNotMatch(verbose.stderr, /POST https:\S+\/exec/, 'and did not fall back to SPDY');

  const r = await kubectl(['exec', 'web', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
  assert.equal(r.code, 3, `exit code passes through: ${r.stderr}`);
  assert.equal(r.stdout, 'out\n');
  assert.equal(r.stderr, 'err\ncommand terminated with exit code 3\n');
  assert.equal(ok(await kubectl(['exec', 'web', '--', 'cat', '/www/index.html'])), 'hi-from-httpd\n');
  // Ends only if stdin's EOF (v5's close signal) reaches the command.
  const piped = await kubectl(['exec', '-i', 'web', '--', 'sh', '-c', 'tr a-z A-Z; echo done'], 'piped input\n');
  assert.equal(ok(piped, 'exec -i'), 'PIPED INPUT\ndone\n');
  // More than one SPDY window (64 KiB) each way: containerd's SPDY grants no window updates.
  const big = 'x'.repeat(300_000);
  assert.equal(ok(await kubectl(['exec', '-i', 'web', '--', 'wc', '-c'], big)).trim(), '300000');
  const large = await kubectl(['exec', 'web', '--', 'sh', '-c', 'head -c 2000000 /dev/zero | tr "\\0" y; exit 6']);
  assert.equal(large.code, 6, large.stderr);
  assert.equal(large.stdout.length, 2_000_000);
  assert.ok(/^y+$/.test(large.stdout), 'the output arrives whole, before the status');
  // A runtime error (not an exit code) arrives as a Status too.
  const missing = await kubectl(['exec', 'web', '--', '/nonexistent']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /Internal error occurred: .*\/nonexistent.*no such file or directory/);
});

test('kubectl exec -it: a terminal of the client\'s size (resize channel), exit code', async () => {
  // `script` gives kubectl a terminal; busybox polls until containerd applied the first resize.
  const cmd = `stty rows 31 cols 97; ${kubectlBinary()} ${kubectlBase().join(' ')} exec -it web -- `
    + `sh -c 'for i in $(seq 50); do s=$(stty size); [ "$s" = "31 97" ] && break; sleep 0.1; done; echo "size=$s"; tty; exit 4'`;
  const child = spawn('script', ['-qec', cmd, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { out += d; });
  const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(timer);
  assert.equal(code, 4, out);
  assert.match(out, /size=31 97\r\n\/dev\/pts\/\d+\r\ncommand terminated with exit code 4/);
});

test('kubectl exec over SPDY (no WebSocket) still reaches containerd directly', async () => {
  const r = await kubectlSpdy(['-v=7', 'exec', '-i', 'web', '--', 'sh', '-c', 'cat; exit 5'], 'over spdy\n');
  assert.equal(r.code, 5, r.stderr);
  assert.equal(r.stdout, 'over spdy\n');
  assert.match(r.stderr, /POST https:\S+\/exec/);
});

test('kubectl cp both ways (exec + tar)', async () => {
  const local = join(dataDir, 'cp-in.txt');
  writeFileSync(local, 'copied through the tunnel\n');
  ok(await kubectl(['cp', local, `${NS}/web:/tmp/in.txt`]), 'cp to pod');
  assert.equal(ok(await kubectl(['exec', 'web', '--', 'cat', '/tmp/in.txt'])), 'copied through the tunnel\n');
  const back = join(dataDir, 'cp-out.txt');
  ok(await kubectl(['cp', `${NS}/web:/www/index.html`, back]), 'cp from pod');
  assert.equal(readFileSync(back, 'utf8'), 'hi-from-httpd\n');
});

test('kubectl attach (WebSocket v5) streams the running container\'s output', async () => {
  const a = kubectlStream(['attach', 'web']);
  await a.waitFor(/tick \d+\n[\s\S]*tick \d+\n/, 10_000);
  await a.stop();
});

function httpGetText(port: number, path: string): Promise<string> {
  return new Promise<string>((resolve, reject) => {
    httpGet({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let text = '';
      res.setEncoding('utf8').on('data', (d: string) => { text += d; });
      res.on('end', () => resolve(text));
    }).on('error', reject);
  });
}

test('kubectl port-forward (SPDY tunnelled in a WebSocket) reaches the HTTP server in the pod', async () => {
  ok(await kubectl(['exec', 'web', '--', 'sh', '-c', 'head -c 1000000 /dev/zero | tr "\\0" z > /www/big']), 'a large file');
  const pf = kubectlStream(['-v=7', 'port-forward', 'pod/web', ':8080']);
  const localPort = Number((await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 8080/))[1]);
  for (let i = 0; i < 3; i++) assert.equal(await httpGetText(localPort, '/index.html'), 'hi-from-httpd\n');
  const big = await httpGetText(localPort, '/big');
  assert.equal(big.length, 1_000_000);
  assert.match(big, /^z+$/);
  assert.match(pf.stderr, /negotiated protocol: portforward\.k8s\.io/, 'kubectl tunnelled SPDY through a WebSocket');
  assert.doesNotMatch(pf.stderr, /POST https:\S+\/portforward/, 'and did not fall back to SPDY');
  await pf.stop();
});

test('kubectl port-forward over SPDY (no WebSocket) still works', async () => {
  const pf = new KubectlStream(kubectlBase(), ['port-forward', 'pod/web', ':8080'], { env: { KUBECTL_PORT_FORWARD_WEBSOCKETS: 'false' } });
  streams.push(pf);
  const localPort = Number((await pf.waitFor(/Forwarding from 127\.0\.0\.1:(\d+) -> 8080/))[1]);
  assert.equal(await httpGetText(localPort, '/index.html'), 'hi-from-httpd\n');
  await pf.stop();
});

function clientNodeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  return kc;
}

function collect(): { sink: Writable; text: () => string } {
  let text = '';
  const sink = new Writable({ write(c, _e, cb) { text += c.toString(); cb(); } });
  return { sink, text: () => text };
}

test('client-node Exec (WebSocket v4): output and status', async () => {
  const exec = new Exec(clientNodeConfig());
  const out = collect();
  const err = collect();
  const status = await new Promise<V1Status>((resolve, reject) => {
    exec.exec(NS, 'web', 'main', ['sh', '-c', 'echo from-client-node; exit 0'], out.sink, err.sink, null, false, (s) => resolve(s))
      .then((ws) => ws.on('error', reject), reject);
  });
  assert.equal(status.status, 'Success', JSON.stringify(status));
  await eventually('stdout', () => out.text() === 'from-client-node\n' ? true : undefined, 5_000);
  const failed = await new Promise<V1Status>((resolve, reject) => {
    exec.exec(NS, 'web', 'main', ['sh', '-c', 'exit 7'], collect().sink, null, null, false, (s) => resolve(s)).catch(reject);
  });
  // As Kubernetes: a stream with no stdin, stdout or stderr is refused before it reaches the node.
  await assert.rejects(exec.exec(NS, 'web', 'main', ['true'], null, null, null, false),
    (e: { message?: string }) => /Unexpected server response: 400/.test(e?.message ?? ''));
  assert.equal(failed.status, 'Failure');
  assert.equal(failed.reason, 'NonZeroExitCode');
  assert.equal(failed.details?.causes?.[0]?.message, '7');
});

test('client-node PortForward (WebSocket v4, ?ports=)', async () => {
  const pf = new PortForward(clientNodeConfig());
  const input = new PassThrough();
  const out = collect();
  const ws = await pf.portForward(NS, 'web', [8080], out.sink, null, input);
  input.write('GET /index.html HTTP/1.0\r\n\r\n');
  await eventually('the HTTP answer', () => /hi-from-httpd/.test(out.text()) ? true : undefined, 10_000);
  assert.match(out.text(), /^HTTP\/1\.[01] 200/);
  (ws as { close(): void }).close();
});

test('the tunnel refuses a node that claims another name, and non-node users', async () => {
  const { default: WebSocket } = await import('ws');
  const attempt = (headers: Record<string, string>, creds: { cert?: string; key?: string }) => new Promise<number>((resolve) => {
    const ws = new WebSocket(`wss://127.0.0.1:${port}/v1-skiff/connect`, { ca: server!.ctx.caBundlePem, headers, ...creds });
    ws.on('unexpected-response', (_req, res) => { resolve(res.statusCode ?? 0); ws.terminate(); });
    ws.on('open', () => { resolve(101); ws.close(); });
    ws.on('error', () => undefined);
  });
  assert.equal(await attempt({ 'x-skiff-node-name': 'someone-else' }, { cert: nodeCreds!.certPem, key: nodeCreds!.keyPem }), 403);
  assert.equal(await attempt({}, {}), 401);
  const kc = readFileSync(kubeconfig, 'utf8');
  const b64 = (k: string) => Buffer.from(kc.match(new RegExp(`${k}: (\\S+)`))![1]!, 'base64').toString('utf8');
  assert.equal(await attempt({}, { cert: b64('client-certificate-data'), key: b64('client-key-data') }), 403, 'the admin is not a node');
  assert.ok(tunnel!.connected, 'the real node keeps its tunnel');
});
