// GitRepo → Bundles (Fleet's GitRepo, the parts skiff implements): a control loop keyed by GitRepo
// fetches `spec.repo` over HTTP(S) with isomorphic-git (pure JS: no git binary on the manager),
// at `spec.revision` (a tag, or a commit of the branch) or the head of `spec.branch` (default: the
// remote's default branch), every `spec.pollingInterval` (Fleet's default, 15 s) or at once when the
// webhook (`POST /v1-skiff/fleet/webhook`, GitHub/GitLab/Gitea push payloads) names the repo.
// Each of `spec.paths` (default: the root) becomes one Bundle `<gitrepo>-<path>` with the path's
// manifests (*.yaml, *.yml, *.json, recursively) and the GitRepo's targets and options; a
// `fleet.yaml` in the path may set defaultNamespace, keepResources, paused, dependsOn,
// rolloutStrategy and the Bundle's labels.
//
// A path that is missing or holds invalid YAML leaves its Bundle as it was (the sites keep the last
// good version) and says so in the GitRepo's Ready condition; the other paths' Bundles update.
// Manifests too large for one object go to ConfigMaps of at most CHUNK_BYTES each, which the Bundle
// lists in `resourcesFrom`: the content's size is bounded by nothing but the datastore.
import fs from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import git from 'isomorphic-git';
import http from 'isomorphic-git/http/node';
import { parse as parseYaml } from 'yaml';
import type { ApiClient } from '../client/types.js';
import { isAlreadyExists, isNotFound, Resources } from '../client/types.js';
import type { InformerFactory } from '../client/informer-factory.js';
import type { Informer } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';
import { runController, type RunningController } from '../client/controller.js';
import type { KObject } from '../api/object.js';
import { logger } from '../util/log.js';
import { nowRfc3339 } from '../util/time.js';
import { BUNDLES, FLEET_API_VERSION, GITREPO_LABEL, GIT_REPOS, type Bundle, type BundleResource, type BundleSpec, type GitRepo } from './api.js';
import { CHUNK_BYTES } from './content.js';
import { isManifest, parseResources } from './customize.js';
import { setCondition } from './bundle-controller.js';

const log = logger('fleet-gitrepo');
export const WEBHOOK_PATH = '/v1-skiff/fleet/webhook';
const DEFAULT_POLL_MS = 15_000;
/** Inline in the Bundle up to this much content; past it, in ConfigMaps. */
const INLINE_BYTES = 256 * 1024;
/** Keys fleet.yaml may set on the Bundle. */
const FLEET_YAML_KEYS = ['defaultNamespace', 'keepResources', 'paused', 'dependsOn', 'rolloutStrategy'] as const;

/** A Go duration (`15s`, `1m30s`, `2h`) in ms, or undefined when it is not one. */
export function parseDuration(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
  let total = 0, used = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as 'ms' | 's' | 'm' | 'h'];
    used += m[0].length;
  }
  return used === s.length && total > 0 ? total : undefined;
}

/** The bundle name for a path: `<gitrepo>` for the root, else `<gitrepo>-<path as a DNS label>`. */
export function bundleNameFor(repo: string, path: string): string {
  const slug = path.replace(/^\/+|\/+$/g, '').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  const name = slug ? `${repo}-${slug}` : repo;
  return name.length <= 63 ? name : `${name.slice(0, 54)}-${createHash('sha256').update(name).digest('hex').slice(0, 8)}`;
}

/** The repository URLs a push webhook's payload names (GitHub, GitLab, Gitea, Bitbucket shapes). */
export function webhookRepos(body: any): string[] {
  const out = [body?.repository?.clone_url, body?.repository?.html_url, body?.repository?.git_http_url, body?.repository?.url,
    body?.project?.git_http_url, body?.project?.web_url, body?.repository?.links?.html?.href];
  return out.filter((u): u is string => typeof u === 'string' && u.length > 0);
}

export const normalizeRepoUrl = (u: string) => u.trim().replace(/\/+$/, '').replace(/\.git$/, '').toLowerCase();

