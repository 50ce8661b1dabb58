import { Command } from 'commander';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, join } from 'node:path';
import { shellQuote, SshSession, type SshTarget } from './ssh-session.js';

// `skiff up` / `skiff down` (k3sup's install/join and uninstall): install a release on hosts over SSH
// (ssh2; the target needs no internet: the tarball is copied over SFTP and install.sh runs there), a
// server or, with --server/--token, an agent; fetch the server's kubeconfig and merge it into the
// caller's. A plan file installs many hosts: servers first (the first one's URL and token join the
// rest), then agents in parallel, with progress per host; one failing host leaves the others done.

interface HostSpec extends SshTarget { role: 'server' | 'agent'; env: Record<string, string>; exec?: string }
interface UpOptions {
  release: string; version?: string; localPath: string; merge: boolean; context: string;
  server?: string; token?: string;
}
interface HostResult { host: string; ok: boolean; detail: string; url?: string; token?: string }

const DEBIAN_ARCH: Record<string, string> = { x86_64: 'amd64', amd64: 'amd64', aarch64: 'arm64', arm64: 'arm64' };

function envPairs(list: string[] = []): Record<string, string> {
  const out: Record<string, string> = {};
  for (const kv of list) {
    const i = kv.indexOf('=');
    if (i <= 0) throw new Error(`--env ${kv}: expected NAME=value`);
    out[kv.slice(0, i)] = kv.slice(i + 1);
  }
  return out;
}

/** The release files for a host's architecture: the tarball, its SHA256SUMS line, install.sh. */
function releaseFiles(dir: string, arch: string, version?: string): { tarball: string; sums: string; installer: string } {
  if (!existsSync(join(dir, 'install.sh')) || !existsSync(join(dir, 'SHA256SUMS'))) throw new Error(`${dir} holds no release (install.sh, SHA256SUMS): run npm run release, or pass --release DIR`);
  const re = new RegExp(`^skiff-(.+)-linux-${arch}\\.tar\\.gz$`);
  const found = readdirSync(dir).filter((f) => re.test(f) && (!version || f === `skiff-${version}-linux-${arch}.tar.gz`));
  if (found.length !== 1) throw new Error(`${found.length ? 'several' : 'no'} skiff release tarballs for linux-${arch}${version ? ` version ${version}` : ''} in ${dir}${found.length ? ': name one with --version' : ''}`);
  const line = readFileSync(join(dir, 'SHA256SUMS'), 'utf8').split('\n').find((l) => l.endsWith(`  ${found[0]}`));
  if (!line) throw new Error(`${dir}/SHA256SUMS lists no checksum for ${found[0]}`);
  return { tarball: join(dir, found[0]!), sums: line + '\n', installer: join(dir, 'install.sh') };
}

