// The agent's containerd: started with our own config, restarted with backoff when it dies, and
// deliberately NOT tied to the agent's life. Containers must survive `kill -9` of the agent, so
// containerd runs in its own session (its shims already do), and a restarted agent adopts the
// containerd still serving its socket instead of starting a second one.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CriClient } from './cri-client.js';
import { containerdPaths, installedRuntimes, renderContainerdConfig, type ContainerdPaths } from './containerd-config.js';
import { PAUSE_IMAGE } from './images.js';
import { logger, type Logger } from '../../util/log.js';

export interface ContainerdSupervisorOptions {
  dataDir: string;
  /** `--container-runtime-endpoint`: use this CRI socket and start nothing. */
  runtimeEndpoint?: string;
  sandboxImage?: string;
  cniBinDir?: string;
  /** Default `<dataDir>/agent/cni/conf`. */
  cniConfDir?: string;
  registryConfigDir?: string;
  containerdBin?: string;
  /** How long containerd may take to answer CRI after a (re)start. */
  startTimeoutMs?: number;
  log?: Logger;
}

const RESTART_MIN_MS = 1_000;
const RESTART_MAX_MS = 30_000;
/** A containerd that ran this long before dying starts the backoff over. */
const STABLE_MS = 60_000;
const ADOPTED_POLL_MS = 1_000;
const STOP_GRACE_MS = 10_000;
const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  // A dead child we never reaped still answers signal 0; its /proc status says Z.
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** The pid of a live containerd started with `--config <configPath>`, if any (found through /proc, so
 *  a lost pid file or a recycled pid cannot fool us). */
