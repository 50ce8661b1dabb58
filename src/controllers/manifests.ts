// Auto-deploying manifests, as k3s's deploy controller: every YAML or JSON file under the server's
// manifests directory (`<data dir>/server/manifests`, subdirectories included) is applied at start
// and again whenever it changes on disk, like `kubectl apply --server-side --force-conflicts`.
// Each file is tracked by an Addon (`addons.k3s.cattle.io`, kube-system, named after the file) that
// holds its path and checksum; failures are events on the Addon (`kubectl describe addon`) and are
// retried on the next pass. A file `X.skip` next to `X` keeps `X` from being applied; deleting a file
// leaves its objects in place (k3s documents both). Objects without a namespace go to `default`, as
// with kubectl.
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { basename, extname, join } from 'node:path';
import type { KObject } from '../api/object.js';
import type { ResourceRef } from '../client/types.js';
import type { ControllerContext } from './context.js';
import type { RunningController } from '../client/controller.js';
import { logger } from '../util/log.js';

const log = logger('manifests');
const FIELD_MANAGER = 'skiff-deploy';
const EXTENSIONS = new Set(['.yaml', '.yml', '.json']);
const RFC1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
export const ADDONS: ResourceRef = Object.freeze({ group: 'k3s.cattle.io', version: 'v1', resource: 'addons' });
export const ADDON_NAMESPACE = 'kube-system';

export interface ManifestOptions {
  dir: string;
  /** Where a kind is served (undefined until, e.g., its CRD is established). */
  resolve(apiVersion: string, kind: string): { ref: ResourceRef; namespaced: boolean } | undefined;
  /** How often the directory is looked at again (k3s reacts to file events; a few seconds here). */
  intervalMs?: number;
}

/** The Addon CRD k3s installs, so that `kubectl get addons -A` answers as it does on k3s. */
export function addonCrd(): KObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'addons.k3s.cattle.io' },
    spec: {
      group: 'k3s.cattle.io', scope: 'Namespaced',
      names: { plural: 'addons', singular: 'addon', kind: 'Addon', listKind: 'AddonList' },
      versions: [{
        name: 'v1', served: true, storage: true,
        schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } },
        additionalPrinterColumns: [
          { name: 'Source', type: 'string', jsonPath: '.spec.source' },
          { name: 'Checksum', type: 'string', jsonPath: '.spec.checksum' },
        ],
      }],
    },
  };
}

/** The manifest files under `dir`, sorted by path, without those a `.skip` file turns off. */
export function manifestFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && EXTENSIONS.has(extname(e.name)) && !existsSync(`${p}.skip`)) out.push(p);
    }
  };
  if (existsSync(dir)) walk(dir);
  return out.sort();
}

/** The objects a file holds: every YAML document, `List` items spread, empty documents skipped. */
export async function parseManifest(text: string): Promise<KObject[]> {
  const { parseAllDocuments } = await import('yaml');
  const out: KObject[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length) throw new Error(doc.errors[0]!.message);
    const v = doc.toJSON() as unknown;
    if (v === null || v === undefined) continue;
    if (typeof v !== 'object' || Array.isArray(v)) throw new Error('a document is not an object');
    const o = v as KObject & { items?: KObject[] };
    if (typeof o.kind === 'string' && o.kind.endsWith('List') && Array.isArray(o.items)) out.push(...o.items);
    else out.push(o);
  }
  return out;
}

export function startManifestDeployer(ctx: ControllerContext, opts: ManifestOptions): RunningController {
  mkdirSync(opts.dir, { recursive: true });
  /** path → [mtime+size seen, checksum applied]: unchanged files are not read again. */
  const seen = new Map<string, { stamp: string; applied?: string }>();
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;

  const applyFile = async (path: string, text: string, checksum: string): Promise<void> => {
    const name = basename(path, extname(path));
    if (!RFC1123.test(name)) throw new Error(`Addon.k3s.cattle.io "${name}" is invalid: metadata.name: Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character`);
    const addon = await ctx.client.patch(ADDONS, ADDON_NAMESPACE, name, 'apply',
      { apiVersion: 'k3s.cattle.io/v1', kind: 'Addon', metadata: { name, namespace: ADDON_NAMESPACE }, spec: { source: path } },
      { fieldManager: FIELD_MANAGER, force: true });
    try {
      for (const obj of await parseManifest(text)) {
        const { apiVersion, kind } = obj as { apiVersion?: string; kind?: string };
        const objName = obj.metadata?.name;
        if (!apiVersion || !kind || !objName) throw new Error('every object needs apiVersion, kind and metadata.name');
        const where = opts.resolve(apiVersion, kind);
        if (!where) throw new Error(`no matches for kind "${kind}" in version "${apiVersion}"`);
        const ns = where.namespaced ? obj.metadata!.namespace || 'default' : undefined;
        if (ns) obj.metadata = { ...obj.metadata, namespace: ns };
        await ctx.client.patch(where.ref, ns, objName, 'apply', obj, { fieldManager: FIELD_MANAGER, force: true });
      }
    } catch (err) {
      ctx.events.record(addon, 'Warning', 'ApplyManifestFailed', `Applying manifest at "${path}" failed: ${(err as Error).message}`);
      throw err;
    }
    await ctx.client.patch(ADDONS, ADDON_NAMESPACE, name, 'apply',
      { apiVersion: 'k3s.cattle.io/v1', kind: 'Addon', metadata: { name, namespace: ADDON_NAMESPACE }, spec: { source: path, checksum } },
      { fieldManager: FIELD_MANAGER, force: true });
    ctx.events.record(addon, 'Normal', 'AppliedManifest', `Applied manifest at "${path}"`);
  };

  const pass = async (): Promise<void> => {
    for (const path of manifestFiles(opts.dir)) {
      if (stopped) return;
      let stamp: string;
      try {
        const st = statSync(path);
        stamp = `${st.mtimeMs}:${st.size}`;
      } catch {
        continue;  // removed meanwhile
      }
      const known = seen.get(path);
      if (known?.stamp === stamp && known.applied) continue;
      const text = readFileSync(path, 'utf8');
      const checksum = createHash('sha256').update(text).digest('hex');
      if (known?.applied === checksum) { known.stamp = stamp; continue; }
      try {
        await applyFile(path, text, checksum);
        seen.set(path, { stamp, applied: checksum });
        log.info({ path }, 'applied manifest');
      } catch (err) {
        seen.set(path, { stamp });
        log.warn({ path, err: (err as Error).message }, 'applying manifest failed; retrying');
      }
    }
  };

  const loop = async () => {
    await pass().catch((err: unknown) => log.warn({ err: err instanceof Error ? err.message : String(err) }, 'manifest pass failed'));
    if (!stopped) timer = setTimeout(() => { running = loop(); }, opts.intervalMs ?? 5_000);
  };
  let running = loop();
  return {
    name: 'manifests',
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
    },
  };
}