async function installHost(h: HostSpec, o: UpOptions, join_: { url?: string; token?: string }, say: (l: string) => void): Promise<HostResult> {
  let s: SshSession | undefined;
  try {
    say(`connecting to ${h.user}@${h.host}:${h.port}`);
    s = await SshSession.connect(h);
    const probe = await s.exec('uname -m && mktemp -d /tmp/skiff-up.XXXXXX');
    if (probe.code !== 0) throw new Error(`uname/mktemp failed: ${probe.stderr.trim()}`);
    const [machine, dir] = probe.stdout.trim().split('\n');
    const arch = DEBIAN_ARCH[machine!] ?? machine!;
    const files = releaseFiles(o.release, arch, o.version);
    say(`copying ${basename(files.tarball)} to ${dir}`);
    const tmpSums = join(dir!, 'SHA256SUMS');
    await s.put(files.tarball, join(dir!, basename(files.tarball)));
    await s.put(files.installer, join(dir!, 'install.sh'), 0o755);
    const sumsWrite = await s.exec(`printf %s ${shellQuote(files.sums)} > ${shellQuote(tmpSums)}`);
    if (sumsWrite.code !== 0) throw new Error(`writing ${tmpSums}: ${sumsWrite.stderr.trim()}`);
    const env: Record<string, string> = { ...h.env };
    if (h.exec) env.INSTALL_SKIFF_EXEC = h.exec;
    if (h.role === 'agent') {
      if (!join_.url || !join_.token) throw new Error('an agent needs --server and --token (or a server earlier in the plan)');
      env.SKIFF_URL = join_.url; env.SKIFF_TOKEN = join_.token;
    }
    const envWords = Object.entries(env).map(([k, v]) => shellQuote(`${k}=${v}`)).join(' ');
    const sudo = h.user === 'root' ? '' : 'sudo ';
    say(`running install.sh (${h.role})`);
    const r = await s.exec(`cd ${shellQuote(dir!)} && ${sudo}env ${envWords} bash ./install.sh; code=$?; rm -rf ${shellQuote(dir!)}; exit $code`, (l) => say(l));
    if (r.code !== 0) throw new Error(`install.sh exited with code ${r.code}: ${(r.stderr.trim().split('\n').pop() ?? '').replace(/^\[ERROR\]\s*/, '')}`);
    if (h.role === 'agent') return { host: h.host, ok: true, detail: 'agent installed' };

    const token = r.stderr.match(/join token: (K10\S+)/)?.[1];
    const remoteKc = r.stdout.match(/^KUBECONFIG=(\S+)$/m)?.[1];
    if (!remoteKc) throw new Error('install.sh printed no kubeconfig path');
    const port = env.SKIFF_HTTPS_LISTEN_PORT ?? '6443';
    const url = `https://${h.host.includes(':') ? `[${h.host}]` : h.host}:${port}`;
    // Loaded here: `skiff` starts every server and agent, which never merge kubeconfigs (yaml stays out).
    const { mergeKubeconfig, renameKubeconfig } = await import('./kubeconfig-merge.js');
    const kc = renameKubeconfig(await s.read(remoteKc), o.context, url);
    const existing = o.merge && existsSync(o.localPath) ? readFileSync(o.localPath, 'utf8') : undefined;
    writeFileSync(o.localPath, mergeKubeconfig(existing, kc), { mode: 0o600 });
    say(`kubeconfig ${o.merge ? 'merged into' : 'written to'} ${o.localPath} as context ${o.context}`);
    return { host: h.host, ok: true, detail: `server installed: ${url}`, url, token };
  } catch (e) {
    return { host: h.host, ok: false, detail: e instanceof Error ? e.message : String(e) };
  } finally {
    s?.close();
  }
}

interface PlanFile { hosts?: { host: string; user?: string; sshKey?: string; port?: number; role?: string; exec?: string; env?: Record<string, string> }[] }

/** `--ssh-known-hosts` (strict) or, without it, no check, with a warning unless explicitly asked for. */
function hostKeyPolicy(o: Record<string, any>): string | undefined {
  if (o.sshKnownHosts && o.sshInsecureIgnoreHostKey) throw new Error('--ssh-known-hosts and --ssh-insecure-ignore-host-key exclude each other');
  if (!o.sshKnownHosts && !o.sshInsecureIgnoreHostKey) {
    process.stderr.write('warning: host keys are not checked (as k3sup does); pass --ssh-known-hosts FILE to check them, or --ssh-insecure-ignore-host-key to say so\n');
  }
  return o.sshKnownHosts || undefined;
}

async function readPlan(file: string, defaults: { user: string; keyFile: string; port: number; env: Record<string, string>; knownHosts?: string }): Promise<HostSpec[]> {
  const { parse } = await import('yaml');
  const plan = parse(readFileSync(file, 'utf8')) as PlanFile | null;
  if (!plan?.hosts?.length) throw new Error(`${file}: expected "hosts:" with at least one host`);
  return plan.hosts.map((h, i) => {
    if (!h.host) throw new Error(`${file}: hosts[${i}] has no host`);
    const role = h.role ?? 'agent';
    if (role !== 'server' && role !== 'agent') throw new Error(`${file}: hosts[${i}].role must be server or agent`);
    return { host: h.host, user: h.user ?? defaults.user, keyFile: h.sshKey ?? defaults.keyFile, port: h.port ?? defaults.port, role, exec: h.exec,
      env: { ...defaults.env, ...(h.env ?? {}) }, knownHosts: defaults.knownHosts };
  });
}

