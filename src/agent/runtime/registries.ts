// Private registries, configured the k3s way with a `registries.yaml`:
//
//   mirrors:
//     docker.io:
//       endpoint: ["https://mirror.example.com:5000"]
//       rewrite: { "^rancher/(.*)": "mirrored/rancher/$1" }
//   configs:
//     mirror.example.com:5000:
//       auth: { username: u, password: p }
//       tls: { ca_file: /etc/ssl/reg-ca.pem, insecure_skip_verify: false }
//
// Mirrors and TLS become containerd `hosts.toml` files (one directory per registry under containerd's
// `config_path`). containerd 1.6's hosts.toml has no credentials, so `configs.<host>.auth` is handed to
// CRI's PullImage as an AuthConfig when none of the pod's imagePullSecrets matches the image.
// hosts.toml cannot express `rewrite` either (k3s patches its containerd for it): the agent pulls the
// rewritten reference from each endpoint itself (`rewritePulls` here, `rewrite-pull.ts` does the pull),
// so each endpoint of a mirror with rewrites also gets a hosts.toml of its own (scheme and TLS).
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { AuthConfig } from './cri-types.js';
import { normalizeImageRef } from './image-ref.js';

/** k3s's default location; used when present and no `--private-registry` is given. */
// The YAML parser is loaded only when a registries.yaml exists: most nodes have none.
const requireOnDemand = createRequire(import.meta.url);

export const DEFAULT_REGISTRIES_FILE = '/etc/skiff/registries.yaml';

export interface RegistryMirror {
  /** Endpoint URLs tried in order before the registry itself (`https://` when no scheme is written). */
  endpoint: string[];
  /**
   * Repository rewrites for pulls through the endpoints (never the registry itself): Go regexp →
   * replacement with `$1`/`${name}` groups, applied to the repository path (`library/busybox`).
   */
  rewrite?: Record<string, string>;
}

export interface RegistryAuth {
  username?: string;
  password?: string;
  /** base64 of `username:password`. */
  auth?: string;
  identitytoken?: string;
}

export interface RegistryTls {
  ca_file?: string;
  cert_file?: string;
  key_file?: string;
  insecure_skip_verify?: boolean;
}

export interface RegistriesConfig {
  /** Keyed by registry host[:port], or `*` for every registry. */
  mirrors: Record<string, RegistryMirror>;
  /** Keyed by registry or endpoint host[:port]. */
  configs: Record<string, { auth?: RegistryAuth; tls?: RegistryTls }>;
}

function fail(file: string, msg: string): never {
  throw new Error(`${file}: ${msg}`);
}

function isMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function stringFields<T>(file: string, where: string, v: unknown, fields: string[], bools: string[] = []): T {
  if (v === undefined || v === null) return {} as T;
  if (!isMap(v)) fail(file, `${where} must be a map`);
  const out: Record<string, string | boolean> = {};
  for (const [k, val] of Object.entries(v)) {
    if (fields.includes(k)) {
      if (typeof val !== 'string') fail(file, `${where}.${k} must be a string`);
      out[k] = val;
    } else if (bools.includes(k)) {
      if (typeof val !== 'boolean') fail(file, `${where}.${k} must be true or false`);
      out[k] = val;
    } else {
      fail(file, `${where}: unknown field ${JSON.stringify(k)}`);
    }
  }
  return out as T;
}

