// Private registries, configured the k3s way with a `registries.yaml`:
//
//   mirrors:
//     docker.io:
//       endpoint: ["https://mirror.example.com:5000"]
//   configs:
//     mirror.example.com:5000:
//       auth: { username: u, password: p }
//       tls: { ca_file: /etc/ssl/reg-ca.pem, insecure_skip_verify: false }
//
// Mirrors and TLS become containerd `hosts.toml` files (one directory per registry under containerd's
// `config_path`). containerd 1.6's hosts.toml has no credentials, so `configs.<host>.auth` is handed to
// CRI's PullImage as an AuthConfig when none of the pod's imagePullSecrets matches the image.
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import type { AuthConfig } from './cri-types.js';
import { normalizeImageRef } from './image-ref.js';

/** k3s's default location; used when present and no `--private-registry` is given. */
export const DEFAULT_REGISTRIES_FILE = '/etc/skiff/registries.yaml';

export interface RegistryMirror {
  /** Endpoint URLs tried in order before the registry itself (`https://` when no scheme is written). */
  endpoint: string[];
  /** Repository rewrites (regexp → replacement); parsed but not applied: containerd 1.6 cannot. */
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
          new RegExp(re);
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
    const server = registry === DOCKER_HUB ? DOCKER_HUB_SERVER : `https://${registry}`;
    lines.push(`server = ${q(server)}`, ...tlsLines(cfg.configs[registry]?.tls, ''));
  }
  for (const e of cfg.mirrors[registry]?.endpoint ?? []) {
    const u = endpointUrl(e);
    // A path in the endpoint is the API root's prefix; containerd wants it to end in /v2.
    const path = u.pathname.replace(/\/+$/, '');
    const url = `${u.protocol}//${u.host}${path === '' ? '' : path.endsWith('/v2') ? path : `${path}/v2`}`;
    lines.push('', `[host.${q(url)}]`, '  capabilities = ["pull", "resolve"]', ...tlsLines(cfg.configs[u.host]?.tls, '  '));
  }
  return lines.join('\n') + '\n';
}

/**
 * Replaces `dir`'s contents with one `<host>/hosts.toml` per registry that has a mirror or TLS settings
 * (`_default/` for the `*` mirror). Returns the registries written.
 */
export function writeRegistryHosts(dir: string, cfg: RegistriesConfig): string[] {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const registries = new Set([...Object.keys(cfg.mirrors), ...Object.keys(cfg.configs).filter((h) => cfg.configs[h]!.tls && h !== '*')]);
  for (const registry of registries) {
    // containerd looks for `<host[:port]>/hosts.toml`, then `_default/hosts.toml`.
    const sub = join(dir, registry === '*' ? '_default' : registry);
    mkdirSync(sub, { recursive: true });
    writeFileSync(join(sub, 'hosts.toml'), renderHostsToml(registry, cfg));
  }
  return [...registries];
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
    if (!a) continue;
    auths.push({
      // containerd compares the URL's host with the host it is about to call.
      serverAddress: `https://${host}`,
      ...(a.username !== undefined ? { username: a.username, password: a.password ?? '' } : {}),
      ...(a.auth ? { auth: a.auth } : {}),
      ...(a.identitytoken ? { identityToken: a.identitytoken } : {}),
    });
  }
  return auths;
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
