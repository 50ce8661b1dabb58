// Offline images: every tarball dropped into `<dataDir>/agent/images/` (OCI layout or `docker save`,
// plain or gzip/zstd/bzip2/xz/lz4-compressed, any file name) is imported into containerd's `k8s.io`
// namespace at start, where CRI sees it; and the pause image is built locally so pods start on a node
// that has never reached a registry.
import { spawn } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { Readable } from 'node:stream';
import type { CriClient } from './cri-client.js';
import { buildOciArchive, writeTar } from './oci-image-builder.js';
import { logger, type Logger } from '../../util/log.js';

/** The sandbox image containerd is configured with; built from busybox-static when absent. */
export const PAUSE_IMAGE = 'skiff.local/pause:3.9';
/** containerd namespace the CRI plugin works in. */
export const CRI_NAMESPACE = 'k8s.io';

export function imagesDir(dataDir: string): string {
  return join(dataDir, 'agent', 'images');
}

export interface ImageImportOptions {
  dataDir: string;
  /** containerd's gRPC socket (ctr talks containerd's own API, not CRI). */
  containerdSocket: string;
  /** Used to check that remembered images are still present. */
  cri: CriClient;
  ctrBin?: string;
  log?: Logger;
}

export interface ImportedFile {
  file: string;
  /** Image names the archive created. */
  images: string[];
  /** False when the file was imported by an earlier start and its images are still there. */
  imported: boolean;
}

interface ImportRecord {
  /** size:mtime of the file when it was imported. */
  stamp: string;
  images: string[];
}

function recordFile(dataDir: string): string {
  return join(dataDir, 'agent', 'containerd', 'imported-images.json');
}

function loadRecords(dataDir: string): Record<string, ImportRecord> {
  try {
    return JSON.parse(readFileSync(recordFile(dataDir), 'utf8')) as Record<string, ImportRecord>;
  } catch {
    return {};
  }
}

function saveRecords(dataDir: string, records: Record<string, ImportRecord>): void {
  const file = recordFile(dataDir);
  mkdirSync(join(dataDir, 'agent', 'containerd'), { recursive: true });
  writeFileSync(`${file}.tmp`, JSON.stringify(records, null, 2));
  renameSync(`${file}.tmp`, file);
}

type Compression = 'none' | 'gzip' | 'zstd' | 'bzip2' | 'xz' | 'lz4';

/** Recognized by magic number, not by name: air-gap bundles arrive under any file name. */
export function detectCompression(head: Buffer): Compression {
  const starts = (...bytes: number[]) => bytes.every((b, i) => head[i] === b);
  if (starts(0x1f, 0x8b)) return 'gzip';
  if (starts(0x28, 0xb5, 0x2f, 0xfd)) return 'zstd';
  if (starts(0x42, 0x5a, 0x68)) return 'bzip2';
  if (starts(0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00)) return 'xz';
  if (starts(0x04, 0x22, 0x4d, 0x18)) return 'lz4';
  return 'none';
}

