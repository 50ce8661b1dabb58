// Test images built offline from Debian's busybox-static: one static binary plus a symlink per applet
// is a usable userland (sh, echo, sleep, httpd, nc, wget...). Variants: OCI layout or `docker save`
// archive, single platform or a multi-arch index, plain or gzip-compressed.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import {
  buildDockerArchive, buildOciArchive, nodePlatform, writeTar, type ImageConfig, type Platform, type TarEntry,
} from '../../src/agent/runtime/oci-image-builder.js';

export const BUSYBOX = '/bin/busybox';
export const TEST_IMAGE = 'skiff.local/busybox:test';

export interface BusyboxImageOptions {
  /** Image reference; default TEST_IMAGE. */
  name?: string;
  entrypoint?: string[];
  /** Default `['sh']`, as the busybox image on Docker Hub. */
  cmd?: string[];
  env?: string[];
  workingDir?: string;
  /** Wrap in an index with this node's platform and one foreign platform (same layer). */
  multiArch?: boolean;
  format?: 'oci' | 'docker';
  gzip?: boolean;
}

/** The other of amd64/arm64: an index entry this node must NOT pick. */
export function foreignPlatform(): Platform {
  return nodePlatform().architecture === 'arm64'
    ? { os: 'linux', architecture: 'amd64' }
    : { os: 'linux', architecture: 'arm64', variant: 'v8' };
}

let cachedLayer: Buffer | undefined;

/** A root filesystem layer: /bin/busybox, /bin/<applet> → busybox, the usual empty dirs, passwd/group. */
export function busyboxLayer(): Buffer {
  if (cachedLayer) return cachedLayer;
  if (!existsSync(BUSYBOX)) throw new Error(`${BUSYBOX} is missing: install Debian's busybox-static`);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' }).split('\n').filter((a) => a && a !== 'busybox');
  const entries: TarEntry[] = [
    { name: 'bin', type: 'dir' },
    { name: 'bin/busybox', mode: 0o755, data: readFileSync(BUSYBOX) },
    ...applets.map((a): TarEntry => ({ name: `bin/${a}`, type: 'symlink', linkname: 'busybox', mode: 0o777 })),
    ...['dev', 'proc', 'sys', 'etc', 'root', 'var', 'var/www'].map((d): TarEntry => ({ name: d, type: 'dir' })),
    { name: 'tmp', type: 'dir', mode: 0o1777 },
    { name: 'etc/passwd', data: 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' },
    { name: 'etc/group', data: 'root:x:0:\nnogroup:x:65534:\n' },
  ];
  cachedLayer = writeTar(entries);
  return cachedLayer;
}

export function busyboxImage(o: BusyboxImageOptions = {}): Buffer {
  const config: ImageConfig = { entrypoint: o.entrypoint, cmd: o.cmd ?? ['sh'], env: o.env, workingDir: o.workingDir };
  const spec = {
    name: o.name ?? TEST_IMAGE,
    layers: [busyboxLayer()],
    config,
    platforms: o.multiArch ? [nodePlatform(), foreignPlatform()] : [nodePlatform()],
  };
  if (o.multiArch && o.format === 'docker') throw new Error('docker archives hold a single platform');
  const tar = o.format === 'docker' ? buildDockerArchive(spec) : buildOciArchive(spec);
  return o.gzip ? gzipSync(tar) : tar;
}

/** Writes the image archive to `dir/fileName` and returns its path. */
export function writeBusyboxImage(dir: string, fileName: string, o: BusyboxImageOptions = {}): string {
  const file = join(dir, fileName);
  writeFileSync(file, busyboxImage(o));
  return file;
}
