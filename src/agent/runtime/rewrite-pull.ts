// registries.yaml `rewrite`, which containerd 1.6's hosts.toml cannot express: when a mirror's rule
// changes the image's repository, the agent pulls the rewritten reference from each mirror endpoint in
// turn through CRI, then names the pulled image as the pod asked for it (containerd's Images service)
// and drops the pull's own names, so `crictl images` and the pod's status show the original name as
// with k3s. When no endpoint serves it, the plain pull follows (hosts.toml: the mirror endpoints with
// the path unchanged, then the registry itself), as containerd falls back to the default endpoint.
import type { CriClient } from './cri-client.js';
import type { AuthConfig, Image, PodSandboxConfig } from './cri-types.js';
import { ContainerdImages } from './containerd-images.js';
import { normalizeImageRef } from './image-ref.js';
import { registryRewritePulls } from './registries.js';
import { logger } from '../../util/log.js';

const log = logger('registries');

/** CRI follows containerd's image events asynchronously; it normally catches up within milliseconds. */
const CRI_CATCH_UP_MS = 10_000;

/** One Images client per containerd socket, made on the first rewritten pull. */
const clients = new Map<string, ContainerdImages>();

function imagesClient(socket: string): ContainerdImages {
  let c = clients.get(socket);
  if (!c) clients.set(socket, c = new ContainerdImages(socket));
  return c;
}

/*
 * Rewritten pulls of one reference in flight, shared: a pull ends by deleting the name it pulled, and
 * a second pull of the same reference (two pods, one image) would put that name back for a moment,
 * when CRI may report it as a just-started container's image. Callers arriving while one runs get its
 * result, as containerd shares one fetch among identical concurrent pulls.
 */
const pulling = new Map<string, Promise<string>>();

function shared(key: string, fn: () => Promise<string>): Promise<string> {
  let p = pulling.get(key);
  if (!p) {
    pulling.set(key, p = fn());
    void p.catch(() => undefined).finally(() => pulling.delete(key));
  }
  return p;
}

/* Pulls of one reference under different names, one at a time: each deletes the name it pulled. */
const queued = new Map<string, Promise<unknown>>();

function serialized<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const prev = queued.get(key) ?? Promise.resolve();
  const next = prev.catch(() => undefined).then(fn);
  queued.set(key, next);
  void next.catch(() => undefined).finally(() => { if (queued.get(key) === next) queued.delete(key); });
  return next;
}

/** `reg/a/b:1` and `reg/a/b@sha256:…` → `reg/a/b` (a port only appears before the first slash). */
function repositoryOf(name: string): string {
  const at = name.indexOf('@');
  const base = at < 0 ? name : name.slice(0, at);
  const colon = base.lastIndexOf(':');
  return colon > base.lastIndexOf('/') ? base.slice(0, colon) : base;
}

/**
 * CRI PullImage of `image` for the agent on `dataDir`, through its registries.yaml rewrites when they
 * apply. `auth` is the caller's credential for this attempt; an endpoint's own `configs` auth wins.
 * Resolves to the image ID, as PullImage does.
 */
export async function pullImage(cri: CriClient, dataDir: string, image: string, auth?: AuthConfig, sandboxConfig?: PodSandboxConfig): Promise<string> {
  const failures: string[] = [];
  for (const p of registryRewritePulls(dataDir, image)) {
    try {
      const ref = `${cri.endpoint} ${p.ref}`;
      const id = await shared(`${ref} ${image}`, () => serialized(ref, () => pullAs(cri, p.ref, image, p.auth ?? auth, sandboxConfig)));
      log.info({ image, from: p.ref }, 'pulled through a mirror rewrite');
      return id;
    } catch (err) {
      failures.push(`${p.ref}: ${(err as Error).message}`);
      log.info({ image, from: p.ref, err: (err as Error).message }, 'rewritten pull failed; trying the next endpoint');
    }
  }
  try {
    return await cri.pullImage(image, auth, sandboxConfig);
  } catch (err) {
    if (!failures.length) throw err;
    throw new Error(`${(err as Error).message} (rewritten pulls failed too: ${failures.join('; ')})`);
  }
}

/** Pulls `ref` and makes the image known to CRI as `image` instead. */
async function pullAs(cri: CriClient, ref: string, image: string, auth: AuthConfig | undefined, sandboxConfig?: PodSandboxConfig): Promise<string> {
  const images = imagesClient(cri.endpoint);
  const pulledName = normalizeImageRef(ref);
  const before = await cri.imageStatus(pulledName);
  const id = await cri.pullImage(pulledName, auth, sandboxConfig);
  const pulled = await images.get(pulledName);
  if (!pulled) throw new Error(`containerd has no image ${pulledName} right after pulling it`);
  // The names CRI gives a pulled image: the reference, and the repository with the manifest digest.
  const wanted = normalizeImageRef(image);
  const names = [wanted];
  if (!wanted.includes('@')) names.push(`${repositoryOf(wanted)}@${pulled.target.digest}`);
  for (const name of names) await images.put({ name, labels: pulled.labels, target: pulled.target });
  // CRI reports an image's first tag as a container's image: the pull's own names must go (unless
  // something had them before), or the pod's status could show the mirror's name.
  const kept = new Set([...before?.repoTags ?? [], ...before?.repoDigests ?? []]);
  const dropped = [pulledName, `${repositoryOf(pulledName)}@${pulled.target.digest}`].filter((n) => !kept.has(n) && !names.includes(n));
  for (const name of dropped) await images.delete(name);
  await criCatchesUp(cri, wanted, dropped);
  return id;
}

/** Waits until CRI resolves `name` and no longer lists the `dropped` names for it. */
async function criCatchesUp(cri: CriClient, name: string, dropped: string[]): Promise<void> {
  const deadline = Date.now() + CRI_CATCH_UP_MS;
  let st: Image | null = null;
  for (;;) {
    st = await cri.imageStatus(name);
    if (st && !dropped.some((n) => st!.repoTags.includes(n) || st!.repoDigests.includes(n))) return;
    if (Date.now() > deadline) throw new Error(`the runtime did not pick up image name ${name} within ${CRI_CATCH_UP_MS / 1000}s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
