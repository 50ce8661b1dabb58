// The node's share of a rolling upgrade (issue 14 item 5; the plan is src/controllers/upgrade): when
// the server hands this node a target release in its Node's annotations, the agent downloads the
// tarball from the server over the connection it already has (nodes behind NAT need nothing else),
// checks it against the checksum the plan resolved and against the release's own SHA256SUMS, puts it
// beside the installed tree, swaps the two (the previous tree stays as `<home>.prev`), starts the
// health gate (bin/skiff-upgrade-guard of the version being replaced) and stops itself; the service
// manager (systemd's Restart=always, or skiff-supervise) starts the new version, and containers
// outlive the restart (KillMode=process). Informer (its own Node) → queue → reconcile.
//
// The health gate: the new version confirms once its node is Ready (upgrade-confirm.ts); without the
// confirmation within the plan's deadline the guard puts the previous tree back and stops the new
// program, so the service manager starts the previous version, whose agent reports RolledBack and the
// plan pauses.
import https from 'node:https';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, createWriteStream, existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { KObject } from '../api/object.js';
import { Informer } from '../client/informer.js';
import { runController, type RunningController } from '../client/controller.js';
import { WorkQueue } from '../client/workqueue.js';
import { Resources, type ApiClient } from '../client/types.js';
import { logger } from '../util/log.js';
import { releaseHome, releaseVersion } from '../release-version.js';
import { confirmUpgrade, upgradeDir, writePending, type PendingUpgrade } from './upgrade-confirm.js';

const log = logger('upgrade');

// The annotation names of src/controllers/upgrade/api.ts (the agent may not import controllers).
const A = 'upgrade.skiff.io/';
export const NODE_ANN = {
  targetVersion: `${A}target-version`, targetFile: `${A}target-file`, targetSha256: `${A}target-sha256`, healthTimeout: `${A}health-timeout`,
  runningVersion: `${A}version`, state: `${A}state`, stateVersion: `${A}state-version`, message: `${A}message`,
} as const;
export const RELEASES_PATH = '/v1-skiff/releases/';

export interface UpgradeExecutorOptions {
  client: ApiClient;
  nodeName: string;
  dataDir: string;
  server: string;
  creds: { caPem: string; certPem: string; keyPem: string };
  /** The installed release tree (default $SKIFF_HOME); none: this node cannot upgrade itself. */
  home?: string;
  /** Stops this process once the new tree is in place (default: SIGTERM to itself; the service manager restarts it). */
  restart?: () => void;
}

export interface RunningUpgradeExecutor { stop(): Promise<void> }

