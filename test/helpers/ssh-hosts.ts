// Test hosts reachable over SSH, for `skiff up`/`skiff down`: each host is a network namespace
// (netns-host.ts) running Debian's sshd with key auth, its host key and config in a temp dir, listening
// on the host's address. The remote installs run on this machine's filesystem, so every install path
// goes into the temp dir (`env(h)`, passed over SSH) and nothing touches /usr/local or /etc.
// Shared by test/e2e/install-ssh.test.ts and bench/install-ssh.ts. Needs root, sshd, iproute2,
// containerd; `tearDown` removes everything `setUp` and the installs created, also after a failure.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHostNetwork, netnsAgentRequirements, removeHostNetwork, type NetnsHost } from './netns-host.js';
import { teardownRuntime } from '../../src/agent/runtime/teardown.js';

// Not imported from cluster.ts, whose node:test hooks would make a benchmark print TAP.
export const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const skiffBin = (): string => join(REPO_ROOT, 'bin', 'skiff');

/** Whether bin/skiff can run (it runs from dist/, written by `npm run build`). */
export const skiffBuilt = (): boolean => existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js'));

/** What these hosts need of this machine (empty when all is there). */
export function sshHostsRequirements(): string[] {
  const missing = netnsAgentRequirements();
  for (const bin of ['/usr/sbin/sshd', '/usr/bin/ssh-keygen', '/usr/bin/kubectl']) if (!existsSync(bin)) missing.push(bin);
  return missing;
}

export class SshHosts {
  /** The temp dir holding everything (set by `setUp`). */
  dir = '';
  private createdRunSshd = false;

  /** `tmpPrefix`: the temp dir's name before mkdtemp's suffix, e.g. `/tmp/skup123.`. */
  constructor(readonly hosts: NetnsHost[], private readonly tmpPrefix: string) {}

  /** The key in every host's authorized_keys. */
  get key(): string { return join(this.dir, 'id'); }
  /** A key in no authorized_keys. */
  get wrongKey(): string { return join(this.dir, 'wrong_id'); }
  /** The release directory (`skiff up --release`). */
  get release(): string { return join(this.dir, 'rel'); }
  /** Where the host's install puts its programs (`skiff down --bin-dir`). */
  binDir(h: NetnsHost): string { return join(this.dir, h.name, 'usr', 'bin'); }
  /** The host's data dir. */
  dataDir(h: NetnsHost): string { return join(this.dir, h.name, 'd'); }

  /** The env a host's install gets over SSH: its own paths under the temp dir. */
  env(h: NetnsHost): Record<string, string> {
    const d = join(this.dir, h.name);
    return {
      INSTALL_SKIFF_PREFIX: join(d, 'usr'), INSTALL_SKIFF_SYSTEMD_DIR: join(d, 'systemd'), INSTALL_SKIFF_OPENRC_DIR: join(d, 'init.d'),
      INSTALL_SKIFF_CONFIG_DIR: join(d, 'etc'), INSTALL_SKIFF_DATA_DIR: join(d, 'd'), INSTALL_SKIFF_RUN_DIR: join(d, 'run'), INSTALL_SKIFF_LOG_DIR: join(d, 'log'),
      INSTALL_SKIFF_INIT: 'none', SKIFF_NODE_NAME: h.name,
    };
  }

  /** Runs a command in the host's network namespace (only: `ip netns exec` would hide the cgroup mounts). */
  inHost(h: NetnsHost, cmd: string[]): SpawnSyncReturns<string> {
    return spawnSync('nsenter', [`--net=/var/run/netns/${h.netns}`, ...cmd], { encoding: 'utf8', timeout: 300_000 });
  }

  /** The last lines of the host's installed service log (`skiff.log` or `skiff-agent.log`). */
  logTail(h: NetnsHost, role: 'server' | 'agent', lines = 15): string {
    try {
      return `--- ${h.name}\n${readFileSync(join(this.dir, h.name, 'log', role === 'server' ? 'skiff.log' : 'skiff-agent.log'), 'utf8').split('\n').slice(-lines).join('\n')}`;
    } catch { return ''; }
  }

  /** The temp dir, a release in it, the keys, then each host's network and sshd. */
  setUp(): void {
    this.dir = mkdtempSync(this.tmpPrefix);
    chmodSync(this.dir, 0o755);
    const r = spawnSync('node', [join(REPO_ROOT, 'scripts', 'release.mjs'), '--out', this.release], { encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0) throw new Error(`release: ${r.stderr}`);
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', this.key]);
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', this.wrongKey]);
    writeFileSync(join(this.dir, 'authorized_keys'), readFileSync(`${this.key}.pub`));
    // sshd refuses to start without its privilege-separation dir.
    if (!existsSync('/run/sshd')) { mkdirSync('/run/sshd', { mode: 0o755 }); this.createdRunSshd = true; }
    for (const h of this.hosts) { createHostNetwork(h); this.startSshd(h); }
  }

  private startSshd(h: NetnsHost): void {
    const d = join(this.dir, `sshd-${h.name}`);
    mkdirSync(d);
    spawnSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(d, 'host_key')]);
    writeFileSync(join(d, 'sshd_config'), [
      `ListenAddress ${h.ip}`, 'Port 22', `HostKey ${join(d, 'host_key')}`, `PidFile ${join(d, 'sshd.pid')}`,
      `AuthorizedKeysFile ${join(this.dir, 'authorized_keys')}`, 'PermitRootLogin prohibit-password', 'PasswordAuthentication no',
      'KbdInteractiveAuthentication no', 'UsePAM no', 'StrictModes no', 'Subsystem sftp internal-sftp', 'LogLevel INFO',
    ].join('\n') + '\n');
    const r = this.inHost(h, ['/usr/sbin/sshd', '-f', join(d, 'sshd_config'), '-E', join(d, 'sshd.log')]);
    if (r.status !== 0) throw new Error(`sshd: ${r.stderr}`);
  }

  /**
   * Uninstalls what is still installed, stops sshd, containers and containerd of each host's data dir,
   * kills any process still running from the temp dir, removes the networks and the temp dir.
   */
  async tearDown(): Promise<void> {
    if (!this.dir) return;
    const T = this.dir;
    for (const h of this.hosts) {
      const un = join(this.binDir(h), 'skiff-uninstall.sh');
      if (existsSync(un)) this.inHost(h, [un]);
      const pidFile = join(T, `sshd-${h.name}`, 'sshd.pid');
      if (existsSync(pidFile)) { try { process.kill(Number(readFileSync(pidFile, 'utf8')), 'SIGTERM'); } catch { /* gone */ } }
      await teardownRuntime({ dataDir: this.dataDir(h), cgroupParents: ['/kubepods'] }).catch(() => undefined);
    }
    for (const p of readdirSync('/proc')) {
      if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
      try { if (readFileSync(`/proc/${p}/cmdline`, 'utf8').includes(T)) process.kill(Number(p), 'SIGKILL'); } catch { /* gone */ }
    }
    for (const h of this.hosts) removeHostNetwork(h);
    if (this.createdRunSshd) { try { rmdirSync('/run/sshd'); } catch { /* in use */ } }
    rmSync(T, { recursive: true, force: true });
    this.dir = '';
  }
}
