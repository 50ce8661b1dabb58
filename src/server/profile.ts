// Resource profiles of the server (issue 15): `small` fits a Raspberry Pi class board with 1 GB of
// memory, `default` is sized for throughput. `auto` picks small below 2 GB of total memory, as k3s
// advises at least 2 GB for a server that also runs workloads.
//
// What a profile sets lives in two places because V8's heap limits can only be given when node
// starts: the launcher (bin/skiff) passes the heap flags, this table sets what the server sizes
// itself (the watch cache's per-resource event rings, which dominate memory under churn).
import { getHeapStatistics, setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { logger } from '../util/log.js';

const log = logger('server');

export type ProfileName = 'small' | 'default';

export interface Profile {
  name: ProfileName;
  /** Watch events kept per resource for resuming watches (--watch-cache-size). */
  watchCacheSize: number;
  /** V8's old-generation limit the launcher sets, in MB (undefined: V8's own default). */
  maxOldSpaceMb?: number;
  /**
   * How far V8 lets the old generation grow past what its last full collection left live before the
   * next one, in percent (undefined: V8's own choice, up to 4×). Set by the server itself once its
   * datastore is loaded (V8 reads it at every collection), so the load is not slowed by it.
   */
  heapGrowingPercent?: number;
  /**
   * TLS in a worker thread (tls-front.ts): the server's thread keeps its CPU and heap for requests.
   * Off for a small board: the worker's own heap costs memory there, for a core it may not have.
   */
  tlsInWorker: boolean;
  /**
   * The embedded SQLite's WAL checkpoints in a worker thread (storage/sqlite-checkpointer.ts), not
   * inside the server thread's commits. Off for a small board, for the same reason as TLS.
   */
  sqliteCheckpointInWorker: boolean;
}

export const PROFILES: Readonly<Record<ProfileName, Profile>> = Object.freeze({
  small: { name: 'small', watchCacheSize: 1000, maxOldSpaceMb: 128, tlsInWorker: false, sqliteCheckpointInWorker: false },
  // V8 let a server with 750 MB live grow to 2.2 GB of heap before collecting (5,000 nodes, 50,000
  // pods: --trace-gc, docs/scale.md); at 1.5× the same run peaked about a gigabyte lower, and at
  // 1.3× (the live heap now 420–550 MB) about 50 MB lower again, as fast (docs/scale.md item 30).
  default: { name: 'default', watchCacheSize: 10_000, heapGrowingPercent: 30, tlsInWorker: true, sqliteCheckpointInWorker: true },
});

/** Below this much memory `auto` means small. */
export const SMALL_BOARD_BYTES = 2 * 1024 ** 3;

/** The profile `--profile <name>` asks for on a machine with `totalBytes` of memory. */
export function resolveProfile(name: string, totalBytes: number): Profile {
  if (name === 'auto') return totalBytes < SMALL_BOARD_BYTES ? PROFILES.small : PROFILES.default;
  if (name === 'small' || name === 'default') return PROFILES[name];
  throw new Error(`--profile: expected small, default or auto, got ${JSON.stringify(name)}`);
}

/**
 * The value of V8 flag `--<flag>` on node's own command line (the last one, as V8 reads them), or
 * undefined. Dashes and underscores are the same to V8. (NODE_OPTIONS does not take V8's GC flags.)
 */
export function explicitV8Flag(flag: string, execArgv: readonly string[]): string | undefined {
  const norm = (f: string) => f.replace(/_/g, '-');
  let value: string | undefined;
  for (let i = 0; i < execArgv.length; i++) {
    const m = /^--([^=]+)(?:=(.*))?$/.exec(execArgv[i]!);
    if (m && norm(m[1]!) === norm(flag)) value = m[2] ?? execArgv[++i];
  }
  return value;
}

/**
 * Sets what the profile sets at run time (V8's heap growing), logs the profile in effect, and warns
 * when the small profile's heap limit did not reach V8. A `--heap-growing-percent` given to node
 * itself wins over the profile's, as an explicit `--watch-cache-size` does.
 *
 * Called once the datastore is loaded, it ends with one full collection. The load set V8's next
 * limit for the old generation with V8's own growing factor (up to 4× what its last collection
 * found, with the heap much smaller then), and with nothing else forcing a full collection (TLS
 * sockets did until the TLS front took them, docs/scale.md item 23) the heap grew to that limit
 * after a restart: about 1.9–2.2 GB of RSS at 5,000 nodes and 50,000 pods. Collected here, the
 * limit follows the loaded heap at the profile's factor.
 */
export function applyProfile(name: ProfileName, watchCacheSize: number): void {
  const heapLimitMb = Math.round(getHeapStatistics().heap_size_limit / 2 ** 20);
  const explicit = explicitV8Flag('heap-growing-percent', process.execArgv);
  const heapGrowingPercent = explicit !== undefined ? Number(explicit) : PROFILES[name].heapGrowingPercent;
  if (explicit === undefined && heapGrowingPercent !== undefined) setFlagsFromString(`--heap-growing-percent=${heapGrowingPercent}`);
  log.info({ profile: name, watchCacheSize, heapLimitMb, heapGrowingPercent }, 'resource profile');
  collectGarbageNow();
  const want = PROFILES[name].maxOldSpaceMb;
  if (want !== undefined && heapLimitMb > want * 2) {
    log.warn({ heapLimitMb, wantMb: want }, `the ${name} profile's heap limit is not in effect: start the server through bin/skiff `
      + `(which passes it to node), or set NODE_OPTIONS=--max-old-space-size=${want}`);
  }
}

/** A full collection now: V8's `gc`, exposed for this one call (node was not started with --expose-gc). */
function collectGarbageNow(): void {
  if (typeof globalThis.gc === 'function') { globalThis.gc(); return; }
  setFlagsFromString('--expose-gc');
  const gc: unknown = runInNewContext('gc');
  setFlagsFromString('--no-expose-gc');
  if (typeof gc === 'function') gc();
}
