// An OCI image that runs a Node.js script in a pod, built offline: the host's own `node` binary and
// the shared libraries it links (at the same paths, as `ldd` lists them), the script as
// /app/server.mjs, over busybox (a shell for debugging). Used by the end-to-end tests that need a
// real server (an extension API server, an admission webhook) running as a pod on an agent.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { busyboxLayer } from './images.js';
import { buildOciArchive, nodePlatform, writeTar, type TarEntry } from '../../src/agent/runtime/oci-image-builder.js';

/** The OCI archive (for an agent's images dir) of image `name` running `script` with the host's node. */
export function nodeScriptImage(name: string, script: string): Buffer {
  const nodeBin = process.execPath;
  const libs = execFileSync('ldd', [nodeBin], { encoding: 'utf8' }).split('\n')
    .map((l) => /(\/\S+)\s+\(0x/.exec(l)?.[1]).filter((p): p is string => Boolean(p) && existsSync(p!));
  const entries: TarEntry[] = [];
  const dirs = new Set<string>();
  const addDirs = (path: string) => {
    const parts = dirname(path).split('/').filter(Boolean);
    for (let i = 1; i <= parts.length; i++) {
      const d = parts.slice(0, i).join('/');
      // bin comes from the busybox layer.
      if (!dirs.has(d) && d !== 'bin') { dirs.add(d); entries.push({ name: d, type: 'dir' }); }
    }
  };
  for (const lib of libs) { addDirs(lib); entries.push({ name: lib.slice(1), mode: 0o755, data: readFileSync(lib) }); }
  entries.push({ name: 'bin/node', mode: 0o755, data: readFileSync(nodeBin) });
  entries.push({ name: 'app', type: 'dir' }, { name: 'app/server.mjs', data: readFileSync(script) });
  return buildOciArchive({
    name, layers: [busyboxLayer(), writeTar(entries)], platforms: [nodePlatform()],
    config: { entrypoint: ['/bin/node', '/app/server.mjs'], env: ['PATH=/bin'] },
  });
}