export interface GitRepoControllerOptions {
  client: ApiClient;
  informers: InformerFactory;
  /** Where clones are kept (one directory per GitRepo). */
  cacheDir: string;
}

interface Seen { commit: string; generation?: number }

export class GitRepoController {
  readonly name = 'fleet-gitrepo';
  private readonly queue = new WorkQueue<string>();
  private readonly repos: Informer<GitRepo>;
  private readonly bundles: Informer<Bundle>;
  private readonly seen = new Map<string, Seen>();
  private controller: RunningController | undefined;

  constructor(private readonly o: GitRepoControllerOptions) {
    this.repos = o.informers.informerFor<GitRepo>(GIT_REPOS);
    this.bundles = o.informers.informerFor<Bundle>(BUNDLES);
  }

  start(): void {
    const key = (r: KObject) => `${r.metadata.namespace}/${r.metadata.name}`;
    this.repos.addHandlers({
      onAdd: (r) => this.queue.add(key(r)),
      onUpdate: (o, r) => { if (o.metadata.generation !== r.metadata.generation) this.queue.add(key(r)); },
      onDelete: (r) => this.queue.add(key(r)),
    });
    // A bundle's readiness changes the GitRepo's Bundles column: a status-only key ('#' prefix), no fetch.
    const ofBundle = (b: Bundle) => { const r = b.metadata.labels?.[GITREPO_LABEL]; if (r) this.queue.add(`#${b.metadata.namespace}/${r}`); };
    this.bundles.addHandlers({ onAdd: ofBundle, onUpdate: (o, b) => { if (o.status?.display?.state !== b.status?.display?.state) ofBundle(b); }, onDelete: ofBundle });
    this.controller = runController({ name: 'fleet-gitrepos', queue: this.queue, workers: 2, informers: [this.repos, this.bundles], reconcile: (k) => this.reconcile(k) });
  }

  async stop(): Promise<void> {
    await this.controller?.stop();
  }

  /** The webhook: polls at once every GitRepo whose repo the payload names; returns how many. */
  trigger(payload: unknown): number {
    const urls = new Set(webhookRepos(payload).map(normalizeRepoUrl));
    let n = 0;
    for (const r of this.repos.list()) {
      if (r.spec?.repo && urls.has(normalizeRepoUrl(r.spec.repo))) { this.queue.add(`${r.metadata.namespace}/${r.metadata.name}`); n++; }
    }
    return n;
  }