/** Parses and checks a registries.yaml; `file` only names the source in error messages. */
export function parseRegistries(text: string, file = 'registries.yaml'): RegistriesConfig {
  const { parse: parseYaml } = requireOnDemand('yaml') as typeof import('yaml');
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    fail(file, (err as Error).message);
  }
  const cfg: RegistriesConfig = { mirrors: {}, configs: {} };
  if (doc === null || doc === undefined) return cfg;
  if (!isMap(doc)) fail(file, 'expected a map with mirrors and configs');
  for (const key of Object.keys(doc)) {
    if (key !== 'mirrors' && key !== 'configs') fail(file, `unknown field ${JSON.stringify(key)}`);
  }
  const mirrors = doc.mirrors ?? {};
  if (!isMap(mirrors)) fail(file, 'mirrors must be a map');
  for (const [host, m] of Object.entries(mirrors)) {
    const where = `mirrors.${host}`;
    if (!isMap(m)) fail(file, `${where} must be a map`);
    const endpoint = m.endpoint ?? [];
    if (!Array.isArray(endpoint) || endpoint.some((e) => typeof e !== 'string' || e === '')) fail(file, `${where}.endpoint must be a list of URLs`);
    for (const e of endpoint as string[]) endpointUrl(e, file);
    const mirror: RegistryMirror = { endpoint: endpoint as string[] };
    if (m.rewrite !== undefined) {
      mirror.rewrite = stringFields(file, `${where}.rewrite`, m.rewrite, Object.keys(isMap(m.rewrite) ? m.rewrite : {}));
      for (const re of Object.keys(mirror.rewrite!)) {
        try {
          goRegExp(re);
        } catch {
          fail(file, `${where}.rewrite: invalid regular expression ${JSON.stringify(re)}`);
        }
      }
    }
    cfg.mirrors[host] = mirror;
  }
  const configs = doc.configs ?? {};
  if (!isMap(configs)) fail(file, 'configs must be a map');
  for (const [host, c] of Object.entries(configs)) {
    const where = `configs.${host}`;
    if (!isMap(c)) fail(file, `${where} must be a map`);
    for (const key of Object.keys(c)) if (key !== 'auth' && key !== 'tls') fail(file, `${where}: unknown field ${JSON.stringify(key)}`);
    const entry: RegistriesConfig['configs'][string] = {};
    if (c.auth !== undefined) entry.auth = stringFields(file, `${where}.auth`, c.auth, ['username', 'password', 'auth', 'identitytoken']);
    if (c.tls !== undefined) {
      entry.tls = stringFields(file, `${where}.tls`, c.tls, ['ca_file', 'cert_file', 'key_file'], ['insecure_skip_verify']);
      if (!entry.tls!.cert_file !== !entry.tls!.key_file) fail(file, `${where}.tls: cert_file and key_file go together`);
    }
    cfg.configs[host] = entry;
  }
  return cfg;
}

/**
 * The registries config to use: `file` when given (it must exist), else the default file when present,
 * else none.
 */
export function loadRegistries(file?: string): RegistriesConfig | undefined {
  const path = file ?? (existsSync(DEFAULT_REGISTRIES_FILE) ? DEFAULT_REGISTRIES_FILE : undefined);
  if (!path) return undefined;
  return parseRegistries(readFileSync(path, 'utf8'), path);
}

function endpointUrl(endpoint: string, file = 'registries.yaml'): URL {
  try {
    return new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `https://${endpoint}`);
  } catch {
    fail(file, `invalid endpoint URL ${JSON.stringify(endpoint)}`);
  }
}

/** Docker Hub's name in image references, and the host that actually serves it. */
const DOCKER_HUB = 'docker.io';
const DOCKER_HUB_SERVER = 'https://registry-1.docker.io';

const q = (s: string): string => JSON.stringify(s);   // a TOML basic string uses JSON's escapes

/** TLS keys of a hosts.toml host section (or of its top level, which describes `server`). */
function tlsLines(tls: RegistryTls | undefined, indent: string): string[] {
  if (!tls) return [];
  const lines: string[] = [];
  if (tls.ca_file) lines.push(`${indent}ca = ${q(tls.ca_file)}`);
  if (tls.cert_file && tls.key_file) lines.push(`${indent}client = [[${q(tls.cert_file)}, ${q(tls.key_file)}]]`);
  if (tls.insecure_skip_verify) lines.push(`${indent}skip_verify = true`);
  return lines;
}

/** The hosts.toml for one registry (`*` renders the fallback every registry without its own file uses). */
export function renderHostsToml(registry: string, cfg: RegistriesConfig): string {
  const lines = ['# Written by skiff from registries.yaml at every agent start; edits are overwritten.'];
  if (registry !== '*') {
    const server = registry === DOCKER_HUB ? DOCKER_HUB_SERVER : `${rewriteEndpointSchemes(cfg).get(registry) ?? 'https:'}//${registry}`;
    lines.push(`server = ${q(server)}`, ...tlsLines(cfg.configs[registry]?.tls, ''));
  }
  for (const e of cfg.mirrors[registry]?.endpoint ?? []) {
    const u = endpointUrl(e);
    // A path in the endpoint is the API root's prefix; containerd wants it to end in /v2.
    const path = u.pathname.replace(/\/+$/, '');
    const url = `${u.protocol}//${u.host}${path === '' ? '' : path.endsWith('/v2') ? path : `${path}/v2`}`;
    lines.push('', `[host.${q(url)}]`, '  capabilities = ["pull", "resolve"]', ...tlsLines(cfg.configs[u.host]?.tls, '  '));
  }
  // containerd 1.6 rejects a hosts.toml without a `host` table ("invalid `host` tree") and then ignores
  // the whole file, TLS settings included (and speaks plain HTTP to localhost): an empty table is enough.
  if (!cfg.mirrors[registry]?.endpoint.length) lines.push('', '[host]');
  return lines.join('\n') + '\n';
}

