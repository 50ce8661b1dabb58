// Wrong secrets per source address (join tokens, fleet registration tokens, etcd member joins): past
// `max` failures in a window the address is refused with 429 and Retry-After until the window ends,
// so a token cannot be guessed at line rate. The table is bounded: a flood from many addresses drops
// the oldest entries rather than growing without limit.
export class GuessLimiter {
  private readonly failures = new Map<string, { count: number; until: number }>();
  constructor(private readonly max: number, private readonly windowMs: number, private readonly maxAddresses = 10_000) {}

  /** Seconds until `addr` may try again; 0 when it may now. */
  blockedFor(addr: string, now = Date.now()): number {
    const f = this.failures.get(addr);
    if (!f || f.until <= now) { if (f) this.failures.delete(addr); return 0; }
    return f.count >= this.max ? Math.ceil((f.until - now) / 1000) : 0;
  }

  fail(addr: string, now = Date.now()): void {
    const f = this.failures.get(addr);
    if (!f || f.until <= now) this.failures.set(addr, { count: 1, until: now + this.windowMs });
    else f.count++;
    if (this.failures.size > this.maxAddresses) this.failures.delete(this.failures.keys().next().value!);
  }
}
