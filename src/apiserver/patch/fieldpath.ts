// Sets of field paths, the unit of server-side apply ownership, and their wire form `FieldsV1`.
// A path element is kept in its FieldsV1 spelling, which is canonical and doubles as a map key:
//   `f:<name>` a field, `k:{"name":"app"}` the element of a map-list with those key values (keys
//   sorted), `v:<json>` the element of a set, `i:<n>` a list index.
// In FieldsV1 each element maps to the subset below it; `{}` marks a member without children and
// `".": {}` marks a member that also has children.

import { isPlainObject } from '../../api/object.js';

export type PathElement = string;
export type Path = readonly PathElement[];

export const pathElement = {
  field: (name: string): PathElement => `f:${name}`,
  /** A map-list element, from its key fields (in any order). */
  key: (fields: [string, unknown][]): PathElement => (fields.length === 1
    ? `k:{${goJson(fields[0][0])}:${goJson(fields[0][1])}}`
    : `k:{${[...fields].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([n, v]) => `${goJson(n)}:${goJson(v)}`).join(',')}}`),
  value: (v: unknown): PathElement => `v:${goJson(v)}`,
  index: (i: number): PathElement => `i:${i}`,
};

/** JSON as Go's encoder writes it (it escapes <, > and & and the JS line separators). */
function goJson(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One element as Kubernetes prints it in conflict messages: `.name`, `[name="app"]`, `[="x"]`, `[0]`. */
export function pathElementString(pe: PathElement): string {
  const body = pe.slice(2);
  switch (pe[0]) {
    case 'f': return `.${body}`;
    case 'k': {
      const fields = JSON.parse(body) as Record<string, unknown>;
      return `[${Object.entries(fields).map(([k, v]) => `${k}=${scalarString(v)}`).join(',')}]`;
    }
    case 'v': return `[=${scalarString(JSON.parse(body))}]`;
    default: return `[${body}]`;
  }
}

export function pathString(path: Path): string {
  return path.map(pathElementString).join('');
}

function scalarString(v: unknown): string {
  return typeof v === 'string' ? JSON.stringify(v) : v === null ? 'null' : typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** Kubernetes' order of path elements: fields, then keys, then values, then indices. */
function comparePathElements(a: PathElement, b: PathElement): number {
  const rank = (pe: PathElement) => 'fkvi'.indexOf(pe[0]);
  const r = rank(a) - rank(b);
  if (r !== 0) return r;
  if (a[0] === 'i') return Number(a.slice(2)) - Number(b.slice(2));
  return a < b ? -1 : a > b ? 1 : 0;
}

/** An immutable-by-convention set of paths: members at this level and subsets below each element. */
export class FieldSet {
  readonly members = new Set<PathElement>();
  readonly children = new Map<PathElement, FieldSet>();

  static fromPaths(paths: Iterable<Path>): FieldSet {
    const s = new FieldSet();
    for (const p of paths) s.insert(p);
    return s;
  }

  /** Adds a path (the empty path is not a member of anything and is ignored). */
  insert(path: Path): void {
    const last = path.length - 1;
    if (last < 0) return;
    let cur: FieldSet = this;
    for (let i = 0; i < last; i++) cur = cur.childOrCreate(path[i]);
    cur.members.add(path[last]);
  }

  private childOrCreate(pe: PathElement): FieldSet {
    let c = this.children.get(pe);
    if (!c) {
      c = new FieldSet();
      this.children.set(pe, c);
    }
    return c;
  }

  has(path: Path): boolean {
    const last = path.length - 1;
    if (last < 0) return false;
    let cur: FieldSet | undefined = this;
    for (let i = 0; i < last; i++) {
      cur = cur.children.get(path[i]);
      if (!cur) return false;
    }
    return cur.members.has(path[last]);
  }

  get empty(): boolean {
    return this.members.size === 0 && this.children.size === 0;
  }

  /**
   * Paths in either set. One of the two itself when it holds the other, and parts only one side has
   * are shared, not copied (as in `difference`): a write that changes fields its manager already
   * owns then keeps the manager's set as it was, which is encoded once and written back as is.
   */
  union(o: FieldSet): FieldSet {
    if (o === this || o.empty) return this;
    if (this.empty || this.subsetOf(o)) return o;
    if (o.subsetOf(this)) return this;
    const s = new FieldSet();
    for (const m of this.members) s.members.add(m);
    for (const m of o.members) s.members.add(m);
    for (const [pe, c] of this.children) {
      const oc = o.children.get(pe);
      s.children.set(pe, oc ? c.union(oc) : c);
    }
    for (const [pe, c] of o.children) if (!s.children.has(pe)) s.children.set(pe, c);
    return s;
  }

  /** Whether every path of this set is in `o`. */
  subsetOf(o: FieldSet): boolean {
    if (o === this) return true;
    for (const m of this.members) if (!o.members.has(m)) return false;
    for (const [pe, c] of this.children) {
      const oc = o.children.get(pe);
      if (!oc || !c.subsetOf(oc)) return false;
    }
    return true;
  }

  /**
   * Paths of this set not in `o` (a member of `o` removes only that path, not those below it).
   * This set itself when nothing is removed, and unchanged parts are shared, not copied: sets are
   * not changed once built (only `insert` changes one, while it is being built).
   */
  difference(o: FieldSet): FieldSet {
    // Most sets lose nothing (a manager keeps its fields through another's write): said without
    // building the copy that would be thrown away.
    if (o.empty || !this.overlaps(o)) return this;
    let removed = false;
    const s = new FieldSet();
    for (const m of this.members) {
      if (o.members.has(m)) removed = true;
      else s.members.add(m);
    }
    for (const [pe, c] of this.children) {
      const oc = o.children.get(pe);
      const d = oc ? c.difference(oc) : c;
      if (d !== c) removed = true;
      if (!d.empty) s.children.set(pe, d);
    }
    return removed ? s : this;
  }

  /** Whether `difference(o)` removes anything: a member of both, at the same place. */
  private overlaps(o: FieldSet): boolean {
    for (const m of this.members) if (o.members.has(m)) return true;
    if (o.children.size === 0) return false;
    for (const [pe, c] of this.children) {
      const oc = o.children.get(pe);
      if (oc && c.overlaps(oc)) return true;
    }
    return false;
  }

  /** Whether `withoutPrefixes(prefixes)` removes anything: a path that is or lies below one of theirs. */
  private reaches(prefixes: FieldSet): boolean {
    for (const m of this.members) if (prefixes.members.has(m)) return true;
    for (const [pe, c] of this.children) {
      if (prefixes.members.has(pe)) return true;
      const pc = prefixes.children.get(pe);
      if (pc && c.reaches(pc)) return true;
    }
    return false;
  }

  intersection(o: FieldSet): FieldSet {
    const s = new FieldSet();
    for (const m of this.members) if (o.members.has(m)) s.members.add(m);
    for (const [pe, c] of this.children) {
      const oc = o.children.get(pe);
      if (!oc) continue;
      const i = c.intersection(oc);
      if (!i.empty) s.children.set(pe, i);
    }
    return s;
  }

  /**
   * Paths of this set that neither are in `prefixes` nor lie below one of its members: this set
   * itself when none is, with unchanged parts shared.
   */
  withoutPrefixes(prefixes: FieldSet): FieldSet {
    if (prefixes.empty || !this.reaches(prefixes)) return this;
    let removed = false;
    const s = new FieldSet();
    for (const m of this.members) {
      if (prefixes.members.has(m)) removed = true;
      else s.members.add(m);
    }
    for (const [pe, c] of this.children) {
      if (prefixes.members.has(pe)) { removed = true; continue; }
      const pc = prefixes.children.get(pe);
      const d = pc ? c.withoutPrefixes(pc) : c;
      if (d !== c) removed = true;
      if (!d.empty) s.children.set(pe, d);
    }
    return removed ? s : this;
  }

  /** Every member path, members of a level before the levels below it, each level in Kubernetes' order. */
  paths(prefix: Path = []): Path[] {
    const out: Path[] = [...this.members].sort(comparePathElements).map((m) => [...prefix, m]);
    for (const pe of [...this.children.keys()].sort(comparePathElements)) {
      out.push(...this.children.get(pe)!.paths([...prefix, pe]));
    }
    return out;
  }

  toFieldsV1(): Record<string, unknown> {
    return this.encode(false);
  }

  private encode(self: boolean): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    if (self && !this.empty) out['.'] = {};
    const all = [...this.members];
    for (const pe of this.children.keys()) if (!this.members.has(pe)) all.push(pe);
    for (const pe of all.sort(comparePathElements)) {
      const c = this.children.get(pe);
      out[pe] = c ? c.encode(this.members.has(pe)) : {};
    }
    return out;
  }

  /** Decodes FieldsV1; throws an Error naming what is wrong. */
  static fromFieldsV1(v: unknown): FieldSet {
    if (!isPlainObject(v)) throw new Error('FieldsV1 must be an object');
    const s = new FieldSet();
    // Loops without entry arrays: a write decodes its object's managed fields when they are not
    // among the recent decodes (managed-fields.ts).
    for (const raw in v) {
      if (!Object.hasOwn(v, raw) || raw === '.') continue;
      const sub = v[raw];
      const pe = canonical(raw);
      if (!isPlainObject(sub)) throw new Error(`FieldsV1 entry ${JSON.stringify(pe)} must be an object`);
      let dot = false;
      let below = false;
      for (const k in sub) {
        if (!Object.hasOwn(sub, k)) continue;
        if (k === '.') dot = true;
        else below = true;
      }
      if (dot || !below) s.members.add(pe);
      if (below) s.children.set(pe, FieldSet.fromFieldsV1(sub));
    }
    return s;
  }
}

/** A path element as this module spells it (clients may order key fields differently). */
function canonical(pe: string): PathElement {
  if (pe.startsWith('f:')) return pe;
  const body = pe.slice(2);
  try {
    switch (pe.slice(0, 2)) {
      case 'f:': return pe;
      case 'i:':
        if (/^\d+$/.test(body)) return pe;
        break;
      case 'v:': return pathElement.value(JSON.parse(body));
      case 'k:': {
        const fields: unknown = JSON.parse(body);
        if (isPlainObject(fields)) return pathElement.key(Object.entries(fields));
        break;
      }
    }
  } catch {
    // reported below
  }
  throw new Error(`invalid path element ${JSON.stringify(pe)}`);
}
