// A pod's volumes as host directories the containers bind-mount, kept under
// `<dataDir>/agent/pods/<uid>/volumes/<plugin>/<name>` as the kubelet keeps them under /var/lib/kubelet:
// emptyDir (tmpfs for medium Memory), hostPath (with its type check), configMap, secret, downwardAPI
// and projected (written atomically and rewritten when their sources change; secrets on tmpfs so they
// never touch the disk), and PVCs bound to hostPath/local PVs (the PV's own path, nothing copied).
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, rmSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { mountsUnder } from '../runtime/teardown.js';
import { tryParseQuantity } from '../../api/quantity.js';
import { writeAtomic, type FileEntry } from './atomic-writer.js';
import { podFieldValue, resourceFieldValue, type FieldContext, type NodeResources } from './fields.js';
import type { Obj, PodApi } from './pod-api.js';
import { PodSources } from './sources.js';
import { ephemeralClaimName } from '../../api/ephemeral-volumes.js';

/** A volume as the runtime mounts it. */
export interface PreparedVolume {
  hostPath: string;
  /** Forced read-only (configMap, secret, downwardAPI, projected, read-only claims). */
  readOnly: boolean;
}

/** A volume that cannot be set up yet: the pod waits in ContainerCreating with a FailedMount event. */
export class VolumeError extends Error {
  override readonly name = 'VolumeError';
  constructor(readonly volume: string, message: string) {
    super(`MountVolume.SetUp failed for volume "${volume}" : ${message}`);
  }
}

export interface PodVolumesOptions {
  /** `<dataDir>/agent/pods/<uid>` */
  podDir: string;
  api: PodApi;
  node: NodeResources;
  now?: () => number;
}

/** The kubelet refreshes a projected token once 80% of its lifetime (or 24 h) has passed. */
const TOKEN_REFRESH_FRACTION = 0.8;
const TOKEN_MAX_AGE_MS = 24 * 3600_000;
const DEFAULT_MODE = 0o644;

interface CachedToken { token: string; issuedAt: number; expiresAt: number }

export function podDir(dataDir: string, uid: string): string {
  return join(dataDir, 'agent', 'pods', uid);
}

function isMounted(dir: string): boolean {
  return mountsUnder(dir).includes(dir);
}

