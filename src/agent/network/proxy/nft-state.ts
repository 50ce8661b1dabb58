// What the proxy's table holds now, read back from the kernel (`nft -j list table`), in the shape
// nft-diff.ts compares with: chains by fingerprint (rule count and the hash in the first rule's
// comment), map and set elements by key and verdict, maps and sets by name. Read at agent start and
// after a failed transaction, so a restarted agent rewrites only what changed while it was away.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { elementKey } from './nft-rules.js';
import { NFT } from '../nft-session.js';
import { emptyState, FINGERPRINT_PREFIX, type TableState } from './nft-diff.js';

const run = promisify(execFile);

/** The table's current state; an empty state (exists: false) when there is no such table. */
export async function readTableState(family: string, table: string): Promise<TableState> {
  let stdout: string;
  try {
    ({ stdout } = await run(NFT, ['-j', 'list', 'table', family, table], { maxBuffer: 1 << 30 }));
  } catch (err) {
    if (/No such file or directory|does not exist/i.test(String((err as { stderr?: string }).stderr ?? (err as Error).message))) return emptyState();
    throw err;
  }
  return parseTableJson(stdout);
}

/** Parses `nft -j list table` output (exported for the unit tests). */
export function parseTableJson(json: string): TableState {
  const state = emptyState();
  state.exists = true;
  const items = (JSON.parse(json) as { nftables?: any[] }).nftables ?? [];
  const counts = new Map<string, number>();
  const hashes = new Map<string, string>();
  for (const item of items) {
    if (item.chain) {
      counts.set(item.chain.name, counts.get(item.chain.name) ?? 0);
    } else if (item.rule) {
      const chain = item.rule.chain as string;
      const n = counts.get(chain) ?? 0;
      if (n === 0 && typeof item.rule.comment === 'string' && item.rule.comment.startsWith(FINGERPRINT_PREFIX)) {
        hashes.set(chain, item.rule.comment.slice(FINGERPRINT_PREFIX.length));
      }
      counts.set(chain, n + 1);
    } else if (item.map) {
      state.containers.set(item.map.name, 'map');
      for (const e of item.map.elem ?? []) {
        if (!Array.isArray(e) || e.length !== 2) continue;
        state.elements.set(elementKey(item.map.name, keyText(e[0])), verdictText(e[1]));
      }
    } else if (item.set) {
      state.containers.set(item.set.name, 'set');
      // Sets with timeouts are filled by the packet path (session affinity); only static ones are tracked.
      if ((item.set.flags ?? []).includes('timeout')) continue;
      for (const e of item.set.elem ?? []) state.elements.set(elementKey(item.set.name, keyText(e)), '');
    }
  }
  // A chain without our fingerprint (hand-made, or half-written) never matches: it is rewritten.
  for (const [chain, n] of counts) state.chains.set(chain, `${n}:${hashes.get(chain) ?? 'none'}`);
  return state;
}

function keyText(k: unknown): string {
  if (k && typeof k === 'object') {
    const o = k as Record<string, unknown>;
    if (Array.isArray(o.concat)) return o.concat.map(atom).join(' . ');
    if (o.elem && typeof o.elem === 'object') return keyText((o.elem as { val?: unknown }).val);
    if (o.prefix && typeof o.prefix === 'object') {
      const p = o.prefix as { addr: string; len: number };
      return `${p.addr}/${p.len}`;
    }
  }
  return atom(k);
}

function atom(v: unknown): string {
  return String(v);
}

function verdictText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (v && typeof v === 'object') {
    const [k, body] = Object.entries(v as Record<string, unknown>)[0] ?? [];
    if (!k) return '';
    const target = (body as { target?: string } | null)?.target;
    return target ? `${k} ${target}` : k;
  }
  return String(v);
}

/** Deletes the table (`--disable-kube-proxy`, teardown); true when it existed. */
export async function deleteTable(family: string, table: string): Promise<boolean> {
  try {
    await run(NFT, ['delete', 'table', family, table]);
    return true;
  } catch {
    return false;
  }
}
