// From "what should be in the table" to one nft transaction that makes it so, touching only what
// differs. The desired table is the union of fragments, one per owner (a Service, or '' for the
// static part); when two owners claim the same object (two Services listing the same externalIP and
// port), the smallest owner key wins, so the result never depends on event order and a clash can
// not fail the whole transaction with "File exists".
//
// What is in the kernel is kept as fingerprints: each chain's first rule carries a comment with a
// hash of the chain's rules, so after an agent restart the state read back from the kernel
// (nft-state.ts) compares with the desired table without parsing rule expressions, and only the
// chains, map elements and sets that differ are rewritten.
import { createHash } from 'node:crypto';
import { elementKey, splitElementKey, type ChainSpec, type ContainerSpec, type TableFragment } from './nft-rules.js';

export interface TableState {
  exists: boolean;
  /** chain → `ruleCount:hash`. */
  chains: Map<string, string>;
  /** `container \0 key` → value ('' for set elements). */
  elements: Map<string, string>;
  /** map or set → kind. */
  containers: Map<string, 'map' | 'set'>;
}

export const emptyState = (): TableState => ({ exists: false, chains: new Map(), elements: new Map(), containers: new Map() });

export interface Scope { chains: Set<string>; elements: Set<string>; containers: Set<string> }
export const emptyScope = (): Scope => ({ chains: new Set(), elements: new Set(), containers: new Set() });

export const FINGERPRINT_PREFIX = 'skiff:';

const hashes = new WeakMap<ChainSpec, string>();

/** The hash of a chain's rules (kept per spec object: a full reconcile asks for 10,000s). */
export function chainHash(spec: ChainSpec): string {
  let h = hashes.get(spec);
  if (h === undefined) {
    h = createHash('sha256').update(`${spec.base ?? ''}\n${spec.rules.join('\n')}`).digest('hex').slice(0, 16);
    hashes.set(spec, h);
  }
  return h;
}

export const fingerprint = (spec: ChainSpec) => spec.fp ?? `${spec.rules.length}:${chainHash(spec)}`;

/**
 * Drops the rule text of a fragment whose chains are in the kernel, keeping their fingerprints: a
 * chain is only written again from a new fragment (its Service changed) or at the next start, so
 * the text would sit in memory for nothing (about half the proxy's heap with 1,000 Services).
 */
export function release(fragment: TableFragment): void {
  for (const spec of fragment.chains.values()) {
    if (spec.fp !== undefined) continue;
    spec.fp = fingerprint(spec);
    spec.rules = [];
  }
}

/** The union of owners' fragments; the smallest owner key wins a clash. */
export class DesiredTable {
  private readonly fragments = new Map<string, TableFragment>();
  private readonly chainOwners = new Map<string, string[]>();
  private readonly elementOwners = new Map<string, string[]>();
  private readonly containerOwners = new Map<string, string[]>();

  /** Replaces `owner`'s fragment (undefined removes it); returns the previous one and the names touched. */
  set(owner: string, fragment: TableFragment | undefined, scope: Scope = emptyScope()): { previous?: TableFragment; scope: Scope } {
    const previous = this.fragments.get(owner);
    if (previous) {
      for (const k of previous.chains.keys()) { drop(this.chainOwners, k, owner); scope.chains.add(k); }
      for (const k of previous.elements.keys()) { drop(this.elementOwners, k, owner); scope.elements.add(k); }
      for (const k of previous.containers.keys()) { drop(this.containerOwners, k, owner); scope.containers.add(k); }
      this.fragments.delete(owner);
    }
    if (fragment) {
      this.fragments.set(owner, fragment);
      for (const k of fragment.chains.keys()) { put(this.chainOwners, k, owner); scope.chains.add(k); }
      for (const k of fragment.elements.keys()) { put(this.elementOwners, k, owner); scope.elements.add(k); }
      for (const k of fragment.containers.keys()) { put(this.containerOwners, k, owner); scope.containers.add(k); }
    }
    return { previous, scope };
  }

  get(owner: string): TableFragment | undefined {
    return this.fragments.get(owner);
  }

  /** Releases every fragment's rule text (after a full reconcile). */
  releaseAll(): void {
    for (const f of this.fragments.values()) release(f);
  }

  chain(name: string): ChainSpec | undefined {
    const o = this.chainOwners.get(name);
    return o ? this.fragments.get(o[0]!)!.chains.get(name) : undefined;
  }

  element(key: string): string | undefined {
    const o = this.elementOwners.get(key);
    return o ? this.fragments.get(o[0]!)!.elements.get(key) : undefined;
  }

  container(name: string): ContainerSpec | undefined {
    const o = this.containerOwners.get(name);
    return o ? this.fragments.get(o[0]!)!.containers.get(name) : undefined;
  }

  /** Every name in the desired table. */
  scope(into: Scope = emptyScope()): Scope {
    for (const k of this.chainOwners.keys()) into.chains.add(k);
    for (const k of this.elementOwners.keys()) into.elements.add(k);
    for (const k of this.containerOwners.keys()) into.containers.add(k);
    return into;
  }

  counts(): { chains: number; elements: number; containers: number } {
    return { chains: this.chainOwners.size, elements: this.elementOwners.size, containers: this.containerOwners.size };
  }
}

