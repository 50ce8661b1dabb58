// Resource profiles of the server (issue 15): `small` fits a Raspberry Pi class board with 1 GB of
// memory, `default` is sized for throughput. `auto` picks small below 2 GB of total memory, as k3s
// advises at least 2 GB for a server that also runs workloads.
//
// What a profile sets lives in two places because V8's heap limits can only be given when node
// starts: the launcher (bin/skiff) passes the heap flags, this table sets what the server sizes
// itself (the watch cache's per-resource event rings, which dominate memory under churn).
import { getHeapStatistics } from 'node:v8';
import { logger } from '../util/log.js';

const log = logger('server');

export type ProfileName = 'small' | 'default';

export interface Profile {
  name: ProfileName;
  /** Watch events kept per resource for resuming watches (--watch-cache-size). */
  watchCacheSize: number;
  /** V8's old-generation limit the launcher sets, in MB (undefined: V8's own default). */
  maxOldSpaceMb?: number;
}

export const PROFILES: Readonly<Record<ProfileName, Profile>> = Object.freeze({
  small: { name: 'small', watchCacheSize: 1000, maxOldSpaceMb: 128 },
  default: { name: 'default', watchCacheSize: 10_000 },
});

/** Below this much memory `auto` means small. */
export const SMALL_BOARD_BYTES = 2 * 1024 ** 3;

/** The profile `--profile <name>` asks for on a machine with `totalBytes` of memory. */
export function resolveProfile(name: string, totalBytes: number): Profile {
  if (name === 'auto') return totalBytes < SMALL_BOARD_BYTES ? PROFILES.small : PROFILES.default;
  if (name === 'small' || name === 'default') return PROFILES[name];
  throw new Error(`--profile: expected small, default or auto, got ${JSON.stringify(name)}`);
}

/** Logs the profile in effect and warns when the small profile's heap limit did not reach V8. */
export function logProfile(name: ProfileName, watchCacheSize: number): void {
  const heapLimitMb = Math.round(getHeapStatistics().heap_size_limit / 2 ** 20);
  log.info({ profile: name, watchCacheSize, heapLimitMb }, 'resource profile');
  const want = PROFILES[name].maxOldSpaceMb;
  if (want !== undefined && heapLimitMb > want * 2) {
    log.warn({ heapLimitMb, wantMb: want }, `the ${name} profile's heap limit is not in effect: start the server through bin/skiff `
      + `(which passes it to node), or set NODE_OPTIONS=--max-old-space-size=${want}`);
  }
}