function ensureTmpfs(dir: string, sizeBytes?: number): void {
  mkdirSync(dir, { recursive: true });
  if (isMounted(dir)) return;
  const opts = ['mode=0755', ...(sizeBytes ? [`size=${Math.ceil(sizeBytes)}`] : [])].join(',');
  execFileSync('mount', ['-t', 'tmpfs', '-o', opts, 'tmpfs', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
}

/** The memory a pod may use: its cgroup limit (app containers' sum, or the largest init container's), when every container sets one. */
export function podMemoryLimit(pod: Obj): number | undefined {
  const limit = (c: Obj) => tryParseQuantity(c.resources?.limits?.memory);
  const apps: Obj[] = pod.spec.containers ?? [];
  const inits: Obj[] = pod.spec.initContainers ?? [];
  if ([...apps, ...inits].some((c) => !limit(c))) return undefined;
  return Math.max(apps.reduce((sum, c) => sum + limit(c)!, 0), ...inits.map((c) => limit(c)!));
}

/**
 * A memory-backed emptyDir's tmpfs size, as the kubelet sizes it: what the pod may use at most (its
 * memory limit, else the node's memory), lowered to the volume's sizeLimit. Tmpfs pages count against
 * the pod's memory cgroup, so a bigger volume could only ever end in an OOM kill, never in ENOSPC.
 */
export function memoryVolumeSize(pod: Obj, sizeLimit: unknown, nodeMemoryBytes: number): number {
  let size = nodeMemoryBytes;
  const podLimit = podMemoryLimit(pod);
  if (podLimit && podLimit < size) size = podLimit;
  const vol = tryParseQuantity(sizeLimit);
  if (vol && vol < size) size = vol;
  return size;
}

const HOST_PATH_KIND: Record<string, (st: Stats) => boolean> = {
  Directory: (st) => st.isDirectory(),
  DirectoryOrCreate: (st) => st.isDirectory(),
  File: (st) => st.isFile(),
  FileOrCreate: (st) => st.isFile(),
  Socket: (st) => st.isSocket(),
  CharDevice: (st) => st.isCharacterDevice(),
  BlockDevice: (st) => st.isBlockDevice(),
};

const HOST_PATH_NOUN: Record<string, string> = {
  Directory: 'a directory', DirectoryOrCreate: 'a directory', File: 'a file', FileOrCreate: 'a file',
  Socket: 'a socket file', CharDevice: 'a character device', BlockDevice: 'a block device',
};

/** Checks (and for *OrCreate creates) a hostPath of the given type; '' checks nothing. */
export function checkHostPath(path: string, type: string | undefined): void {
  const t = type ?? '';
  if (t === '') return;
  const check = HOST_PATH_KIND[t];
  if (!check) throw new Error(`hostPath type check failed: unknown type ${t}`);
  let st = statSync(path, { throwIfNoEntry: false });
  if (!st && t === 'DirectoryOrCreate') {
    mkdirSync(path, { recursive: true, mode: 0o755 });
    st = statSync(path);
  } else if (!st && t === 'FileOrCreate') {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    writeFileSync(path, '', { mode: 0o644, flag: 'a' });
    st = statSync(path);
  }
  if (!st) throw new Error(`hostPath type check failed: ${path} does not exist`);
  if (!check(st)) throw new Error(`hostPath type check failed: ${path} is not ${HOST_PATH_NOUN[t]}`);
}

export class PodVolumes {
  private readonly tokens = new Map<string, CachedToken>();
  private readonly now: () => number;

  constructor(private readonly o: PodVolumesOptions) {
    this.now = o.now ?? Date.now;
  }

  /**
   * Prepares every volume of `pod` and returns where each one is on the host. Idempotent: a later
   * call rewrites configMap/secret/downwardAPI/projected contents that changed and rotates tokens.
   */
  async setUp(pod: Obj, sources: PodSources, fields: FieldContext): Promise<Map<string, PreparedVolume>> {
    const out = new Map<string, PreparedVolume>();
    for (const v of pod.spec.volumes ?? []) {
      try {
        out.set(v.name, await this.setUpOne(pod, v, sources, fields));
      } catch (err) {
        if (err instanceof VolumeError) throw err;
        throw new VolumeError(v.name, (err as Error).message);
      }
    }
    return out;
  }

  private dir(plugin: string, name: string): string {
    return join(this.o.podDir, 'volumes', plugin, name);
  }

  private async setUpOne(pod: Obj, v: Obj, sources: PodSources, fields: FieldContext): Promise<PreparedVolume> {
    if (v.hostPath) {
      checkHostPath(v.hostPath.path, v.hostPath.type);
      return { hostPath: v.hostPath.path, readOnly: false };
    }
    if (v.emptyDir) {
      const dir = this.dir('kubernetes.io~empty-dir', v.name);
      if (v.emptyDir.medium === 'Memory') ensureTmpfs(dir, memoryVolumeSize(pod, v.emptyDir.sizeLimit, this.o.node.memoryBytes));
      else mkdirSync(dir, { recursive: true });
      // World-writable like the kubelet's: containers running as any user share it.
      chmodSync(dir, 0o777);
      return { hostPath: dir, readOnly: false };
    }
    if (v.configMap) {
      const dir = this.dir('kubernetes.io~configmap', v.name);
      writeAtomic(dir, await this.configMapFiles(v.configMap, v.configMap.defaultMode ?? DEFAULT_MODE, sources));
      return { hostPath: dir, readOnly: true };
    }
    if (v.secret) {
      const dir = this.dir('kubernetes.io~secret', v.name);
      ensureTmpfs(dir);
      writeAtomic(dir, await this.secretFiles(v.secret, v.secret.defaultMode ?? DEFAULT_MODE, sources));
      return { hostPath: dir, readOnly: true };
    }
    if (v.downwardAPI) {
      const dir = this.dir('kubernetes.io~downward-api', v.name);
      writeAtomic(dir, this.downwardFiles(pod, v.downwardAPI.items ?? [], v.downwardAPI.defaultMode ?? DEFAULT_MODE, fields));
      return { hostPath: dir, readOnly: true };
    }
    if (v.projected) {
      const dir = this.dir('kubernetes.io~projected', v.name);
      ensureTmpfs(dir);
      writeAtomic(dir, await this.projectedFiles(pod, v, sources, fields));
      return { hostPath: dir, readOnly: true };
    }
    if (v.persistentVolumeClaim) return this.claim(pod, v.persistentVolumeClaim);
    // A generic ephemeral volume is the claim made for this pod, named `<pod>-<volume>`.
    if (v.ephemeral) return this.claim(pod, { claimName: ephemeralClaimName(pod.metadata.name, v.name) });
    const kind = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
    throw new VolumeError(v.name, `volume type ${kind} is not supported by skiff`);
  }

  private async configMapFiles(src: Obj, defaultMode: number, sources: PodSources): Promise<Map<string, FileEntry>> {
    const cm = await sources.configMap(src.name);
    if (!cm) {
      if (src.optional) return new Map();
      throw new Error(`configmap "${src.name}" not found`);
    }
    return keyFiles(PodSources.configMapData(cm), src.items, defaultMode, src.optional, `configmap references non-existent config key`);
  }

  private async secretFiles(src: Obj, defaultMode: number, sources: PodSources): Promise<Map<string, FileEntry>> {
    const name = src.secretName ?? src.name;
    const s = await sources.secret(name);
    if (!s) {
      if (src.optional) return new Map();
      throw new Error(`secret "${name}" not found`);
    }
    return keyFiles(PodSources.secretData(s), src.items, defaultMode, src.optional, `references non-existent secret key`);
  }

  private downwardFiles(pod: Obj, items: Obj[], defaultMode: number, fields: FieldContext): Map<string, FileEntry> {
    const out = new Map<string, FileEntry>();
    for (const item of items) {
      let value: string;
      if (item.fieldRef) value = podFieldValue(pod, item.fieldRef.fieldPath, fields);
      else if (item.resourceFieldRef) {
        const c = [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])].find((x: Obj) => x.name === item.resourceFieldRef.containerName);
        if (!c) throw new Error(`resourceFieldRef: no container named ${item.resourceFieldRef.containerName}`);
        value = resourceFieldValue(c, item.resourceFieldRef.resource, item.resourceFieldRef.divisor, this.o.node);
      } else continue;
      out.set(item.path, { data: Buffer.from(value), mode: item.mode ?? defaultMode });
    }
    return out;
  }

  private async projectedFiles(pod: Obj, v: Obj, sources: PodSources, fields: FieldContext): Promise<Map<string, FileEntry>> {
    const defaultMode = v.projected.defaultMode ?? DEFAULT_MODE;
    const out = new Map<string, FileEntry>();
    const add = (m: Map<string, FileEntry>) => { for (const [k, f] of m) out.set(k, f); };
    for (const src of v.projected.sources ?? []) {
      if (src.configMap) add(await this.configMapFiles(src.configMap, defaultMode, sources));
      else if (src.secret) add(await this.secretFiles({ ...src.secret, secretName: src.secret.name }, defaultMode, sources));
      else if (src.downwardAPI) add(this.downwardFiles(pod, src.downwardAPI.items ?? [], defaultMode, fields));
      else if (src.serviceAccountToken) {
        const t = src.serviceAccountToken;
        const token = await this.token(pod, `${v.name}/${t.path}`, t.audience ? [t.audience] : [], t.expirationSeconds ?? 3600);
        out.set(t.path, { data: Buffer.from(token), mode: defaultMode });
      } else {
        throw new Error(`projected source ${Object.keys(src)[0]} is not supported by skiff`);
      }
    }
    return out;
  }

  /** A bound token for the pod's service account, reused until 80% of its life (or 24 h) has passed. */
  private async token(pod: Obj, key: string, audiences: string[], expirationSeconds: number): Promise<string> {
    const now = this.now();
    const cached = this.tokens.get(key);
    if (cached) {
      const refreshAt = Math.min(cached.issuedAt + (cached.expiresAt - cached.issuedAt) * TOKEN_REFRESH_FRACTION, cached.issuedAt + TOKEN_MAX_AGE_MS);
      if (now < refreshAt) return cached.token;
    }
    const sa = pod.spec.serviceAccountName || 'default';
    const issued = await this.o.api.createToken(pod.metadata.namespace, sa, audiences, expirationSeconds, { name: pod.metadata.name, uid: pod.metadata.uid });
    const expiresAt = Date.parse(issued.expirationTimestamp);
    this.tokens.set(key, { token: issued.token, issuedAt: now, expiresAt: Number.isFinite(expiresAt) ? expiresAt : now + expirationSeconds * 1000 });
    return issued.token;
  }

  /** When the earliest token must be renewed (ms since the epoch), for the worker's next wake-up. */
  nextTokenRefresh(): number | undefined {
    let next: number | undefined;
    for (const t of this.tokens.values()) {
      const at = Math.min(t.issuedAt + (t.expiresAt - t.issuedAt) * TOKEN_REFRESH_FRACTION, t.issuedAt + TOKEN_MAX_AGE_MS);
      next = next === undefined ? at : Math.min(next, at);
    }
    return next;
  }

  private async claim(pod: Obj, ref: Obj): Promise<PreparedVolume> {
    const ns: string = pod.metadata.namespace;
    const pvc = await this.o.api.getPersistentVolumeClaim(ns, ref.claimName);
    if (!pvc) throw new Error(`persistentvolumeclaim "${ref.claimName}" not found`);
    if (pvc.metadata.deletionTimestamp) throw new Error(`persistentvolumeclaim "${ref.claimName}" is being deleted`);
    const pvName = pvc.spec?.volumeName;
    if (pvc.status?.phase !== 'Bound' || !pvName) throw new Error(`persistentvolumeclaim "${ref.claimName}" is not bound`);
    const pv = await this.o.api.getPersistentVolume(pvName);
    if (!pv) throw new Error(`persistentvolume "${pvName}" not found`);
    const path: string | undefined = pv.spec?.hostPath?.path ?? pv.spec?.local?.path;
    if (!path) throw new Error(`persistentvolume "${pvName}" is neither hostPath nor local, which skiff cannot mount`);
    // k3s's provisioner makes its directories world-writable, so that pods running as any user can
    // use their volume; the directory is made here, on first use, as k3s's helper pod would.
    if (pv.metadata?.annotations?.['pv.kubernetes.io/provisioned-by'] === 'rancher.io/local-path' && !existsSync(path)) {
      mkdirSync(path, { recursive: true });
      chmodSync(path, 0o777);
    }
    if (pv.spec.hostPath) checkHostPath(path, pv.spec.hostPath.type);
    else if (!existsSync(path)) throw new Error(`local volume path ${path} does not exist`);
    return { hostPath: path, readOnly: ref.readOnly === true };
  }

  /** Unmounts what the pod's volumes mounted (tmpfs) and removes the pod's directory. */
  tearDown(): void {
    for (const m of mountsUnder(this.o.podDir)) {
      try {
        execFileSync('umount', [m], { stdio: 'ignore' });
      } catch {
        execFileSync('umount', ['-l', m], { stdio: 'ignore' });
      }
    }
    // Only after every mount is gone: rm must never follow into a tmpfs or anything else mounted.
    if (mountsUnder(this.o.podDir).length === 0) rmSync(this.o.podDir, { recursive: true, force: true });
  }
}

/** The files of a configMap/secret volume: every key, or just `items` (key → path, mode). */
function keyFiles(data: Map<string, Buffer>, items: Obj[] | undefined, defaultMode: number, optional: boolean | undefined, missing: string): Map<string, FileEntry> {
  const out = new Map<string, FileEntry>();
  if (!items?.length) {
    for (const [k, d] of data) out.set(k, { data: d, mode: defaultMode });
    return out;
  }
  for (const item of items) {
    const d = data.get(item.key);
    if (!d) {
      if (optional) continue;
      throw new Error(`${missing}: ${item.key}`);
    }
    out.set(item.path, { data: d, mode: item.mode ?? defaultMode });
  }
  return out;
}