export async function startUpgradeExecutor(o: UpgradeExecutorOptions): Promise<RunningUpgradeExecutor> {
  const version = releaseVersion();
  const home = o.home ?? releaseHome();
  const report = (annotations: Record<string, string | null>) =>
    o.client.patch(Resources.nodes, undefined, o.nodeName, 'merge', { metadata: { annotations } });
  // What this start means for an upgrade in flight (confirmed, or rolled back by the guard), retried
  // until the server hears it (the server may itself be restarting into its new version).
  let stopped = false;
  void (async () => {
    for (let delay = 1000; !stopped; delay = Math.min(delay * 2, 15_000)) {
      try { await confirmUpgrade(o.dataDir, version, report); return; } catch (e) {
        log.warn({ err: e instanceof Error ? e.message : String(e) }, 'could not report the upgrade outcome yet; retrying');
      }
      await new Promise((r) => setTimeout(r, delay).unref());
    }
  })();

  const informer = new Informer<KObject>({ client: o.client, resource: Resources.nodes, fieldSelector: `metadata.name=${o.nodeName}` });
  const queue = new WorkQueue<string>();
  informer.addHandlers({ onAdd: (n) => queue.add(n.metadata.name!), onUpdate: (_x, n) => queue.add(n.metadata.name!) });
  let busy = false;
  const failed = new Set<string>();
  const controller: RunningController = runController({
    name: 'node-upgrade', queue, informers: [informer],
    async reconcile(name) {
      const node = informer.getByName(undefined, name);
      if (!node || busy) return;
      const ann = node.metadata.annotations ?? {};
      const target = ann[NODE_ANN.targetVersion];
      if (!target || target === version) return;
      const state = ann[NODE_ANN.stateVersion] === target ? ann[NODE_ANN.state] : undefined;
      // Given up on (this version failed here): the plan is paused; a new target starts afresh. The
      // cache may not show this process's own Failed report yet, hence the local memory too.
      if (state === 'RolledBack' || state === 'Failed' || failed.has(target)) return;
      busy = true;
      try {
        await upgradeTo({
          version: target, file: ann[NODE_ANN.targetFile] ?? '', sha256: ann[NODE_ANN.targetSha256] ?? '',
          healthTimeoutSeconds: Number(ann[NODE_ANN.healthTimeout]) || 180,
        });
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        log.warn({ target, err: message }, 'upgrade refused; nothing was changed');
        failed.add(target);
        busy = false;
        // The plan pauses on this report: retried while the API is briefly away (the server restarting).
        for (let i = 0; ; i++) {
          try { await report({ [NODE_ANN.state]: 'Failed', [NODE_ANN.stateVersion]: target, [NODE_ANN.message]: message }); break; } catch (err) {
            if (i >= 20) throw err;
            await new Promise((r) => setTimeout(r, 3000));
          }
        }
      }
    },
  });
  informer.start();

  async function upgradeTo(t: { version: string; file: string; sha256: string; healthTimeoutSeconds: number }): Promise<void> {
    const stateOf = (state: string, message: string) => report({ [NODE_ANN.state]: state, [NODE_ANN.stateVersion]: t.version, [NODE_ANN.message]: message });
    if (!home || !existsSync(join(home, 'VERSION'))) {
      throw new Error(`this node does not run from an installed release (no SKIFF_HOME with a VERSION): install it with install.sh to upgrade it in place`);
    }
    if (!/^[0-9a-f]{64}$/.test(t.sha256) || !t.file) throw new Error('the plan gave no artifact file and sha256');
    const t0 = performance.now();
    const dir = upgradeDir(o.dataDir);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    log.info({ from: version, to: t.version, file: t.file }, 'upgrade: downloading');
    await stateOf('Downloading', `${version} → ${t.version}: downloading ${t.file}`);
    const tarball = join(dir, t.file);
    // A server restarting (or a flaky link) is retried; a wrong checksum is not.
    let got = '';
    for (let attempt = 1; ; attempt++) {
      try { got = await download(new URL(RELEASES_PATH + encodeURIComponent(t.file), o.server), tarball, o.creds); break; } catch (e) {
        if (attempt >= 5 || /HTTP 4\d\d/.test(String(e))) throw e;
        log.info({ attempt, err: e instanceof Error ? e.message : String(e) }, 'download failed; retrying');
        await new Promise((r) => setTimeout(r, 2000 * attempt));
      }
    }
    if (got !== t.sha256) {
      rmSync(tarball, { force: true });
      throw new Error(`checksum mismatch for ${t.file}: expected ${t.sha256}, got ${got} (a damaged or tampered artifact); nothing was installed`);
    }
    await stateOf('Installing', `${version} → ${t.version}: unpacking and verifying`);
    // Beside the installed tree (same filesystem: the swap is two renames).
    const staging = `${home}.upgrade`;
    rmSync(staging, { recursive: true, force: true });
    mkdirSync(staging, { recursive: true });
    try {
      run('tar', ['-xzf', tarball, '-C', staging, '--no-same-owner'], 'unpacking');
      const top = join(staging, t.file.replace(/\.tar\.gz$/, ''));
      if (!existsSync(join(top, 'SHA256SUMS'))) throw new Error(`${t.file} holds no ${t.file.replace(/\.tar\.gz$/, '')}/SHA256SUMS`);
      run('sha256sum', ['--quiet', '--strict', '-c', 'SHA256SUMS'], 'files of the release do not match its SHA256SUMS', top);
      const inner = readFileSync(join(top, 'VERSION'), 'utf8').trim();
      if (inner !== t.version) throw new Error(`${t.file} holds version ${inner}, not ${t.version}`);
      // What install.sh wrote beside the program: the Node.js it found, the paths, the uninstaller.
      for (const f of ['NODE', 'install.env', 'skiff-uninstall.sh']) if (existsSync(join(home, f))) copyFileSync(join(home, f), join(top, f));
      const next = `${home}.next`;
      rmSync(next, { recursive: true, force: true });
      renameSync(top, next);
      rmSync(tarball, { force: true });

      const pending: PendingUpgrade = { from: version, to: t.version, home, startedAt: new Date().toISOString(), healthTimeoutSeconds: t.healthTimeoutSeconds };
      writePending(o.dataDir, pending);
      await stateOf('Restarting', `${version} → ${t.version}: restarting (health gate: Ready within ${t.healthTimeoutSeconds} s or back to ${version})`);
      // The swap. The previous tree is kept (the guard's rollback, and a manual one); a swap that
      // fails half-way puts it back.
      rmSync(`${home}.prev`, { recursive: true, force: true });
      renameSync(home, `${home}.prev`);
      try { renameSync(next, home); } catch (e) {
        renameSync(`${home}.prev`, home);
        rmSync(join(dir, 'pending.json'), { force: true });
        throw e;
      }
    } finally {
      rmSync(staging, { recursive: true, force: true });
    }
    // The guard of the version being replaced: a broken new release cannot break its own rollback.
    const guard = [join(`${home}.prev`, 'bin', 'skiff-upgrade-guard'), join(home, 'bin', 'skiff-upgrade-guard')].find(existsSync);
    if (guard) {
      const out = openSync(join(dir, 'guard.log'), 'a');
      spawn(guard, [dir, home, String(t.healthTimeoutSeconds)], { detached: true, stdio: ['ignore', out, out] }).unref();
    } else {
      log.warn('no skiff-upgrade-guard in either release: no automatic rollback for this upgrade');
    }
    log.info({ from: version, to: t.version, ms: Math.round(performance.now() - t0) }, 'upgrade: new version in place; restarting');
    (o.restart ?? defaultRestart)();
  }

  return {
    async stop() { stopped = true; await controller.stop(); await informer.stop(); },
  };
}

