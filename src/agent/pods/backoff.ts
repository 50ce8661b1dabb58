// Per-key exponential backoff, with the kubelet's rules: the first failure may retry at once, each
// retry inside the window doubles the next delay up to a cap, and an entry untouched for twice the cap
// (10 minutes with the defaults) is forgotten, so a container that ran that long starts over at 10 s.

export interface BackoffOptions {
  initialMs: number;
  maxMs: number;
}

/** CrashLoopBackOff and ImagePullBackOff: 10 s doubling to 5 min. */
export const DEFAULT_BACKOFF: BackoffOptions = { initialMs: 10_000, maxMs: 300_000 };

interface Entry { delayMs: number; lastUpdate: number }

export class Backoff {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly o: BackoffOptions = DEFAULT_BACKOFF) {}

  private live(key: string, now: number): Entry | undefined {
    const e = this.entries.get(key);
    if (e && now - e.lastUpdate > 2 * this.o.maxMs) {
      this.entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** Records a retry and returns the delay the one after it must wait. */
  next(key: string, now = Date.now()): number {
    const e = this.live(key, now);
    const delayMs = e ? Math.min(e.delayMs * 2, this.o.maxMs) : this.o.initialMs;
    this.entries.set(key, { delayMs, lastUpdate: now });
    return delayMs;
  }

  /** The current delay of `key` (0 when it has none). */
  delay(key: string, now = Date.now()): number {
    return this.live(key, now)?.delayMs ?? 0;
  }

  /** Milliseconds left before `key` may retry, counting its delay from `since` (e.g. when the container exited). */
  remaining(key: string, since: number, now = Date.now()): number {
    const e = this.live(key, now);
    return e ? Math.max(0, since + e.delayMs - now) : 0;
  }

  reset(key: string): void {
    this.entries.delete(key);
  }

  /** Forgets every key that starts with `prefix` (all of one pod's). */
  resetPrefix(prefix: string): void {
    for (const k of this.entries.keys()) if (k.startsWith(prefix)) this.entries.delete(k);
  }
}

/** A duration as Go prints it (`10s`, `1m20s`, `5m0s`, `500ms`): the kubelet's messages carry this form. */
export function goDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const totalSec = ms / 1000;
  const h = Math.floor(totalSec / 3600);
  const m = Math.floor((totalSec % 3600) / 60);
  const s = +(totalSec % 60).toFixed(3);
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}
