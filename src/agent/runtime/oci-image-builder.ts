// Builds image archives in memory with nothing but Node: the agent needs a pause image on a node that
// may never reach a registry, and tests need images without Docker. Output is byte-for-byte
// reproducible (fixed mtimes, gzip without a timestamp), so the same input gives the same digests and
// re-imports are no-ops for containerd.
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { normalizeImageRef } from './image-ref.js';

export interface TarEntry {
  /** Path inside the archive, without a leading slash; directories may end in `/`. */
  name: string;
  type?: 'file' | 'dir' | 'symlink';
  mode?: number;
  data?: Buffer | string;
  linkname?: string;
  uid?: number;
  gid?: number;
  /** Seconds since the epoch; 0 by default so archives are reproducible. */
  mtime?: number;
}

const BLOCK = 512;

function octal(value: number, width: number): string {
  // Fields are NUL-terminated octal numbers padded with zeros to the field width.
  return value.toString(8).padStart(width - 1, '0') + '\0';
}

function splitName(name: string): { name: string; prefix: string } {
  if (Buffer.byteLength(name) <= 100) return { name, prefix: '' };
  // ustar keeps long paths as prefix (≤155) + '/' + name (≤100), split at a slash.
  for (let i = name.lastIndexOf('/'); i > 0; i = name.lastIndexOf('/', i - 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100) return { name: rest, prefix };
  }
  throw new Error(`tar path too long for ustar: ${name}`);
}

function header(e: TarEntry, size: number): Buffer {
  const h = Buffer.alloc(BLOCK);
  const type = e.type ?? 'file';
  const { name, prefix } = splitName(type === 'dir' && !e.name.endsWith('/') ? `${e.name}/` : e.name);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(e.mode ?? (type === 'dir' ? 0o755 : 0o644), 8), 100, 'ascii');
  h.write(octal(e.uid ?? 0, 8), 108, 'ascii');
  h.write(octal(e.gid ?? 0, 8), 116, 'ascii');
  h.write(octal(size, 12), 124, 'ascii');
  h.write(octal(e.mtime ?? 0, 12), 136, 'ascii');
  h.write({ file: '0', dir: '5', symlink: '2' }[type], 156, 'ascii');
  if (e.linkname) h.write(e.linkname, 157, 100, 'utf8');
  h.write('ustar\0' + '00', 257, 'ascii');
  h.write(prefix, 345, 155, 'utf8');
  // The checksum is computed with its own field read as eight spaces.
  h.fill(0x20, 148, 156);
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'ascii');
  return h;
}

/** A ustar archive of `entries`, in order, with the two zero blocks that end it. */
export function writeTar(entries: TarEntry[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.type === 'file' || e.type === undefined
      ? (typeof e.data === 'string' ? Buffer.from(e.data) : e.data ?? Buffer.alloc(0))
      : Buffer.alloc(0);
    parts.push(header(e, data.length), data);
    const pad = (BLOCK - (data.length % BLOCK)) % BLOCK;
    if (pad) parts.push(Buffer.alloc(pad));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

export interface Platform {
  os: string;
  architecture: string;
  variant?: string;
}

/** The OCI platform of this node, as image indexes name it (Node's `x64` is OCI's `amd64`). */
export function nodePlatform(): Platform {
  switch (process.arch) {
    case 'x64': return { os: 'linux', architecture: 'amd64' };
    case 'arm64': return { os: 'linux', architecture: 'arm64', variant: 'v8' };
    case 'arm': return { os: 'linux', architecture: 'arm', variant: 'v7' };
    case 'ia32': return { os: 'linux', architecture: '386' };
    default: return { os: 'linux', architecture: process.arch };
  }
}

export interface ImageConfig {
  entrypoint?: string[];
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  user?: string;
  labels?: Record<string, string>;
  /** e.g. `8080/tcp` */
  exposedPorts?: string[];
}

export interface ImageSpec {
  /** Reference the image is stored under; familiar names are normalized (`busybox` → `docker.io/library/busybox:latest`). */
  name: string;
  /** Uncompressed layer tarballs (see writeTar), bottom first. */
  layers: Buffer[];
  config: ImageConfig;
  /**
   * One manifest per platform, all sharing the same layers. More than one, or `index: true`, makes the
   * archive's top-level entry an image index (a multi-arch image), as registries serve them.
   */
  platforms?: Platform[];
  index?: boolean;
}

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
}

const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
};

// containerd's importer names an image after this annotation; the OCI ref.name alone would need --base-name.
const CONTAINERD_NAME = 'io.containerd.image.name';
const OCI_REF_NAME = 'org.opencontainers.image.ref.name';

export function sha256(data: Buffer | string): string {
  return createHash('sha256').update(data).digest('hex');
}