function defaultRestart(): void {
  // The usual shutdown (the server closes its datastore; containers keep running), then the service
  // manager starts the new program. A shutdown that hangs is cut short.
  setTimeout(() => process.exit(0), 20_000).unref();
  process.kill(process.pid, 'SIGTERM');
}

function run(cmd: string, args: string[], what: string, cwd?: string): void {
  const r = spawnSync(cmd, args, { cwd, encoding: 'utf8', timeout: 300_000 });
  if (r.status !== 0) throw new Error(`${what}: ${(r.stderr || r.stdout || r.error?.message || '').trim().split('\n').slice(-3).join('; ')}; nothing was installed`);
}

/** GETs `url` with the node's client certificate into `path`; resolves with the sha256 of what arrived. */
function download(url: URL, path: string, creds: { caPem: string; certPem: string; keyPem: string }): Promise<string> {
  mkdirSync(dirname(path), { recursive: true });
  return new Promise((resolve, reject) => {
    const req = https.get(url, { ca: creds.caPem, cert: creds.certPem, key: creds.keyPem, timeout: 60_000 }, (res) => {
      if (res.statusCode !== 200) {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          let message = Buffer.concat(chunks).toString('utf8').slice(0, 300);
          try { message = JSON.parse(message).message ?? message; } catch { /* not a Status */ }
          reject(new Error(`download of ${url.pathname}: HTTP ${res.statusCode}: ${message}`));
        });
        return;
      }
      const hash = createHash('sha256');
      const out = createWriteStream(path);
      res.on('data', (c: Buffer) => hash.update(c));
      res.pipe(out);
      out.on('finish', () => resolve(hash.digest('hex')));
      out.on('error', reject);
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`download of ${url.pathname}: no data for 60 s`)));
    req.on('error', reject);
  });
}

