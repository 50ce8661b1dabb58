// Keeps the `skiff-netpol` table equal to the desired fragments (static chains, dispatch, one per
// policy, one per pod), one `nft -f` transaction per batch holding only what the batch changed. The
// diff, the fingerprints that let a restarted agent rewrite only what changed, and the kernel reader
// are the service proxy's (proxy/nft-diff.ts, proxy/nft-state.ts): one writer pattern for both tables.
import { logger } from '../../../util/log.js';
import { DesiredTable, emptyScope, plan, stateScope, type TableState } from '../proxy/nft-diff.js';
import type { TableFragment } from '../proxy/nft-rules.js';
import { deleteTable, readTableState } from '../proxy/nft-state.js';
import { NftSession } from '../nft-session.js';

const log = logger('network-policy');

export const DEFAULT_POLICY_TABLE = 'skiff-netpol';
export const POLICY_FAMILY = 'ip';

export interface PolicyWriterOptions {
  table?: string;
  /** Runs a script as one transaction (default `nft -f -`); injectable for tests. */
  run?: (script: string) => Promise<void>;
  /** Reads the table's state (default `nft -j list table`). */
  read?: (family: string, table: string) => Promise<TableState>;
}

export interface TransactionStats { lines: number; ms: number; chainsWritten: number; elementsAdded: number; elementsDeleted: number }

export class PolicyTableWriter {
  readonly table: string;
  private state: TableState | undefined;
  private readonly desired = new DesiredTable();
  private readonly owners = new Set<string>();
  private readonly run: (script: string) => Promise<void>;
  /** A long-lived `nft -i` (nft-session.ts): a pod's admission costs a transaction, not an nft start and a cache load. */
  private readonly session = new NftSession();
  private readonly read: (family: string, table: string) => Promise<TableState>;
  /** Figures of the last transaction (logs, benchmark). */
  lastStats: TransactionStats = { lines: 0, ms: 0, chainsWritten: 0, elementsAdded: 0, elementsDeleted: 0 };

  constructor(o: PolicyWriterOptions = {}) {
    this.table = o.table ?? DEFAULT_POLICY_TABLE;
    this.run = o.run ?? ((script) => this.session.run(script));
    this.read = o.read ?? readTableState;
  }

  get initialized(): boolean {
    return this.state !== undefined;
  }

  /** Owners now in the desired table. */
  ownerKeys(): IterableIterator<string> {
    return this.owners.values();
  }

  /**
   * Makes the kernel's table match `fragments` (all owners), reading what is there first: after an
   * agent restart only what differs is written, nothing is flushed, and traffic keeps its rules.
   */
  async init(fragments: Map<string, TableFragment>): Promise<void> {
    for (const owner of [...this.owners]) if (!fragments.has(owner)) this.setOwner(owner, undefined);
    for (const [owner, f] of fragments) this.setOwner(owner, f);
    const t0 = performance.now();
    const state = await this.read(POLICY_FAMILY, this.table);
    const scope = stateScope(state, this.desired.scope());
    const p = plan(POLICY_FAMILY, this.table, state, this.desired, scope);
    await this.transact(p.lines, p.stats);
    p.commit(state);
    this.state = state;
    log.info({ table: this.table, ...this.desired.counts(), ...p.stats, ms: Math.round(performance.now() - t0) }, 'network policy table reconciled');
  }

  /** Applies a batch (undefined: the owner is gone) as one transaction; on failure nothing changed and it throws. */
  async apply(changes: Map<string, TableFragment | undefined>): Promise<void> {
    if (!this.state) throw new Error('init() first');
    const previous = new Map<string, TableFragment | undefined>();
    const scope = emptyScope();
    for (const [owner, f] of changes) {
      // A full recompute hands over every owner: those unchanged cost nothing (no scope, no diff).
      if (sameFragment(this.desired.get(owner), f)) continue;
      previous.set(owner, this.setOwner(owner, f, scope));
    }
    const p = plan(POLICY_FAMILY, this.table, this.state, this.desired, scope);
    try {
      await this.transact(p.lines, p.stats);
      p.commit(this.state);
    } catch (err) {
      for (const [owner, f] of previous) this.setOwner(owner, f);
      throw err;
    }
  }

  /** Stops the writer's nft process; the rules stay in the kernel. */
  close(): void {
    this.session.close();
  }

  async remove(): Promise<boolean> {
    this.state = undefined;
    return deleteTable(POLICY_FAMILY, this.table);
  }

  private setOwner(owner: string, f: TableFragment | undefined, scope = emptyScope()): TableFragment | undefined {
    if (f) this.owners.add(owner); else this.owners.delete(owner);
    return this.desired.set(owner, f, scope).previous;
  }

  private async transact(lines: string[], stats: { chainsWritten: number; elementsAdded: number; elementsDeleted: number }): Promise<void> {
    if (!lines.length) { this.lastStats = { lines: 0, ms: 0, chainsWritten: 0, elementsAdded: 0, elementsDeleted: 0 }; return; }
    const t0 = performance.now();
    await this.run(groupElements(lines).join('\n') + '\n');
    this.lastStats = { lines: lines.length, ms: Math.round(performance.now() - t0), chainsWritten: stats.chainsWritten, elementsAdded: stats.elementsAdded, elementsDeleted: stats.elementsDeleted };
    log.debug({ table: this.table, ...this.lastStats }, 'nft transaction');
  }
}

/**
 * Element lines of one set merged (`add element ip t s { a, b, c }`), within each run of element
 * lines: a cold start writes thousands, and nft parses one command per set about three times faster.
 */
export function groupElements(lines: string[]): string[] {
  const out: string[] = [];
  let run = new Map<string, string[]>();
  const flush = () => { for (const [head, keys] of run) out.push(`${head} { ${keys.join(', ')} }`); run = new Map(); };
  for (const line of lines) {
    const m = /^((?:add|delete) element \S+ \S+ \S+) \{ (.*) \}$/.exec(line);
    if (!m) { flush(); out.push(line); continue; }
    const list = run.get(m[1]!) ?? [];
    list.push(m[2]!);
    run.set(m[1]!, list);
  }
  flush();
  return out;
}

function sameFragment(a: TableFragment | undefined, b: TableFragment | undefined): boolean {
  if (!a || !b) return a === b;
  if (a.elements.size !== b.elements.size || a.chains.size !== b.chains.size || a.containers.size !== b.containers.size) return false;
  for (const [k, v] of a.elements) if (b.elements.get(k) !== v) return false;
  for (const [k, c] of a.containers) {
    const d = b.containers.get(k);
    if (!d || d.kind !== c.kind || d.body !== c.body) return false;
  }
  for (const [k, c] of a.chains) {
    const d = b.chains.get(k);
    if (!d || d.base !== c.base || d.rules.length !== c.rules.length || d.rules.some((r, i) => r !== c.rules[i])) return false;
  }
  return true;
}

/** `--disable-network-policy`: removes what an earlier run left (kube-router leaves its rules behind). */
export async function removePolicyTable(table = DEFAULT_POLICY_TABLE): Promise<boolean> {
  const gone = await deleteTable(POLICY_FAMILY, table);
  if (gone) log.info({ table }, 'removed the network policy table (--disable-network-policy)');
  return gone;
}
