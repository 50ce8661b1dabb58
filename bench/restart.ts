// Restart benchmark: how soon a restarted `skiff server` answers an authenticated GET of a stored
// object, after `kill -9` and after a graceful stop (SIGTERM), with N ConfigMaps in its database.
// test/e2e/durability-kill9.test.ts checks that nothing acknowledged is lost; how fast the server is
// back is a figure, measured here rather than asserted in a test (tests run on busy machines).
// Run after `npm run build`:
//   node --import tsx bench/restart.ts [--objects 2000] [--rounds 3]
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { ApiClient, credentialsFromKubeconfig } from '../test/helpers/api-client.js';
import { startBenchServer, sleep } from './lib/server.js';
import { intArg } from './lib/args.js';

const BIN = join(fileURLToPath(new URL('../', import.meta.url)), 'bin', 'skiff');
const COLL = '/api/v1/namespaces/default/configmaps';

const OBJECTS = intArg('--objects', 2000);
const ROUNDS = intArg('--rounds', 3);

const started = performance.now();
const first = await startBenchServer();
const { dataDir, port, kubeconfigPath, logPath } = first;
let proc: ChildProcess = first.proc;
const exited = (p: ChildProcess) => new Promise<void>((r) => (p.exitCode !== null || p.signalCode !== null ? r() : p.on('exit', () => r())));

/** The same command line startBenchServer used, on the same data dir and port. */
function relaunch(): ChildProcess {
  const fd = openSync(logPath, 'a');
  const p = spawn(BIN, ['server', '--data-dir', dataDir, '--https-listen-port', String(port), '--bind-address', '127.0.0.1',
    '--write-kubeconfig', kubeconfigPath, '--disable-agent'], { stdio: ['ignore', fd, fd] });
  closeSync(fd);
  return p;
}

/** Milliseconds from spawn to the first authenticated GET of `path` answering 200. */
async function restartToFirstGet(path: string): Promise<number> {
  const probe = new ApiClient(credentialsFromKubeconfig(kubeconfigPath), { keepAlive: false });
  const t0 = performance.now();
  proc = relaunch();
  try {
    for (;;) {
      if (proc.exitCode !== null) throw new Error(`server exited during restart:\n${readFileSync(logPath, 'utf8').split('\n').slice(-20).join('\n')}`);
      if (performance.now() - t0 > 60_000) throw new Error('no authenticated GET within 60 s of the restart');
      try {
        if ((await probe.get(path, { timeoutMs: 2000 })).status === 200) return performance.now() - t0;
      } catch { /* not listening yet */ }
      await sleep(5);
    }
  } finally {
    probe.close();
  }
}

try {
  const api = ApiClient.fromKubeconfig(kubeconfigPath);
  const fillStart = performance.now();
  let next = 0;
  await Promise.all(Array.from({ length: 16 }, async () => {
    for (let i = next++; i < OBJECTS; i = next++) {
      const r = await api.post(COLL, { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: `restart-${i}` }, data: { v: String(i) } });
      if (r.status !== 201) throw new Error(`create: HTTP ${r.status} ${r.body.slice(0, 200)}`);
    }
  }));
  api.close();
  const fillS = (performance.now() - fillStart) / 1000;

  const kill9: number[] = [];
  const sigterm: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    proc.kill('SIGKILL');
    await exited(proc);
    kill9.push(await restartToFirstGet(`${COLL}/restart-${round}`));
    proc.kill('SIGTERM');
    await exited(proc);
    sigterm.push(await restartToFirstGet(`${COLL}/restart-${round}`));
  }
  const fmt = (xs: number[]) => xs.map((x) => `${x.toFixed(0)}ms`).join(' ');
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  console.log(`skiff restart benchmark ${new Date().toISOString()} on ${os.cpus().length}× ${os.cpus()[0]?.model.trim()}, Node ${process.version}, load average ${os.loadavg()[0]!.toFixed(1)}`);
  console.log(`first start    ${first.startMs.toFixed(0)} ms from spawn to /readyz ok (CAs and certificates created)`);
  console.log(`fill           ${OBJECTS} ConfigMaps in ${fillS.toFixed(1)} s`);
  console.log(`after kill -9  ${fmt(kill9)} from spawn to the first authenticated GET`);
  console.log(`after SIGTERM  ${fmt(sigterm)} from spawn to the first authenticated GET`);
  console.log(`\nrestart: objects=${OBJECTS} kill9_first_get=${median(kill9).toFixed(0)}ms sigterm_first_get=${median(sigterm).toFixed(0)}ms ` +
    `(median of ${ROUNDS}); goal < 1000 ms; took ${((performance.now() - started) / 1000).toFixed(0)} s`);
} finally {
  proc.kill('SIGTERM');
  await exited(proc);
  await first.stop();
}
