// Discovery documents: legacy (/api, /apis, per group-version APIResourceList) and aggregated v2
// (what kubectl 1.32 asks for first: one round trip for everything). Rebuilt only when the set of
// served kinds changes (CRDs).
import type { KindInfo } from '../api/kinds.js';
import { compareVersions, type ResourceRegistry } from './registry.js';

/** Group versions served by aggregated API servers (aggregation/remote-discovery.ts). */
export interface ExternalDiscovery {
  /** Bumped at every change; cheap cache key. */
  version(): number;
  /** In discovery order; resources already in the aggregated (v2) form; stale: the backend is not answering. */
  groups(): ExternalGroup[];
}

export interface ExternalGroup {
  group: string;
  versions: { version: string; resources: unknown[]; stale: boolean }[];
}

interface MergedVersion { version: string; external?: { resources: unknown[]; stale: boolean } }

export const AGGREGATED_CONTENT_TYPE = 'application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList';
const AGGREGATED_V2BETA1_TYPE = 'application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList';

/** Which aggregated version the Accept header asks for, if any. */
export function wantsAggregated(accept: string | undefined): 'v2' | 'v2beta1' | undefined {
  if (!accept) return undefined;
  for (const part of accept.split(',')) {
    const p = part.trim();
    if (!p.includes('as=APIGroupDiscoveryList') || !p.includes('g=apidiscovery.k8s.io')) {
      if (p.startsWith('application/json') && !p.includes('as=')) return undefined;
      continue;
    }
    if (p.includes('v=v2beta1')) return 'v2beta1';
    if (p.includes('v=v2')) return 'v2';
  }
  return undefined;
}

export function aggregatedContentType(v: 'v2' | 'v2beta1'): string {
  return v === 'v2' ? AGGREGATED_CONTENT_TYPE : AGGREGATED_V2BETA1_TYPE;
}

const SUB_KINDS: Record<string, { kind: string; group?: string; version?: string; verbs: string[] }> = {
  status: { kind: '', verbs: ['get', 'patch', 'update'] },
  scale: { kind: 'Scale', group: 'autoscaling', version: 'v1', verbs: ['get', 'patch', 'update'] },
  binding: { kind: 'Binding', verbs: ['create'] },
  eviction: { kind: 'Eviction', group: 'policy', version: 'v1', verbs: ['create'] },
  log: { kind: 'Pod', verbs: ['get'] },
  exec: { kind: 'PodExecOptions', verbs: ['create', 'get'] },
  attach: { kind: 'PodAttachOptions', verbs: ['create', 'get'] },
  portforward: { kind: 'PodPortForwardOptions', verbs: ['create', 'get'] },
  proxy: { kind: 'PodProxyOptions', verbs: ['create', 'delete', 'get', 'patch', 'update'] },
  token: { kind: 'TokenRequest', group: 'authentication.k8s.io', version: 'v1', verbs: ['create'] },
  finalize: { kind: 'Namespace', verbs: ['update'] },
  ephemeralcontainers: { kind: 'Pod', verbs: ['get', 'patch', 'update'] },
  approval: { kind: '', verbs: ['get', 'patch', 'update'] },
};

export class Discovery {
  private cache = new Map<string, string>();
  private cachedAt = -1;

  private cachedExternal = -1;

  constructor(private readonly registry: ResourceRegistry, private readonly external?: ExternalDiscovery) {}

  private memo(key: string, build: () => unknown): string {
    const ext = this.external?.version() ?? 0;
    if (this.cachedAt !== this.registry.version() || this.cachedExternal !== ext) {
      this.cache.clear(); this.cachedAt = this.registry.version(); this.cachedExternal = ext;
    }
    let s = this.cache.get(key);
    if (s === undefined) { s = JSON.stringify(build()); this.cache.set(key, s); }
    return s;
  }

  /**
   * The served groups: the registry's, with an aggregated APIService taking over the group versions
   * it names (a user's metrics.k8s.io replaces skiff's own), then groups only backends serve.
   */
  private merged(): { group: string; versions: MergedVersion[] }[] {
    const ext = this.external?.groups() ?? [];
    if (!ext.length) return this.registry.groups().map((g) => ({ group: g.group, versions: g.versions.map((version) => ({ version })) }));
    const extByGroup = new Map(ext.map((g) => [g.group, g]));
    const out: { group: string; versions: MergedVersion[] }[] = [];
    for (const g of this.registry.groups()) {
      const e = extByGroup.get(g.group);
      extByGroup.delete(g.group);
      if (!e) { out.push({ group: g.group, versions: g.versions.map((version) => ({ version })) }); continue; }
      const taken = new Set(e.versions.map((v) => v.version));
      const versions: MergedVersion[] = [
        ...g.versions.filter((v) => !taken.has(v)).map((version) => ({ version })),
        ...e.versions.map((v) => ({ version: v.version, external: v })),
      ].sort((a, b) => compareVersions(a.version, b.version));
      out.push({ group: g.group, versions });
    }
    for (const e of extByGroup.values()) out.push({ group: e.group, versions: e.versions.map((v) => ({ version: v.version, external: v })) });
    return out;
  }