/** An endpoint whose API lives under a path (`https://host/prefix/v2/`) cannot be named in an image reference. */
function hasPathPrefix(u: URL): boolean {
  return u.pathname.replace(/\/+$/, '').replace(/\/v2$/, '') !== '';
}

/**
 * The endpoint hosts of mirrors with rewrites, with their scheme: the agent pulls from them by name
 * (`host/rewritten:tag`), so containerd must know whether to speak plain HTTP to them.
 */
function rewriteEndpointSchemes(cfg: RegistriesConfig): Map<string, string> {
  const schemes = new Map<string, string>();
  for (const m of Object.values(cfg.mirrors)) {
    if (!m.rewrite || !Object.keys(m.rewrite).length) continue;
    for (const e of m.endpoint) {
      const u = endpointUrl(e);
      if (!hasPathPrefix(u) && !schemes.has(u.host)) schemes.set(u.host, u.protocol);
    }
  }
  return schemes;
}

/**
 * Replaces `dir`'s contents with one `<host>/hosts.toml` per registry that has a mirror or TLS settings
 * (`_default/` for the `*` mirror). Returns the registries written.
 */
export function writeRegistryHosts(dir: string, cfg: RegistriesConfig): string[] {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const registries = new Set([
    ...Object.keys(cfg.mirrors), ...Object.keys(cfg.configs).filter((h) => cfg.configs[h]!.tls && h !== '*'), ...rewriteEndpointSchemes(cfg).keys(),
  ]);
  for (const registry of registries) {
    // containerd looks for `<host[:port]>/hosts.toml`, then `_default/hosts.toml`.
    const sub = join(dir, registry === '*' ? '_default' : registry);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, 'hosts.toml'), renderHostsToml(registry, cfg));
  }
  return [...registries];
}

function authConfig(host: string, a: RegistryAuth): AuthConfig {
  return {
    // containerd compares the URL's host with the host it is about to call.
    serverAddress: `https://${host}`,
    ...(a.username !== undefined ? { username: a.username, password: a.password ?? '' } : {}),
    ...(a.auth ? { auth: a.auth } : {}),
    ...(a.identitytoken ? { identityToken: a.identitytoken } : {}),
  };
}

/**
 * Credentials from `configs` for pulling `image`: one AuthConfig per host the pull may reach that has
 * an auth entry (the mirror endpoints in order, then the registry itself). Each names its host in
 * serverAddress, as containerd then sends it to that host only; the caller tries them in turn.
 */
export function configCredentials(cfg: RegistriesConfig | undefined, image: string): AuthConfig[] {
  if (!cfg) return [];
  const registry = normalizeImageRef(image).split('/')[0]!;
  const mirror = cfg.mirrors[registry] ?? cfg.mirrors['*'];
  const hosts = [...(mirror?.endpoint ?? []).map((e) => endpointUrl(e).host), registry === DOCKER_HUB ? 'registry-1.docker.io' : registry];
  const auths: AuthConfig[] = [];
  for (const host of new Set(hosts)) {
    const a = cfg.configs[host]?.auth ?? (host === 'registry-1.docker.io' ? cfg.configs[DOCKER_HUB]?.auth : undefined);
    if (a) auths.push(authConfig(host, a));
  }
  return auths;
}

/**
 * A Go regexp (RE2 syntax, which k3s's rewrites are written in) as a JS RegExp: `(?P<name>` becomes
 * `(?<name>` and leading inline flags (`(?i)`, `(?s)`, `(?m)`) become flags; the rest of the common
 * syntax means the same in both.
 */
