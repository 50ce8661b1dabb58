// The nftables rule writer: keeps the `skiff-proxy` table equal to the Services' models, one
// transaction per batch, touching only what the batch changed. Behind `RuleWriter`, the contract a
// writer for another backend (iptables-restore on old kernels) would also meet.
import { logger } from '../../../util/log.js';
import type { ServiceModel } from './model.js';
import { DesiredTable, emptyScope, plan, release, stateScope, type TableState } from './nft-diff.js';
import { serviceFragment, staticFragment, type StaticOptions, type TableFragment } from './nft-rules.js';
import { deleteTable, readTableState } from './nft-state.js';
import { NftSession } from '../nft-session.js';

const log = logger('service-proxy');

export interface RuleWriter {
  /** Makes the kernel match `services` (and the static rules), changing only what differs from what is there. */
  init(services: Iterable<ServiceModel>): Promise<void>;
  /**
   * Applies a batch: `changes` maps Service keys to their new model (undefined: gone). Returns the
   * keys that could not be programmed (their previous rules stay; the caller retries them).
   */
  apply(changes: Map<string, ServiceModel | undefined>): Promise<string[]>;
  /** Removes everything the writer programmed. */
  remove(): Promise<void>;
  /** Releases what the writer holds (its nft process); the rules stay in the kernel. */
  close?(): void;
}

export interface NftWriterOptions extends StaticOptions {
  /** Default `skiff-proxy`. Tests running many agents in one network namespace give each its own. */
  table?: string;
  /** Runs a script as one transaction (default: a long-lived `nft -i`, see nft-session.ts); injectable for tests. */
  run?: (script: string) => Promise<void>;
  /** Reads the table's state (default `nft -j list table`). */
  read?: (family: string, table: string) => Promise<TableState>;
}

export const DEFAULT_TABLE = 'skiff-proxy';
const FAMILY = 'ip';
const STATIC_OWNER = '';

export class NftRuleWriter implements RuleWriter {
  readonly table: string;
  private state: TableState | undefined;
  private readonly desired = new DesiredTable();
  private readonly run: (script: string) => Promise<void>;
  private readonly session = new NftSession();
  private readonly read: (family: string, table: string) => Promise<TableState>;
  /** Figures of the last transaction, for logs and the benchmark. */
  lastStats = { lines: 0, ms: 0 };

  constructor(private readonly o: NftWriterOptions) {
    this.table = o.table ?? DEFAULT_TABLE;
    this.run = o.run ?? ((script) => this.session.run(script));
    this.read = o.read ?? readTableState;
  }

  async init(services: Iterable<ServiceModel>): Promise<void> {
    this.desired.set(STATIC_OWNER, staticFragment(this.o));
    for (const s of services) this.desired.set(s.key, serviceFragment(s, this.o));
    const t0 = performance.now();
    const state = await this.read(FAMILY, this.table);
    const readMs = Math.round(performance.now() - t0);
    const scope = stateScope(state, this.desired.scope());
    const p = plan(FAMILY, this.table, state, this.desired, scope);
    await this.transact(p.lines);
    p.commit(state);
    this.state = state;
    this.desired.releaseAll();
    // Which chains a restart rewrote says whether it was a diff (a few) or a rewrite (all).
    log.info({ table: this.table, ...this.desired.counts(), ...p.stats, readMs, ms: this.lastStats.ms, totalMs: Math.round(performance.now() - t0), rewrote: p.written.slice(0, 20) }, 'service proxy table reconciled');
  }

  async apply(changes: Map<string, ServiceModel | undefined>): Promise<string[]> {
    if (!this.state) throw new Error('init() first');
    const previous = new Map<string, TableFragment | undefined>();
    const scope = emptyScope();
    for (const [key, model] of changes) previous.set(key, this.desired.set(key, model ? serviceFragment(model, this.o) : undefined, scope).previous);
    const p = plan(FAMILY, this.table, this.state, this.desired, scope);
    try {
      await this.transact(p.lines);
      p.commit(this.state);
      for (const key of changes.keys()) { const f = this.desired.get(key); if (f) release(f); }
      return [];
    } catch (err) {
      if (changes.size === 1) {
        const [key] = changes.keys();
        this.desired.set(key!, previous.get(key!));
        log.warn({ service: key, err: (err as Error).message }, 'could not program a Service; its previous rules stay');
        return [key!];
      }
      // The transaction changed nothing (all or none): find the culprit(s) one Service at a time.
      for (const [key, frag] of previous) this.desired.set(key, frag);
      const failed: string[] = [];
      for (const [key, model] of changes) failed.push(...await this.apply(new Map([[key, model]])));
      return failed;
    }
  }

  async remove(): Promise<void> {
    await deleteTable(FAMILY, this.table);
    this.state = undefined;
  }

  close(): void {
    this.session.close();
  }

  private async transact(lines: string[]): Promise<void> {
    if (!lines.length) { this.lastStats = { lines: 0, ms: 0 }; return; }
    const t0 = performance.now();
    await this.run(lines.join('\n') + '\n');
    this.lastStats = { lines: lines.length, ms: Math.round(performance.now() - t0) };
    log.debug({ table: this.table, ...this.lastStats }, 'nft transaction');
  }
}