  /** True when an aggregated API server serves this group version (its resources are not ours). */
  private isExternal(group: string, version: string): boolean {
    return (this.external?.groups() ?? []).some((g) => g.group === group && g.versions.some((v) => v.version === version));
  }

  apiVersions(): string {
    return this.memo('api', () => ({ kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '' }] }));
  }

  apiGroupList(): string {
    return this.memo('apis', () => ({
      kind: 'APIGroupList', apiVersion: 'v1',
      groups: this.merged().filter((g) => g.group !== '').map((g) => groupEntry(g.group, g.versions.map((v) => v.version))),
    }));
  }

  apiGroup(group: string): string | undefined {
    const g = this.merged().find((x) => x.group === group && group !== '');
    if (!g) return undefined;
    return this.memo(`group:${group}`, () => ({ kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(g.group, g.versions.map((v) => v.version)) }));
  }

  resourceList(group: string, version: string): string | undefined {
    const kinds = this.registry.kindsIn(group, version);
    if (kinds.length === 0 || this.isExternal(group, version)) return undefined;
    return this.memo(`rl:${group}/${version}`, () => ({
      kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version,
      resources: kinds.flatMap((k) => [legacyResource(k), ...(k.subresources ?? []).map((s) => legacySubresource(k, s))]),
    }));
  }

  aggregated(prefix: 'api' | 'apis', v: 'v2' | 'v2beta1'): string {
    return this.memo(`agg:${prefix}:${v}`, () => ({
      kind: 'APIGroupDiscoveryList', apiVersion: `apidiscovery.k8s.io/${v}`, metadata: {},
      items: this.merged()
        .filter((g) => (prefix === 'api' ? g.group === '' : g.group !== ''))
        .map((g) => ({
          metadata: { name: g.group, creationTimestamp: null },
          versions: g.versions.map(({ version, external }) => (external ? {
            // A backend that stopped answering: clients list the group version as failed.
            version, resources: external.resources, freshness: external.stale ? 'Stale' : 'Current',
          } : {
            version,
            resources: this.registry.kindsIn(g.group, version).map(aggregatedResource),
            freshness: 'Current',
          })),
        })),
    }));
  }
}

function groupEntry(group: string, versions: string[]) {
  const vs = versions.map((v) => ({ groupVersion: `${group}/${v}`, version: v }));
  return { name: group, versions: vs, preferredVersion: vs[0] };
}

function legacyResource(k: KindInfo) {
  return {
    name: k.plural, singularName: k.singular, namespaced: k.namespaced, kind: k.kind, verbs: k.verbs,
    ...(k.shortNames?.length ? { shortNames: k.shortNames } : {}),
    ...(k.categories?.length ? { categories: k.categories } : {}),
    storageVersionHash: hash8(`${k.group}/${k.version}/${k.kind}`),
  };
}

function legacySubresource(k: KindInfo, s: string) {
  const d = SUB_KINDS[s];
  return {
    name: `${k.plural}/${s}`, singularName: '', namespaced: k.namespaced, kind: d.kind || k.kind, verbs: d.verbs,
    ...(d.group ? { group: d.group, version: d.version } : {}),
  };
}

function aggregatedResource(k: KindInfo) {
  return {
    resource: k.plural, singularResource: k.singular,
    responseKind: { group: k.group, version: k.version, kind: k.kind },
    scope: k.namespaced ? 'Namespaced' : 'Cluster', verbs: k.verbs,
    ...(k.shortNames?.length ? { shortNames: k.shortNames } : {}),
    ...(k.categories?.length ? { categories: k.categories } : {}),
    ...((k.subresources ?? []).length ? {
      subresources: (k.subresources ?? []).map((s) => {
        const d = SUB_KINDS[s];
        return {
          subresource: s,
          responseKind: { group: d.group ?? k.group, version: d.version ?? k.version, kind: d.kind || k.kind },
          verbs: d.verbs,
        };
      }),
    } : {}),
  };
}

/** A short stable hash (storageVersionHash is opaque to clients; only changes matter). */
function hash8(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) { h ^= s.charCodeAt(i); h = Math.imul(h, 16777619); }
  return Buffer.from(Uint32Array.of(h >>> 0).buffer).toString('base64').slice(0, 11);
}