/** Owners kept sorted, so [0] is the winner. */
function put(m: Map<string, string[]>, k: string, owner: string): void {
  const list = m.get(k);
  if (!list) { m.set(k, [owner]); return; }
  if (list.includes(owner)) return;
  list.push(owner);
  list.sort();
}

function drop(m: Map<string, string[]>, k: string, owner: string): void {
  const list = m.get(k);
  if (!list) return;
  const i = list.indexOf(owner);
  if (i >= 0) list.splice(i, 1);
  if (!list.length) m.delete(k);
}

/** All names in `state` (for a full reconcile: what is there but no longer wanted goes). */
export function stateScope(state: TableState, into: Scope = emptyScope()): Scope {
  for (const k of state.chains.keys()) into.chains.add(k);
  for (const k of state.elements.keys()) into.elements.add(k);
  for (const k of state.containers.keys()) into.containers.add(k);
  return into;
}

export interface Plan {
  /** nft commands, one per line; empty when nothing differs. */
  lines: string[];
  /** Records the plan as done in `state` (call after the transaction succeeded). */
  commit(state: TableState): void;
  stats: { chainsWritten: number; chainsDeleted: number; elementsAdded: number; elementsDeleted: number };
  /** Names of the chains written (new or changed). */
  written: string[];
}

/**
 * The commands that take the table from `state` to `desired` for the names in `scope`, ordered so
 * every reference is valid at each step of the transaction: new maps, sets and chains first; map
 * elements that go or change are removed before the chains they point to are rewritten; new
 * elements after their chains exist; stale chains are emptied (dropping their references) and only
 * then deleted, then stale sets.
 */
export function plan(family: string, table: string, state: TableState, desired: DesiredTable, scope: Scope): Plan {
  const t = `${family} ${table}`;
  const lines: string[] = [];
  if (!state.exists) lines.push(`add table ${t}`);
  const newContainers: [string, ContainerSpec][] = [];
  const staleContainers: string[] = [];
  for (const name of scope.containers) {
    const want = desired.container(name);
    const have = state.containers.get(name);
    if (want && !have) newContainers.push([name, want]);
    else if (!want && have) staleContainers.push(name);
  }
  for (const [name, c] of newContainers) lines.push(`add ${c.kind} ${t} ${name} { ${c.body} }`);

  const written: [string, ChainSpec, string][] = [];
  const staleChains: string[] = [];
  for (const name of scope.chains) {
    const want = desired.chain(name);
    const have = state.chains.get(name);
    if (!want) { if (have !== undefined) staleChains.push(name); continue; }
    const fp = fingerprint(want);
    if (have === fp) continue;
    // Only a clash between owners could bring a released chain here; the caller retries with a fresh fragment.
    if (want.fp !== undefined) throw new Error(`chain ${name} must be written again but its rules were released`);
    if (have === undefined) {
      lines.push(want.base ? `add chain ${t} ${name} { ${want.base} }` : `add chain ${t} ${name}`);
    }
    written.push([name, want, fp]);
  }

  const removedElements: string[] = [];
  const addedElements: [string, string][] = [];
  const staleSet = new Set(staleContainers);
  for (const k of scope.elements) {
    const want = desired.element(k);
    const have = state.elements.get(k);
    if (want === have) continue;
    if (have !== undefined && !staleSet.has(splitElementKey(k).container)) removedElements.push(k);
    if (want !== undefined) addedElements.push([k, want]);
  }
  for (const k of removedElements) {
    const { container, key } = splitElementKey(k);
    lines.push(`delete element ${t} ${container} { ${key} }`);
  }
  for (const [name, spec] of written) {
    if (state.chains.has(name)) lines.push(`flush chain ${t} ${name}`);
    const hash = chainHash(spec);
    spec.rules.forEach((r, i) => lines.push(`add rule ${t} ${name} ${r}${i === 0 ? ` comment "${FINGERPRINT_PREFIX}${hash}"` : ''}`));
  }
  for (const [k, v] of addedElements) {
    const { container, key } = splitElementKey(k);
    lines.push(`add element ${t} ${container} { ${key}${v ? ` : ${v}` : ''} }`);
  }
  for (const name of staleChains) lines.push(`flush chain ${t} ${name}`);
  for (const name of staleChains) lines.push(`delete chain ${t} ${name}`);
  for (const name of staleContainers) lines.push(`delete ${state.containers.get(name)} ${t} ${name}`);

  return {
    lines,
    written: written.map(([name]) => name),
    stats: { chainsWritten: written.length, chainsDeleted: staleChains.length, elementsAdded: addedElements.length, elementsDeleted: removedElements.length },
    commit(s: TableState) {
      s.exists = true;
      for (const [name, c] of newContainers) s.containers.set(name, c.kind);
      for (const name of staleContainers) s.containers.delete(name);
      // A deleted map or set takes its elements along (only static ones hold tracked elements).
      if (staleContainers.some((n) => !n.startsWith('affinity-'))) {
        for (const k of [...s.elements.keys()]) if (staleSet.has(splitElementKey(k).container)) s.elements.delete(k);
      }
      for (const [name, , fp] of written) s.chains.set(name, fp);
      for (const name of staleChains) s.chains.delete(name);
      for (const k of removedElements) s.elements.delete(k);
      for (const [k, v] of addedElements) s.elements.set(k, v);
    },
  };
}

export { elementKey };