  private async reconcile(key: string): Promise<{ requeueAfterMs?: number } | void> {
    if (key.startsWith('#')) {
      const [ns, name] = key.slice(1).split('/') as [string, string];
      const repo = this.repos.getByName(ns, name);
      const ready = repo?.status?.conditions?.find((c) => c.type === 'Ready');
      if (repo && ready) await this.status(repo, { ready: ready.status === 'True', reason: ready.reason ?? '', message: ready.message ?? '' });
      return;
    }
    const [ns, name] = key.split('/') as [string, string];
    const repo = this.repos.getByName(ns, name);
    if (!repo) {
      this.seen.delete(key);
      fs.rmSync(this.dirOf(ns, name), { recursive: true, force: true });
      // Its Bundles and chunk ConfigMaps (owner references would, but only where a garbage collector runs).
      for (const b of this.bundles.list()) {
        if (b.metadata.namespace === ns && b.metadata.labels?.[GITREPO_LABEL] === name) await this.o.client.delete(BUNDLES, ns, b.metadata.name!).catch(() => undefined);
      }
      const chunks = await this.o.client.list(Resources.configMaps, ns, { labelSelector: `${GITREPO_LABEL}=${name}` }).catch(() => ({ items: [] }));
      for (const cm of chunks.items) await this.o.client.delete(Resources.configMaps, ns, cm.metadata.name!).catch(() => undefined);
      return;
    }
    const poll = parseDuration(repo.spec?.pollingInterval) ?? DEFAULT_POLL_MS;
    if (repo.spec?.paused) return;
    let commit: string;
    try {
      commit = await this.fetch(repo);
    } catch (e) {
      await this.status(repo, { ready: false, reason: 'FetchFailed', message: `fetching ${repo.spec?.repo}: ${(e as Error).message}` });
      return { requeueAfterMs: poll };
    }
    const prev = this.seen.get(key);
    if (prev && prev.commit === commit && prev.generation === repo.metadata.generation) return { requeueAfterMs: poll };
    const paths = repo.spec?.paths?.length ? repo.spec.paths : ['/'];
    const problems: string[] = [];
    const names: string[] = [];
    for (const p of paths) {
      const bundleName = bundleNameFor(name, p);
      names.push(bundleName);
      try {
        const files = await this.readPath(repo, commit, p);
        await this.writeBundle(repo, bundleName, p, files, commit);
      } catch (e) {
        problems.push(`path "${p}": ${(e as Error).message}`);
      }
    }
    // Bundles of paths no longer listed.
    for (const b of this.bundles.list()) {
      if (b.metadata.namespace === ns && b.metadata.labels?.[GITREPO_LABEL] === name && !names.includes(b.metadata.name!)) {
        await this.o.client.delete(BUNDLES, ns, b.metadata.name!).catch(() => undefined);
      }
    }
    this.seen.set(key, { commit, generation: repo.metadata.generation });
    if (prev?.commit !== commit) log.info({ gitrepo: key, commit, bundles: names.length, problems: problems.length }, 'gitrepo synced');
    await this.status(repo, problems.length
      ? { ready: false, reason: 'InvalidContent', message: `${problems.join('; ')} (the other paths are deployed; these keep their last good version)`, commit, bundles: names }
      : { ready: true, reason: 'Synced', message: '', commit, bundles: names });
    return { requeueAfterMs: poll };
  }

  private dirOf(ns: string, name: string): string {
    return join(this.o.cacheDir, `${ns}--${name}`);
  }

  private async auth(repo: GitRepo): Promise<{ username?: string; password?: string } | undefined> {
    if (!repo.spec?.clientSecretName) return undefined;
    const s = await this.o.client.get<KObject & { data?: Record<string, string> }>(Resources.secrets, repo.metadata.namespace, repo.spec.clientSecretName);
    if (!s?.data) throw new Error(`secret "${repo.spec.clientSecretName}" not found`);
    const dec = (v?: string) => (v ? Buffer.from(v, 'base64').toString('utf8') : undefined);
    return { username: dec(s.data.username), password: dec(s.data.password) };
  }

