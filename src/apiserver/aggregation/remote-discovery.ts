// The discovery documents of aggregated API servers, cached: each backend's APIResourceList
// (GET /apis/<group>/<version>, fetched by the availability controller at every check) kept per
// APIService and handed to the server's Discovery, which merges it into /apis, /apis/<group> and
// the aggregated v2 document. A backend that stops answering keeps its last document marked Stale
// (kube-aggregator's freshness), or an empty one if it never answered: the group version stays
// listed, and clients report it as unavailable while the rest of discovery works.
import type { ExternalDiscovery, ExternalGroup } from '../discovery.js';
import { compareVersions } from '../registry.js';

interface Entry {
  group: string;
  version: string;
  groupPriorityMinimum: number;
  versionPriority: number;
  resources: unknown[];
  stale: boolean;
}

export class RemoteDiscovery implements ExternalDiscovery {
  private readonly entries = new Map<string, Entry>();
  private generation = 0;
  private cached: ExternalGroup[] | undefined;

  version(): number { return this.generation; }

  /** A fresh document for an APIService (its resources converted to the aggregated form). */
  set(name: string, gv: GroupVersionPriority, resourceList: unknown): void {
    const resources = toAggregatedResources(gv.group, gv.version, resourceList);
    const old = this.entries.get(name);
    if (old && !old.stale && sameGv(old, gv) && JSON.stringify(old.resources) === JSON.stringify(resources)) return;
    this.entries.set(name, { ...gv, resources, stale: false });
    this.changed();
  }

  /** The backend did not answer: keep what was known, marked stale. */
  markStale(name: string, gv: GroupVersionPriority): void {
    const old = this.entries.get(name);
    if (old && old.stale && sameGv(old, gv)) return;
    this.entries.set(name, { ...gv, resources: old && sameGv(old, gv) ? old.resources : [], stale: true });
    this.changed();
  }

  remove(name: string): void {
    if (this.entries.delete(name)) this.changed();
  }

  has(name: string): boolean { return this.entries.has(name); }

  /** Groups by kube-aggregator's order: highest groupPriorityMinimum first, then name; versions by versionPriority. */
  groups(): ExternalGroup[] {
    if (this.cached) return this.cached;
    const byGroup = new Map<string, Entry[]>();
    for (const e of this.entries.values()) byGroup.set(e.group, [...(byGroup.get(e.group) ?? []), e]);
    const prio = (es: Entry[]) => Math.max(...es.map((e) => e.groupPriorityMinimum));
    this.cached = [...byGroup.entries()]
      .sort((a, b) => prio(b[1]) - prio(a[1]) || a[0].localeCompare(b[0]))
      .map(([group, es]) => ({
        group,
        versions: es.sort((a, b) => b.versionPriority - a.versionPriority || compareVersions(a.version, b.version))
          .map((e) => ({ version: e.version, resources: e.resources, stale: e.stale })),
      }));
    return this.cached;
  }

  private changed(): void {
    this.generation++;
    this.cached = undefined;
  }
}

export interface GroupVersionPriority {
  group: string;
  version: string;
  groupPriorityMinimum: number;
  versionPriority: number;
}

function sameGv(a: GroupVersionPriority, b: GroupVersionPriority): boolean {
  return a.group === b.group && a.version === b.version && a.groupPriorityMinimum === b.groupPriorityMinimum && a.versionPriority === b.versionPriority;
}

/**
 * An APIResourceList's resources in the aggregated discovery form (apidiscovery.k8s.io/v2), as
 * kube-apiserver converts them: `foos/status` becomes a subresource of `foos`; kinds default to the
 * list's group version. Malformed entries are skipped, never thrown on: a backend's document must
 * not break discovery for everyone.
 */
export function toAggregatedResources(group: string, version: string, resourceList: unknown): unknown[] {
  const list = (resourceList as { resources?: unknown })?.resources;
  if (!Array.isArray(list)) return [];
  const parents = new Map<string, Record<string, unknown>>();
  const subs: { parent: string; name: string; r: Record<string, any> }[] = [];
  for (const raw of list) {
    if (!raw || typeof raw !== 'object') continue;
    const r = raw as Record<string, any>;
    if (typeof r.name !== 'string' || !r.name) continue;
    const [parent, sub] = r.name.split('/', 2) as [string, string | undefined];
    if (sub) { subs.push({ parent, name: sub, r }); continue; }
    parents.set(parent, {
      resource: parent,
      responseKind: { group: r.group ?? group, version: r.version ?? version, kind: String(r.kind ?? '') },
      scope: r.namespaced ? 'Namespaced' : 'Cluster',
      singularResource: typeof r.singularName === 'string' ? r.singularName : '',
      verbs: Array.isArray(r.verbs) ? r.verbs.map(String) : [],
      ...(Array.isArray(r.shortNames) && r.shortNames.length ? { shortNames: r.shortNames.map(String) } : {}),
      ...(Array.isArray(r.categories) && r.categories.length ? { categories: r.categories.map(String) } : {}),
    });
  }
  for (const s of subs) {
    const p = parents.get(s.parent);
    if (!p) continue;
    const list = (p.subresources as unknown[] | undefined) ?? [];
    list.push({
      subresource: s.name,
      responseKind: { group: s.r.group ?? group, version: s.r.version ?? version, kind: String(s.r.kind ?? '') },
      verbs: Array.isArray(s.r.verbs) ? s.r.verbs.map(String) : [],
    });
    p.subresources = list;
  }
  return [...parents.values()];
}