/** A decompressing stream of `file`; zstd and friends go through their Debian command-line tools. */
async function openDecompressed(file: string): Promise<{ stream: Readable; done: Promise<void> }> {
  const fh = await open(file, 'r');
  const head = Buffer.alloc(6);
  await fh.read(head, 0, 6, 0);
  await fh.close();
  const kind = detectCompression(head);
  if (kind === 'none') return { stream: createReadStream(file), done: Promise.resolve() };
  if (kind === 'gzip') {
    const gunzip = createGunzip();
    return { stream: gunzip, done: pipeline(createReadStream(file), gunzip) };
  }
  const tool = { zstd: 'zstd', bzip2: 'bzip2', xz: 'xz', lz4: 'lz4' }[kind];
  const proc = spawn(tool, ['-dc', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  proc.stderr!.on('data', (d) => { stderr += d; });
  const done = new Promise<void>((resolve, reject) => {
    proc.once('error', (err) => reject(new Error(`${file} is ${kind}-compressed and ${tool} could not run: ${err.message}`)));
    proc.once('close', (code) => code === 0 ? resolve() : reject(new Error(`${tool} -dc ${file} failed: ${stderr.trim()}`)));
  });
  return { stream: proc.stdout!, done };
}

/** Streams `file` (decompressed) into `ctr images import` and returns the names it created. */
export async function importArchive(file: string, opts: Pick<ImageImportOptions, 'containerdSocket' | 'ctrBin'>): Promise<string[]> {
  const { stream, done } = await openDecompressed(file);
  // Only this node's platform is fetched and unpacked: multi-arch archives often carry just the
  // blobs of some platforms, and --all-platforms fails on the missing ones.
  const ctr = spawn(opts.ctrBin ?? 'ctr', [
    '--address', opts.containerdSocket, '--namespace', CRI_NAMESPACE,
    'images', 'import', '--snapshotter', 'overlayfs', '-',
  ], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  ctr.stdout!.on('data', (d) => { out += d; });
  ctr.stderr!.on('data', (d) => { out += d; });
  const exited = new Promise<number>((resolve, reject) => {
    ctr.once('error', reject);
    ctr.once('close', (code) => resolve(code ?? -1));
  });
  // ctr closing its stdin early (a bad archive) surfaces as EPIPE here; its exit status says why.
  const fed = pipeline(stream, ctr.stdin!).catch(() => undefined);
  const [code] = await Promise.all([exited, fed, done.catch((err) => { ctr.kill(); throw err; })]);
  if (code !== 0) throw new Error(`importing ${file} failed: ${out.trim()}`);
  // ctr prints "unpacking <name> (sha256:…)...done" for each image it created.
  const names = [...out.matchAll(/^unpacking (\S+) \(sha256:[0-9a-f]+\)/gm)].map((m) => m[1]!);
  if (names.length === 0) throw new Error(`${file} contained no named image for this platform: ${out.trim()}`);
  return names;
}

/**
 * Waits until CRI lists `names`: the CRI plugin learns about images imported through containerd's
 * own API from its event stream, a moment later, and until then RunPodSandbox/CreateContainer would
 * try to pull them.
 */
export async function waitForCriImages(cri: CriClient, names: string[], timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  for (const name of names) {
    while (!(await cri.imageStatus(name))) {
      if (Date.now() > until) throw new Error(`image ${name} was imported but CRI does not see it`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Imports every regular file in the images folder that is new or changed since it was last imported
 * (same size and mtime) or whose images have since disappeared from the runtime. A bad file is logged
 * and skipped: one broken tarball must not keep a node from starting.
 */
export async function importImageDir(opts: ImageImportOptions): Promise<ImportedFile[]> {
  const log = opts.log ?? logger('images');
  const dir = imagesDir(opts.dataDir);
  mkdirSync(dir, { recursive: true });
  const records = loadRecords(opts.dataDir);
  const kept: Record<string, ImportRecord> = {};
  const present = new Set((await opts.cri.listImages()).flatMap((i) => i.repoTags));
  const results: ImportedFile[] = [];
  for (const name of readdirSync(dir).sort()) {
    if (name.startsWith('.')) continue;
    const file = join(dir, name);
    const st = statSync(file, { throwIfNoEntry: false });
    if (!st?.isFile()) continue;
    const stamp = `${st.size}:${st.mtimeMs}`;
    const known = records[file];
    if (known?.stamp === stamp && known.images.every((i) => present.has(i))) {
      kept[file] = known;
      results.push({ file, images: known.images, imported: false });
      continue;
    }
    const t0 = Date.now();
    try {
      const images = await importArchive(file, opts);
      await waitForCriImages(opts.cri, images);
      kept[file] = { stamp, images };
      results.push({ file, images, imported: true });
      log.info({ file, images, ms: Date.now() - t0 }, 'imported image archive');
    } catch (err) {
      log.error({ file, err: (err as Error).message }, 'image archive import failed');
    }
  }
  saveRecords(opts.dataDir, kept);
  return results;
}

/**
 * An OCI archive of the pause image: busybox-static's `sleep` applet as the sandbox's only process.
 * The sandbox just holds the pod's namespaces; CRI stops it with SIGKILL, so no signal handling is needed.
 */
export function buildPauseImage(busyboxPath = '/bin/busybox', name = PAUSE_IMAGE): Buffer {
  if (!existsSync(busyboxPath)) {
    throw new Error(`cannot build the pause image offline: ${busyboxPath} is missing (install Debian's busybox-static)`);
  }
  const layer = writeTar([
    { name: 'bin', type: 'dir' },
    // busybox picks the applet from argv[0]'s base name.
    { name: 'bin/sleep', mode: 0o755, data: readFileSync(busyboxPath) },
  ]);
  return buildOciArchive({ name, layers: [layer], config: { entrypoint: ['/bin/sleep', 'infinity'] } });
}

/** Makes sure the runtime has the pause image, building and importing it when it does not. */
export async function ensurePauseImage(opts: ImageImportOptions & { image?: string; busyboxPath?: string }): Promise<void> {
  const image = opts.image ?? PAUSE_IMAGE;
  if (await opts.cri.imageStatus(image)) return;
  const file = join(opts.dataDir, 'agent', 'containerd', 'pause.tar');
  writeFileSync(file, buildPauseImage(opts.busyboxPath, image));
  await waitForCriImages(opts.cri, await importArchive(file, opts));
  (opts.log ?? logger('images')).info({ image }, 'built and imported the pause image');
}