  /** Fetches the wanted ref into the GitRepo's cache and returns its commit. */
  private async fetch(repo: GitRepo): Promise<string> {
    const dir = this.dirOf(repo.metadata.namespace!, repo.metadata.name!);
    const url = repo.spec?.repo;
    if (!url || !/^https?:\/\//.test(url)) throw new Error('spec.repo must be an http(s) URL');
    if (!fs.existsSync(join(dir, '.git'))) {
      fs.mkdirSync(dir, { recursive: true });
      await git.init({ fs, dir });
    }
    // isomorphic-git fetches through a configured remote; `force` follows a changed spec.repo.
    await git.addRemote({ fs, dir, remote: 'origin', url, force: true });
    const creds = await this.auth(repo);
    const onAuth = creds ? () => creds : undefined;
    const rev = repo.spec?.revision;
    const isSha = !!rev && /^[0-9a-f]{40}$/.test(rev);
    const ref = rev && !isSha ? rev : repo.spec?.branch;
    const r = await git.fetch({ fs, http, dir, remote: 'origin', ...(ref ? { ref } : {}), singleBranch: true, tags: !!rev && !isSha, ...(isSha ? {} : { depth: 1 }), ...(onAuth ? { onAuth } : {}) });
    if (isSha) {
      await git.readCommit({ fs, dir, oid: rev! }).catch(() => { throw new Error(`revision ${rev} is not on ${ref ?? 'the default branch'}`); });
      return rev!;
    }
    if (!r.fetchHead) throw new Error(`no ref ${ref ?? 'HEAD'} in the repository`);
    return r.fetchHead;
  }

  /** The manifests (and fleet.yaml) under a path at a commit. Throws on a missing path or invalid YAML. */
  private async readPath(repo: GitRepo, commit: string, path: string): Promise<BundleResource[]> {
    const dir = this.dirOf(repo.metadata.namespace!, repo.metadata.name!);
    const base = path.replace(/^\/+|\/+$/g, '');
    const out: BundleResource[] = [];
    const walk = async (filepath: string): Promise<void> => {
      let tree;
      try {
        tree = await git.readTree({ fs, dir, oid: commit, ...(filepath ? { filepath } : {}) });
      } catch {
        throw new Error(filepath === base ? 'no such directory in the repository at this commit' : `cannot read ${filepath}`);
      }
      for (const e of tree.tree) {
        const p = filepath ? `${filepath}/${e.path}` : e.path;
        if (e.type === 'tree') await walk(p);
        else if (e.type === 'blob' && (isManifest(e.path) || e.path === 'fleet.yaml')) {
          const { blob } = await git.readBlob({ fs, dir, oid: e.oid });
          out.push({ name: base ? p.slice(base.length + 1) : p, content: Buffer.from(blob).toString('utf8') });
        }
      }
    };
    await walk(base);
    out.sort((a, b) => (a.name! < b.name! ? -1 : 1));
    // Refuse invalid YAML here, naming the file, so the Bundle keeps its last good content.
    parseResources(out.filter((r) => !r.name!.endsWith('fleet.yaml')));
    const manifests = out.filter((r) => r.name !== 'fleet.yaml');
    if (!manifests.length) throw new Error('no manifests (*.yaml, *.yml, *.json) under this path');
    return out;
  }

  private async writeBundle(repo: GitRepo, name: string, path: string, files: BundleResource[], commit: string): Promise<void> {
    const ns = repo.metadata.namespace!;
    const fleetYaml = files.find((f) => f.name === 'fleet.yaml');
    const resources = files.filter((f) => f !== fleetYaml);
    let options: Record<string, unknown> = {};
    let labels: Record<string, string> = {};
    if (fleetYaml) {
      const v = parseYaml(fleetYaml.content ?? '') ?? {};
      if (typeof v !== 'object' || Array.isArray(v)) throw new Error('fleet.yaml: not a mapping');
      for (const k of FLEET_YAML_KEYS) if (k in v) options[k] = v[k];
      if (v.labels && typeof v.labels === 'object') labels = v.labels;
    }
    const spec: BundleSpec = {};
    for (const k of FLEET_YAML_KEYS) if (repo.spec?.[k] !== undefined) (spec as Record<string, unknown>)[k] = repo.spec[k];
    options = { ...spec, ...options };
    const owner = { apiVersion: FLEET_API_VERSION, kind: 'GitRepo', name: repo.metadata.name!, uid: repo.metadata.uid!, controller: true, blockOwnerDeletion: true };
    const size = resources.reduce((n, r) => n + Buffer.byteLength(r.content ?? ''), 0);
    let content: Pick<BundleSpec, 'resources' | 'resourcesFrom'>;
    if (size <= INLINE_BYTES) {
      content = { resources };
    } else {
      content = { resourcesFrom: (await this.writeChunks(ns, name, resources, owner)).map((n) => ({ configMapRef: { name: n } })) };
    }
    const body: Bundle = {
      apiVersion: FLEET_API_VERSION, kind: 'Bundle',
      metadata: {
        name, namespace: ns, labels: { ...labels, [GITREPO_LABEL]: repo.metadata.name! },
        annotations: { 'fleet.skiff.io/commit': commit, 'fleet.skiff.io/path': path }, ownerReferences: [owner],
      },
      spec: { ...options, ...content, targets: repo.spec?.targets ?? [] },
    };
    const cur = this.bundles.getByName(ns, name);
    if (!cur) {
      await this.o.client.create(BUNDLES, ns, body).catch(async (e) => { if (!isAlreadyExists(e)) throw e; });
      return;
    }
    // Chunked content changes in its ConfigMaps, not in the spec: the commit annotation then tells the bundle loop.
    const sameCommit = !content.resourcesFrom || cur.metadata.annotations?.['fleet.skiff.io/commit'] === commit;
    if (sameCommit && JSON.stringify(cur.spec) === JSON.stringify(body.spec) && JSON.stringify(cur.metadata.labels) === JSON.stringify(body.metadata.labels)) return;
    await this.o.client.update(BUNDLES, ns, { ...cur, metadata: { ...cur.metadata, labels: body.metadata.labels, annotations: { ...cur.metadata.annotations, ...body.metadata.annotations } }, spec: body.spec });
  }

  /** Files into ConfigMaps of at most CHUNK_BYTES each (a file never split); returns their names in order. */
  private async writeChunks(ns: string, bundle: string, files: BundleResource[], owner: Record<string, unknown>): Promise<string[]> {
    const groups: BundleResource[][] = [[]];
    let size = 0;
    for (const f of files) {
      const n = Buffer.byteLength(f.content ?? '');
      if (n > CHUNK_BYTES * 1.8) throw new Error(`${f.name}: ${n} bytes, more than one ConfigMap holds; split the file`);
      if (size + n > CHUNK_BYTES && groups[groups.length - 1]!.length) { groups.push([]); size = 0; }
      groups[groups.length - 1]!.push(f);
      size += n;
    }
    const names: string[] = [];
    for (const [i, g] of groups.entries()) {
      const name = `${bundle}-files-${i}`;
      names.push(name);
      const data: Record<string, string> = {};
      // ConfigMap keys cannot hold '/': the path's separators become '.'.
      for (const f of g) data[f.name!.replace(/\//g, '.')] = f.content ?? '';
      const cm = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns, labels: { [GITREPO_LABEL]: String(owner.name) }, ownerReferences: [owner] }, data } as unknown as KObject;
      const cur = await this.o.client.get(Resources.configMaps, ns, name);
      if (!cur) await this.o.client.create(Resources.configMaps, ns, cm);
      else await this.o.client.update(Resources.configMaps, ns, { ...cm, metadata: { ...cm.metadata, resourceVersion: cur.metadata.resourceVersion } });
    }
    return names;
  }

  private async status(repo: GitRepo, s: { ready: boolean; reason: string; message: string; commit?: string; bundles?: string[] }): Promise<void> {
    const conditions = setCondition(repo.status?.conditions, { type: 'Ready', status: s.ready ? 'True' : 'False', reason: s.reason, ...(s.message ? { message: s.message } : {}) });
    const bundles = s.bundles ?? repo.status?.bundles ?? [];
    const ready = bundles.filter((n) => this.bundles.getByName(repo.metadata.namespace, n)?.status?.display?.state === 'Ready').length;
    const status: GitRepo['status'] = {
      ...repo.status, conditions, ...(s.commit ? { commit: s.commit, lastPollingTime: nowRfc3339() } : {}), bundles,
      display: { readyBundles: `${ready}/${bundles.length}`, state: s.ready ? 'Synced' : s.reason, ...(s.message ? { message: s.message.slice(0, 300) } : {}) },
    };
    const strip = (x: GitRepo['status']) => JSON.stringify({ ...x, lastPollingTime: undefined, conditions: x?.conditions?.map(({ lastTransitionTime: _t, ...c }) => c) });
    if (strip(status) === strip(repo.status)) return;
    const cur = await this.o.client.get<GitRepo>(GIT_REPOS, repo.metadata.namespace, repo.metadata.name!);
    if (!cur) return;
    await this.o.client.updateStatus(GIT_REPOS, repo.metadata.namespace, { ...cur, status }).catch((e) => { if (!isNotFound(e)) throw e; });
  }
}