export function upCommand(): Command {
  return new Command('up')
    .description('install skiff on hosts over SSH (a server, or an agent with --server/--token; many with --plan) and merge the kubeconfig')
    .option('--host <host>', 'the host to install')
    .option('--user <user>', 'SSH user (not root: install.sh runs with sudo)', 'root')
    .option('--ssh-key <file>', 'private key', join(homedir(), '.ssh', 'id_rsa'))
    .option('--port <port>', 'SSH port', '22')
    .option('--ssh-known-hosts <file>', 'check host keys against this OpenSSH known_hosts file (strict: an unlisted or different key fails the host)')
    .option('--ssh-insecure-ignore-host-key', 'accept any host key (the default without --ssh-known-hosts, as k3sup; this says so explicitly)', false)
    .option('--server <url>', 'install an agent joining this server')
    .option('--token <token>', 'the join token of --server')
    .option('--exec <flags>', 'INSTALL_SKIFF_EXEC for install.sh (e.g. "server --disable-agent")')
    .option('--env <NAME=value...>', 'more environment for install.sh (INSTALL_SKIFF_*, SKIFF_*)')
    .option('--plan <file>', 'YAML: hosts: [{host, role: server|agent, user, sshKey, port, exec, env}]')
    .option('--release <dir>', 'directory with install.sh, SHA256SUMS and the tarballs', 'dist/release')
    .option('--release-version <version>', 'release version, when the directory holds several')
    .option('--local-path <file>', 'kubeconfig to write', 'kubeconfig')
    .option('--merge', 'merge into --local-path instead of overwriting it', false)
    .option('--context <name>', 'name of the cluster, user and context in the kubeconfig', 'default')
    .action(async (o: Record<string, any>) => {
      const env = envPairs(o.env);
      const defaults = { user: o.user, keyFile: o.sshKey, port: Number(o.port), env, knownHosts: hostKeyPolicy(o) };
      let hosts: HostSpec[];
      if (o.plan) hosts = await readPlan(o.plan, defaults);
      else if (o.host) hosts = [{ host: o.host, ...defaults, role: o.server ? 'agent' : 'server', exec: o.exec }];
      else throw new Error('skiff up: --host or --plan is required');
      const opts: UpOptions = { release: o.release, version: o.releaseVersion, localPath: o.localPath, merge: o.merge, context: o.context, server: o.server, token: o.token };
      const joinInfo: { url?: string; token?: string } = { url: o.server, token: o.token };
      const results: HostResult[] = [];
      const run = async (h: HostSpec) => {
        const t0 = performance.now();
        const r = await installHost(h, opts, joinInfo, (l) => process.stderr.write(`[${h.host}] ${l}\n`));
        process.stderr.write(`[${h.host}] ${r.ok ? 'done' : 'FAILED'} in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${r.detail}\n`);
        results.push(r);
        return r;
      };
      // Servers one after the other (the first one's URL and token join the others), agents in parallel.
      for (const h of hosts.filter((x) => x.role === 'server')) {
        const r = await run(h);
        if (r.ok && !joinInfo.url) { joinInfo.url = r.url; joinInfo.token = r.token; }
      }
      await Promise.all(hosts.filter((x) => x.role === 'agent').map(run));
      const failed = results.filter((r) => !r.ok);
      for (const r of results) process.stdout.write(`${r.host}\t${r.ok ? 'ok' : 'failed'}\t${r.detail}\n`);
      const first = results.find((r) => r.token);
      if (first) process.stdout.write(`join token: ${first.token}\nkubectl --kubeconfig ${o.localPath} --context ${o.context} get nodes\n`);
      process.exitCode = failed.length ? 1 : 0;
    });
}

export function downCommand(): Command {
  return new Command('down')
    .description('uninstall skiff from a host over SSH (runs its skiff-uninstall.sh)')
    .requiredOption('--host <host>', 'the host')
    .option('--user <user>', 'SSH user', 'root')
    .option('--ssh-key <file>', 'private key', join(homedir(), '.ssh', 'id_rsa'))
    .option('--port <port>', 'SSH port', '22')
    .option('--ssh-known-hosts <file>', 'check host keys against this OpenSSH known_hosts file (strict: an unlisted or different key fails the host)')
    .option('--ssh-insecure-ignore-host-key', 'accept any host key (the default without --ssh-known-hosts, as k3sup; this says so explicitly)', false)
    .option('--bin-dir <dir>', 'where install.sh put skiff-uninstall.sh', '/usr/local/bin')
    .option('--keep-data', 'keep the datastore', false)
    .action(async (o: Record<string, any>) => {
      const s = await SshSession.connect({ host: o.host, user: o.user, keyFile: o.sshKey, port: Number(o.port), knownHosts: hostKeyPolicy(o) });
      try {
        const sudo = o.user === 'root' ? '' : 'sudo ';
        const r = await s.exec(`${sudo}${shellQuote(join(o.binDir, 'skiff-uninstall.sh'))}${o.keepData ? ' --keep-data' : ''}`, (l) => process.stderr.write(`[${o.host}] ${l}\n`));
        if (r.code !== 0) throw new Error(`skiff-uninstall.sh on ${o.host} exited with code ${r.code}`);
      } finally { s.close(); }
    });
}
