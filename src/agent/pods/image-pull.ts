// Registry credentials for a pull, from the pod's imagePullSecrets (`kubernetes.io/dockerconfigjson`
// or the older `kubernetes.io/dockercfg`), matched to the image's registry as the kubelet's keyring
// matches them: by host (and port), `*` globs per DNS label, and Docker Hub's several names.
import { normalizeImageRef } from '../runtime/image-ref.js';
import type { AuthConfig } from '../runtime/cri-types.js';
import type { Obj } from './pod-api.js';
import { PodSources } from './sources.js';

const DOCKER_HUB = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io', 'registry.hub.docker.com']);

/** The registry host of an image reference (`docker.io` for Docker Hub names). */
export function imageRegistry(image: string): string {
  return normalizeImageRef(image).split('/')[0]!;
}

/** The host[:port] a docker config key names (`https://reg.example.com/v1/` → `reg.example.com`). */
function keyHost(key: string): string {
  return key.replace(/^[a-z]+:\/\//i, '').split('/')[0]!.toLowerCase();
}

export function registryMatches(key: string, registry: string): boolean {
  const k = keyHost(key);
  const r = registry.toLowerCase();
  if (DOCKER_HUB.has(k) && DOCKER_HUB.has(r)) return true;
  if (!k.includes('*')) return k === r;
  const [kHost, kPort] = k.split(':');
  const [rHost, rPort] = r.split(':');
  if ((kPort ?? '') !== (rPort ?? '')) return false;
  const kl = kHost!.split('.');
  const rl = rHost!.split('.');
  if (kl.length !== rl.length) return false;
  return kl.every((label, i) => new RegExp(`^${label.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^.]*')}$`).test(rl[i]!));
}

function authEntries(secret: Obj): Record<string, Obj> {
  const data = PodSources.secretData(secret);
  try {
    if (data.has('.dockerconfigjson')) return JSON.parse(data.get('.dockerconfigjson')!.toString('utf8')).auths ?? {};
    if (data.has('.dockercfg')) return JSON.parse(data.get('.dockercfg')!.toString('utf8')) ?? {};
  } catch {
    // a malformed secret offers no credentials
  }
  return {};
}

/** Every credential of the pod's imagePullSecrets for `image`'s registry, in the secrets' order. */
export async function pullCredentials(pod: Obj, image: string, sources: PodSources): Promise<{ auths: AuthConfig[]; missing: string[] }> {
  const registry = imageRegistry(image);
  const auths: AuthConfig[] = [];
  const missing: string[] = [];
  for (const ref of pod.spec.imagePullSecrets ?? []) {
    const secret = await sources.secret(ref.name);
    if (!secret) {
      missing.push(ref.name);
      continue;
    }
    for (const [key, e] of Object.entries(authEntries(secret))) {
      if (!registryMatches(key, registry)) continue;
      let { username, password } = e as { username?: string; password?: string };
      if (!username && e.auth) {
        const decoded = Buffer.from(String(e.auth), 'base64').toString('utf8');
        const colon = decoded.indexOf(':');
        username = decoded.slice(0, colon);
        password = decoded.slice(colon + 1);
      }
      auths.push({
        // No serverAddress, as the kubelet sends none: containerd would parse it as a URL (a bare
        // `host:port` fails to parse and fails the pull) and withhold it from mirrors.
        username: username ?? '', password: password ?? '',
        ...(e.identitytoken ? { identityToken: e.identitytoken } : {}),
        ...(e.registrytoken ? { registryToken: e.registrytoken } : {}),
      });
    }
  }
  return { auths, missing };
}

/** `latest` or no tag (and no digest) means pull Always; anything else IfNotPresent. */
export function defaultPullPolicy(image: string): string {
  const name = normalizeImageRef(image);
  if (name.includes('@')) return 'IfNotPresent';
  return name.endsWith(':latest') ? 'Always' : 'IfNotPresent';
}
