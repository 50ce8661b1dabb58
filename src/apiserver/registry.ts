// The live table of served resources: the built-in kinds plus the kinds CRDs add at run time.
import { BUILTIN_KINDS, GROUP_ORDER, storageResource, type KindInfo } from '../api/kinds.js';

export class ResourceRegistry {
  private readonly builtin: KindInfo[];
  private crdKinds = new Map<string, KindInfo[]>();   // CRD name → its served versions
  private byPath = new Map<string, KindInfo>();      // group/version/plural
  private changeListeners: (() => void)[] = [];
  private generation = 0;

  constructor(builtin: KindInfo[] = BUILTIN_KINDS) {
    this.builtin = builtin;
    this.rebuild();
  }

  /** Called with every change of the served set (discovery and OpenAPI caches hang on this). */
  onChange(fn: () => void): void { this.changeListeners.push(fn); }
  /** Bumped at every change; cheap cache key. */
  version(): number { return this.generation; }

  setCrd(name: string, kinds: KindInfo[]): void {
    if (kinds.length === 0) this.crdKinds.delete(name);
    else this.crdKinds.set(name, kinds);
    this.rebuild();
    for (const fn of this.changeListeners) fn();
  }

  all(): KindInfo[] {
    return [...this.builtin, ...[...this.crdKinds.values()].flat()];
  }

  lookup(group: string, version: string, plural: string): KindInfo | undefined {
    return this.byPath.get(`${group}/${version}/${plural}`);
  }

  /** Every served version of the stored resource (e.g. HPA v1 and v2). */
  versionsOf(info: KindInfo): KindInfo[] {
    const s = storageResource(info);
    return this.all().filter((k) => { const o = storageResource(k); return o.group === s.group && o.resource === s.resource; });
  }

  /** Groups in discovery order, each with its versions (preferred first). */
  groups(): { group: string; versions: string[] }[] {
    const m = new Map<string, string[]>();
    for (const k of this.all()) {
      const vs = m.get(k.group) ?? [];
      if (!vs.includes(k.version)) vs.push(k.version);
      m.set(k.group, vs);
    }
    const rank = (g: string) => { const i = GROUP_ORDER.indexOf(g); return i < 0 ? GROUP_ORDER.length : i; };
    return [...m.entries()]
      .sort((a, b) => rank(a[0]) - rank(b[0]) || a[0].localeCompare(b[0]))
      .map(([group, versions]) => ({ group, versions: versions.sort(compareVersions) }));
  }

  kindsIn(group: string, version: string): KindInfo[] {
    return this.all().filter((k) => k.group === group && k.version === version);
  }

  private rebuild(): void {
    this.byPath.clear();
    for (const k of this.all()) this.byPath.set(`${k.group}/${k.version}/${k.plural}`, k);
    this.generation++;
  }
}

/** Kubernetes' version priority: GA > beta > alpha, higher numbers first (v2 > v1 > v1beta2 > v1beta1 > v1alpha1). */
export function compareVersions(a: string, b: string): number {
  const parse = (v: string) => {
    const m = v.match(/^v(\d+)(?:(alpha|beta)(\d+))?$/);
    if (!m) return [0, 0, 0, v] as const;
    const stage = m[2] === 'alpha' ? 1 : m[2] === 'beta' ? 2 : 3;
    return [stage, Number(m[1]), Number(m[3] ?? 0), v] as const;
  };
  const pa = parse(a), pb = parse(b);
  if (pa[0] !== pb[0]) return pb[0] - pa[0];
  if (pa[1] !== pb[1]) return pb[1] - pa[1];
  if (pa[2] !== pb[2]) return pb[2] - pa[2];
  return a.localeCompare(b);
}

/** Storage key of an object: `/<group|core>/<resource>/<ns>/<name>` or `/<group|core>/<resource>/<name>`. */
export function objectKey(info: KindInfo, namespace: string | undefined, name: string): string {
  return collectionPrefix(info, namespace) + name;
}

/** Key prefix of a collection (all namespaces when `namespace` is undefined). */
export function collectionPrefix(info: KindInfo, namespace?: string): string {
  const s = storageResource(info);
  const base = `/${s.group || 'core'}/${s.resource}/`;
  return info.namespaced && namespace ? `${base}${namespace}/` : base;
}