export function goRegExp(pattern: string, flags = ''): RegExp {
  let body = pattern.replace(/\(\?P</g, '(?<');
  const lead = /^\(\?([ims]+)\)/.exec(body);
  if (lead) {
    body = body.slice(lead[0].length);
    flags += [...new Set(lead[1])].join('');
  }
  return new RegExp(body, flags);
}

/**
 * Go's Regexp.Expand: `$1`, `${1}`, `$name`, `${name}` take a group (empty when absent; a name is the
 * longest run of letters, digits and `_`, so `$1x` is the group named `1x`), `$$` is a dollar, and a
 * malformed `$` stays as it is.
 */
function expandGo(template: string, groups: (string | undefined)[], named: Record<string, string | undefined> | undefined): string {
  return template.replace(/\$(?:\$|\{([A-Za-z0-9_]+)\}|([A-Za-z0-9_]+))?/g, (all, braced?: string, bare?: string) => {
    if (all === '$$') return '$';
    const name = braced ?? bare;
    if (name === undefined) return '$';
    return (/^[0-9]+$/.test(name) ? groups[Number(name)] : named?.[name]) ?? '';
  });
}

/**
 * The repository path under a mirror's rewrites: the first rule (in file order) whose expression
 * matches replaces every match, as Go's ReplaceAllString; no match leaves it unchanged.
 */
export function rewriteRepository(rules: Record<string, string> | undefined, repository: string): string {
  for (const [pattern, replacement] of Object.entries(rules ?? {})) {
    const re = goRegExp(pattern, 'g');
    if (!re.test(repository)) continue;
    re.lastIndex = 0;
    let previousEnd = -1;
    return repository.replace(re, (...args: unknown[]) => {
      const named = typeof args[args.length - 1] === 'object' ? args.pop() as Record<string, string | undefined> : undefined;
      // args: the match, its groups, then offset and input.
      const match = args[0] as string;
      const offset = args[args.length - 2] as number;
      // Go skips an empty match right after the previous match (`(.*)` matches `app` once, not twice).
      if (match === '' && offset === previousEnd) return '';
      previousEnd = offset + match.length;
      return expandGo(replacement, args.slice(0, -2) as (string | undefined)[], named);
    });
  }
  return repository;
}

/** One pull the agent makes itself: `ref` (on an endpoint, rewritten) in place of the image. */
export interface RewritePull {
  ref: string;
  /** The endpoint's credentials from `configs`, if any. */
  auth?: AuthConfig;
}

/**
 * The rewritten pulls for `image`, one per endpoint of its registry's mirror in order, when a rewrite
 * rule changes its repository; none otherwise (containerd's hosts.toml then does everything). Endpoints
 * with a path prefix are left to hosts.toml (unrewritten).
 */
export function rewritePulls(cfg: RegistriesConfig | undefined, image: string): RewritePull[] {
  if (!cfg) return [];
  const name = normalizeImageRef(image);
  const slash = name.indexOf('/');
  const registry = name.slice(0, slash);
  const mirror = cfg.mirrors[registry] ?? cfg.mirrors['*'];
  if (!mirror?.rewrite) return [];
  // The repository ends where the tag or digest begins (a port only appears before the first slash).
  const rest = name.slice(slash + 1);
  const end = rest.search(/[:@]/);
  const repository = end < 0 ? rest : rest.slice(0, end);
  const rewritten = rewriteRepository(mirror.rewrite, repository);
  if (rewritten === repository) return [];
  const pulls: RewritePull[] = [];
  for (const e of mirror.endpoint) {
    const u = endpointUrl(e);
    if (hasPathPrefix(u)) continue;
    const auth = cfg.configs[u.host]?.auth;
    pulls.push({ ref: `${u.host}/${rewritten}${end < 0 ? '' : rest.slice(end)}`, ...(auth ? { auth: authConfig(u.host, auth) } : {}) });
  }
  return pulls;
}

/*
 * The registries config of each agent in this process, by data dir: the pod workers reach it through
 * their data dir, so it needs no plumbing through the pod manager.
 */
const active = new Map<string, RegistriesConfig>();

/** Makes `cfg` the registries config of the agent on `dataDir` (undefined: none). */
export function useRegistries(dataDir: string, cfg: RegistriesConfig | undefined): void {
  if (cfg) active.set(dataDir, cfg);
  else active.delete(dataDir);
}

/** `configCredentials` for the agent on `dataDir`. */
export function registryCredentials(dataDir: string, image: string): AuthConfig[] {
  return configCredentials(active.get(dataDir), image);
}

/** `rewritePulls` for the agent on `dataDir`. */
export function registryRewritePulls(dataDir: string, image: string): RewritePull[] {
  return rewritePulls(active.get(dataDir), image);
}
