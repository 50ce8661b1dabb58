// Discovery documents: legacy (/api, /apis, per group-version APIResourceList) and aggregated v2
// (what kubectl 1.32 asks for first: one round trip for everything). Rebuilt only when the set of
// served kinds changes (CRDs).
import type { KindInfo } from '../api/kinds.js';
import type { ResourceRegistry } from './registry.js';

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

  constructor(private readonly registry: ResourceRegistry) {}

  private memo(key: string, build: () => unknown): string {
    if (this.cachedAt !== this.registry.version()) { this.cache.clear(); this.cachedAt = this.registry.version(); }
    let s = this.cache.get(key);
    if (s === undefined) { s = JSON.stringify(build()); this.cache.set(key, s); }
    return s;
  }

  apiVersions(): string {
    return this.memo('api', () => ({ kind: 'APIVersions', versions: ['v1'], serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '' }] }));
  }

  apiGroupList(): string {
    return this.memo('apis', () => ({
      kind: 'APIGroupList', apiVersion: 'v1',
      groups: this.registry.groups().filter((g) => g.group !== '').map((g) => groupEntry(g.group, g.versions)),
    }));
  }

  apiGroup(group: string): string | undefined {
    const g = this.registry.groups().find((x) => x.group === group && group !== '');
    if (!g) return undefined;
    return this.memo(`group:${group}`, () => ({ kind: 'APIGroup', apiVersion: 'v1', ...groupEntry(g.group, g.versions) }));
  }

  resourceList(group: string, version: string): string | undefined {
    const kinds = this.registry.kindsIn(group, version);
    if (kinds.length === 0) return undefined;
    return this.memo(`rl:${group}/${version}`, () => ({
      kind: 'APIResourceList', apiVersion: 'v1', groupVersion: group ? `${group}/${version}` : version,
      resources: kinds.flatMap((k) => [legacyResource(k), ...(k.subresources ?? []).map((s) => legacySubresource(k, s))]),
    }));
  }

  aggregated(prefix: 'api' | 'apis', v: 'v2' | 'v2beta1'): string {
    return this.memo(`agg:${prefix}:${v}`, () => ({
      kind: 'APIGroupDiscoveryList', apiVersion: `apidiscovery.k8s.io/${v}`, metadata: {},
      items: this.registry.groups()
        .filter((g) => (prefix === 'api' ? g.group === '' : g.group !== ''))
        .map((g) => ({
          metadata: { name: g.group, creationTimestamp: null },
          versions: g.versions.map((version) => ({
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
