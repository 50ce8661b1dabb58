// Shared by the fleet end-to-end tests (fleet.test.ts, fleet-bundles.test.ts): the skiff CLI, logged
// child processes, a manager's fleet token and Cluster objects, and a git smart-HTTP server (git's
// own `git-http-backend`, run as CGI from a small Node HTTP server on loopback) for GitRepos.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { REPO_ROOT, type TestServer } from './cluster.js';

export const SKIFF = join(REPO_ROOT, 'bin', 'skiff');
export const GIT_HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';

/** Runs the skiff CLI; throws with its stderr when it fails. */
export function skiff(args: string[]): string {
  const r = spawnSync(SKIFF, args, { encoding: 'utf8', timeout: 60_000 });
  if (r.status !== 0) throw new Error(`skiff ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
  return r.stdout;
}

/** A skiff child process with its output appended to `log` (and no SKIFF_* from the test's environment). */
export function spawnLogged(args: string[], log: string): ChildProcess {
  const fd = openSync(log, 'a');
  try {
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SKIFF_')));
    return spawn(SKIFF, args, { stdio: ['ignore', fd, fd], env: { ...env, SKIFF_DISABLE_KUBE_PROXY: 'true', SKIFF_RESOLV_CONF: '/dev/null' } });
  } finally { closeSync(fd); }
}

export function tail(file: string, lines = 30): string {
  try { return `--- ${file}\n` + readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'); } catch { return `(no ${file})`; }
}

export const readyOf = (c: any): string | undefined => c?.status?.conditions?.find((x: any) => x.type === 'Ready')?.status;

/** A new registration token from the manager (checked for its shape). */
export function fleetToken(manager: TestServer): string {
  const token = skiff(['fleet', 'token', '--kubeconfig', manager.kubeconfigPath]).trim();
  if (!/^K10[0-9a-f]{64}::fleet-[0-9a-f]+:[0-9a-f]+$/.test(token)) throw new Error(`unexpected fleet token ${token}`);
  return token;
}

/** `skiff server` flags that make a site of `manager`. */
export function siteFlags(manager: TestServer, token: string, name: string, labels: Record<string, string>, heartbeatSeconds = 2): string[] {
  return ['--fleet-server', manager.url, '--fleet-token', token, '--cluster-name', name,
    ...Object.entries(labels).flatMap(([k, v]) => ['--cluster-label', `${k}=${v}`]), '--fleet-heartbeat-interval', String(heartbeatSeconds)];
}

export async function getJson(server: TestServer, args: string[]): Promise<any> {
  const r = await server.kubectl(['get', ...args, '-o', 'json']);
  return r.code === 0 ? JSON.parse(r.stdout) : undefined;
}

export const clusterJson = (manager: TestServer, name: string) => getJson(manager, ['cluster', name]);

// ---- git over smart HTTP ----

export interface GitServer {
  /** `http://127.0.0.1:<port>/<name>.git` */
  url(name: string): string;
  stop(): Promise<void>;
}

/** Serves the bare repositories under `root` over git's smart HTTP protocol (read and push), as CGI. */
export async function startGitServer(root: string): Promise<GitServer> {
  if (!existsSync(GIT_HTTP_BACKEND)) throw new Error(`${GIT_HTTP_BACKEND} is missing (Debian package git)`);
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://x');
    const cgi = spawn(GIT_HTTP_BACKEND, [], {
      env: {
        GIT_PROJECT_ROOT: root, GIT_HTTP_EXPORT_ALL: '1', REQUEST_METHOD: req.method ?? 'GET', PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.slice(1), CONTENT_TYPE: String(req.headers['content-type'] ?? ''), REMOTE_ADDR: '127.0.0.1', REMOTE_USER: 'test',
        ...(req.headers['content-length'] ? { CONTENT_LENGTH: String(req.headers['content-length']) } : {}),
        ...(req.headers['git-protocol'] ? { GIT_PROTOCOL: String(req.headers['git-protocol']) } : {}),
        HTTP_CONTENT_ENCODING: String(req.headers['content-encoding'] ?? ''),
      },
    });
    req.pipe(cgi.stdin);
    let head = Buffer.alloc(0);
    let headersDone = false;
    cgi.stdout.on('data', (chunk: Buffer) => {
      if (headersDone) { res.write(chunk); return; }
      head = Buffer.concat([head, chunk]);
      const end = head.indexOf('\r\n\r\n');
      const endLf = head.indexOf('\n\n');
      const [at, len] = end >= 0 ? [end, 4] : endLf >= 0 ? [endLf, 2] : [-1, 0];
      if (at < 0) return;
      headersDone = true;
      let status = 200;
      for (const line of head.subarray(0, at).toString('latin1').split(/\r?\n/)) {
        const i = line.indexOf(':');
        if (i < 0) continue;
        const [k, v] = [line.slice(0, i).trim(), line.slice(i + 1).trim()];
        if (k.toLowerCase() === 'status') status = Number(v.split(' ')[0]);
        else res.setHeader(k, v);
      }
      res.writeHead(status);
      res.write(head.subarray(at + len));
    });
    cgi.stdout.on('end', () => { if (!headersDone) res.writeHead(502); res.end(); });
    cgi.on('error', () => { res.writeHead(500); res.end(); });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (name) => `http://127.0.0.1:${port}/${name}.git`,
    stop: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** A working copy pushing to a bare repository `<root>/<name>.git` (created). */
export class GitWorkTree {
  readonly dir: string;
  constructor(root: string, name: string) {
    const bare = join(root, `${name}.git`);
    this.dir = join(root, `${name}-work`);
    git(['init', '--bare', '-b', 'main', bare], root);
    mkdirSync(this.dir, { recursive: true });
    git(['init', '-b', 'main'], this.dir);
    git(['remote', 'add', 'origin', bare], this.dir);
  }

  write(files: Record<string, string | null>): this {
    for (const [p, content] of Object.entries(files)) {
      const f = join(this.dir, p);
      if (content === null) { git(['rm', '-q', p], this.dir); continue; }
      mkdirSync(dirname(f), { recursive: true });
      writeFileSync(f, content);
    }
    return this;
  }

  /** Commits everything and pushes main; returns the commit. */
  commit(message: string): string {
    git(['add', '-A'], this.dir);
    git(['-c', 'user.name=skiff test', '-c', 'user.email=test@skiff.invalid', 'commit', '-q', '-m', message], this.dir);
    git(['push', '-q', 'origin', 'main'], this.dir);
    return git(['rev-parse', 'HEAD'], this.dir).trim();
  }
}

function git(args: string[], cwd: string): string {
  const r = spawnSync('git', args, { cwd, encoding: 'utf8', env: { ...process.env, GIT_CONFIG_NOSYSTEM: '1', HOME: cwd } });
  if (r.status !== 0) throw new Error(`git ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}