class BlobSet {
  readonly blobs = new Map<string, Buffer>();
  add(mediaType: string, data: Buffer, extra?: Partial<Descriptor>): Descriptor {
    const hex = sha256(data);
    this.blobs.set(hex, data);
    return { mediaType, digest: `sha256:${hex}`, size: data.length, ...extra };
  }
  addJson(mediaType: string, value: unknown, extra?: Partial<Descriptor>): Descriptor {
    return this.add(mediaType, Buffer.from(JSON.stringify(value)), extra);
  }
}

function imageConfigJson(c: ImageConfig, platform: Platform, diffIds: string[]): unknown {
  const config: Record<string, unknown> = {};
  if (c.entrypoint) config.Entrypoint = c.entrypoint;
  if (c.cmd) config.Cmd = c.cmd;
  config.Env = c.env ?? ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
  if (c.workingDir) config.WorkingDir = c.workingDir;
  if (c.user) config.User = c.user;
  if (c.labels) config.Labels = c.labels;
  if (c.exposedPorts) config.ExposedPorts = Object.fromEntries(c.exposedPorts.map((p) => [p, {}]));
  return {
    created: '1970-01-01T00:00:00Z',
    architecture: platform.architecture,
    os: platform.os,
    ...(platform.variant ? { variant: platform.variant } : {}),
    config,
    rootfs: { type: 'layers', diff_ids: diffIds },
    history: diffIds.map(() => ({ created: '1970-01-01T00:00:00Z', created_by: 'skiff oci-image-builder' })),
  };
}

/**
 * An OCI image layout (`oci-layout`, `index.json`, `blobs/sha256/…`) as one tar, the format
 * `ctr images import` and `skopeo copy oci-archive:` read.
 */
export function buildOciArchive(spec: ImageSpec): Buffer {
  const name = normalizeImageRef(spec.name);
  const platforms = spec.platforms ?? [nodePlatform()];
  if (platforms.length === 0) throw new Error('an image needs at least one platform');
  const blobs = new BlobSet();
  const layers = spec.layers.map((tar) => ({
    diffId: `sha256:${sha256(tar)}`,
    desc: blobs.add(MT.layerGzip, gzipSync(tar)),
  }));
  const manifests = platforms.map((platform) => {
    const config = blobs.addJson(MT.config, imageConfigJson(spec.config, platform, layers.map((l) => l.diffId)));
    return blobs.addJson(MT.manifest, {
      schemaVersion: 2, mediaType: MT.manifest, config, layers: layers.map((l) => l.desc),
    }, { platform });
  });
  const tag = name.includes('@') ? undefined : name.slice(name.lastIndexOf(':') + 1);
  const annotations = { [CONTAINERD_NAME]: name, ...(tag ? { [OCI_REF_NAME]: tag } : {}) };
  const top = platforms.length > 1 || spec.index
    ? blobs.addJson(MT.index, { schemaVersion: 2, mediaType: MT.index, manifests }, { annotations })
    : { ...manifests[0]!, annotations };
  const entries: TarEntry[] = [
    { name: 'oci-layout', data: JSON.stringify({ imageLayoutVersion: '1.0.0' }) },
    { name: 'index.json', data: JSON.stringify({ schemaVersion: 2, mediaType: MT.index, manifests: [top] }) },
    { name: 'blobs', type: 'dir' },
    { name: 'blobs/sha256', type: 'dir' },
    ...[...blobs.blobs].map(([hex, data]): TarEntry => ({ name: `blobs/sha256/${hex}`, data })),
  ];
  return writeTar(entries);
}

/**
 * The `docker save` format (manifest.json + config + layer.tar per layer), single platform: what
 * air-gap bundles built with Docker contain.
 */
export function buildDockerArchive(spec: ImageSpec): Buffer {
  const name = normalizeImageRef(spec.name);
  const platform = (spec.platforms ?? [nodePlatform()])[0]!;
  const diffIds = spec.layers.map((tar) => `sha256:${sha256(tar)}`);
  const config = Buffer.from(JSON.stringify(imageConfigJson(spec.config, platform, diffIds)));
  const configFile = `${sha256(config)}.json`;
  const layerFiles = spec.layers.map((tar) => `${sha256(tar)}/layer.tar`);
  const entries: TarEntry[] = [
    { name: 'manifest.json', data: JSON.stringify([{ Config: configFile, RepoTags: [name], Layers: layerFiles }]) },
    { name: configFile, data: config },
    ...spec.layers.flatMap((tar, i): TarEntry[] => [
      { name: layerFiles[i]!.split('/')[0]!, type: 'dir' },
      { name: layerFiles[i]!, data: tar },
    ]),
  ];
  return writeTar(entries);
}