export function findContainerd(configPath: string): number | undefined {
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0');
    } catch {
      continue;
    }
    if (!argv[0]?.endsWith('containerd')) continue;
    const i = argv.indexOf('--config');
    if (i >= 0 && argv[i + 1] === configPath && alive(Number(name))) return Number(name);
  }
  return undefined;
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export class ContainerdSupervisor {
  readonly paths: ContainerdPaths;
  /** The CRI socket the agent talks to (ours, or the one given with runtimeEndpoint). */
  readonly endpoint: string;
  /** True when start() found containerd already running (after an agent restart) and adopted it. */
  adopted = false;
  private readonly opts: ContainerdSupervisorOptions;
  private readonly log: Logger;
  private child: ChildProcess | undefined;
  private currentPid: number | undefined;
  private stopping = false;
  private restartDelay = RESTART_MIN_MS;
  private startedAt = 0;
  private timer: NodeJS.Timeout | undefined;
  private restarting: Promise<void> | undefined;
  private restartPending = false;

  constructor(opts: ContainerdSupervisorOptions) {
    this.opts = opts;
    this.paths = containerdPaths(opts.dataDir);
    this.endpoint = opts.runtimeEndpoint?.replace(/^unix:(\/\/)?/, '') ?? this.paths.socket;
    this.log = opts.log ?? logger('containerd');
  }

  /** Whether this supervisor runs containerd (false with an external runtime endpoint). */
  get managed(): boolean {
    return this.opts.runtimeEndpoint === undefined;
  }

  get pid(): number | undefined {
    return this.currentPid;
  }

  get cniConfDir(): string {
    return this.opts.cniConfDir ?? join(this.opts.dataDir, 'agent', 'cni', 'conf');
  }

  /** Resolves when the runtime answers CRI. */
  async start(): Promise<void> {
    this.stopping = false;
    if (!this.managed) {
      await this.waitCri();
      return;
    }
    for (const d of [this.paths.dir, this.paths.root, this.paths.state, this.cniConfDir]) mkdirSync(d, { recursive: true });
    const config = renderContainerdConfig({
      paths: this.paths,
      sandboxImage: this.opts.sandboxImage ?? PAUSE_IMAGE,
      cniBinDir: this.opts.cniBinDir ?? '/usr/lib/cni',
      cniConfDir: this.cniConfDir,
      registryConfigDir: this.opts.registryConfigDir,
      extraRuntimes: installedRuntimes(existsSync),
    });
    const previous = existsSync(this.paths.config) ? readFileSync(this.paths.config, 'utf8') : undefined;
    const running = findContainerd(this.paths.config);
    if (running !== undefined && previous === config) {
      this.adopted = true;
      this.currentPid = running;
      this.log.info({ pid: running }, 'adopting running containerd');
      this.watchAdopted();
      await this.waitCri();
      return;
    }
    if (running !== undefined) {
      // Restarting containerd is harmless to containers (shims keep them), so a new config wins.
      this.log.info({ pid: running }, 'containerd config changed; restarting it');
      await this.terminate(running);
    }
    writeFileSync(this.paths.config, config);
    await this.launch();
  }

  /** Stops containerd (SIGTERM, then SIGKILL). Containers keep running under their shims. */
  async stop(): Promise<void> {
    this.stopping = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.restarting?.catch(() => undefined);
    const pid = this.currentPid;
    this.currentPid = undefined;
    this.child = undefined;
    if (!this.managed || pid === undefined) return;
    await this.terminate(pid);
    rmSync(this.paths.pidFile, { force: true });
  }

  private async waitCri(): Promise<void> {
    const cri = new CriClient(this.endpoint);
    try {
      await cri.waitReady(this.opts.startTimeoutMs ?? 30_000);
    } finally {
      cri.close();
    }
  }

  private async launch(): Promise<void> {
    const logFd = openSync(this.paths.log, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.opts.containerdBin ?? 'containerd', ['--config', this.paths.config], {
        // Own session and process group: a signal to the agent's group (Ctrl-C, kill -9 of a
        // service's cgroup leader) must not reach containerd.
        detached: true,
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, PATH: `${process.env.PATH ?? ''}:${SYSTEM_PATH}` },
      });
    } finally {
      closeSync(logFd);
    }
    // The agent may exit while containerd runs on; don't keep the event loop alive for it.
    child.unref();
    const pid = child.pid;
    const spawnError = new Promise<never>((_, reject) => child.once('error', (err) => {
      reject(new Error(`cannot run ${this.opts.containerdBin ?? 'containerd'} (Debian package containerd): ${err.message}`));
    }));
    spawnError.catch(() => undefined);
    if (pid === undefined) await spawnError;
    this.child = child;
    this.currentPid = pid;
    this.startedAt = Date.now();
    writeFileSync(this.paths.pidFile, `${pid}\n`);
    this.log.info({ pid, socket: this.paths.socket }, 'containerd started');
    const exited = new Promise<never>((_, reject) => child.once('exit', (code, signal) => {
      reject(new Error(`containerd exited during start (code ${code}, signal ${signal}); last log lines:\n${tail(this.paths.log, 15)}`));
    }));
    exited.catch(() => undefined);
    child.once('exit', (code, signal) => this.onExit(child, code, signal));
    await Promise.race([this.waitCri(), exited, spawnError]);
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping || this.child !== child) return;
    this.log.warn({ code, signal }, 'containerd exited');
    this.child = undefined;
    this.currentPid = undefined;
    this.scheduleRestart();
  }

  /** An adopted containerd is not our child: no exit event, so poll for it. */
  private watchAdopted(): void {
    this.timer = setInterval(() => {
      if (this.stopping || this.currentPid === undefined || alive(this.currentPid)) return;
      clearInterval(this.timer);
      this.log.warn({ pid: this.currentPid }, 'adopted containerd is gone');
      this.currentPid = undefined;
      this.scheduleRestart();
    }, ADOPTED_POLL_MS);
    this.timer.unref();
  }

  private scheduleRestart(): void {
    if (this.startedAt && Date.now() - this.startedAt > STABLE_MS) this.restartDelay = RESTART_MIN_MS;
    const delay = this.restartDelay;
    this.restartDelay = Math.min(this.restartDelay * 2, RESTART_MAX_MS);
    this.log.info({ delayMs: delay }, 'restarting containerd');
    this.restartPending = true;
    this.timer = setTimeout(() => {
      this.restartPending = false;
      if (this.stopping) return;
      this.restarting = this.launch().catch((err) => {
        this.log.error({ err: (err as Error).message }, 'containerd restart failed');
        // A containerd that died during start has already scheduled the next try (onExit); one that
        // could not even be spawned has not. One that is alive but slow is left to finish starting.
        if (!this.stopping && this.currentPid === undefined && !this.restartPending) this.scheduleRestart();
      }).finally(() => { this.restarting = undefined; });
    }, delay);
    this.timer.unref();
  }

  private async terminate(pid: number): Promise<void> {
    const signal = (s: NodeJS.Signals) => { try { process.kill(pid, s); } catch { /* already gone */ } };
    signal('SIGTERM');
    const until = Date.now() + STOP_GRACE_MS;
    while (alive(pid) && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    if (alive(pid)) {
      this.log.warn({ pid }, 'containerd ignored SIGTERM; killing it');
      signal('SIGKILL');
      while (alive(pid)) await new Promise((r) => setTimeout(r, 20));
    }
  }
}
