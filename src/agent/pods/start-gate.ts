// First come, first served admission for the costly part of starting a pod (RunPodSandbox: a shim,
// runc, the CNI plugins). A node's CPU bounds how many pods per second it can start; when a burst of
// pods arrives at once, starting them all concurrently makes every one of them finish late (they
// share the CPU until the last is done), while admitting a few at a time lets them finish in arrival
// order at the same total throughput: measured on 2 cores with 100 pods, median startup halved and
// the tail unchanged (docs/benchmarks.md).
export class StartGate {
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(readonly limit: number) {
    if (!(limit >= 1)) throw new Error(`start gate limit must be at least 1, got ${limit}`);
  }

  /** Runs `fn` once fewer than `limit` others run; callers are admitted in the order they came. */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    else this.active++;
    try {
      return await fn();
    } finally {
      // The slot passes straight to the next waiter, so a newcomer cannot overtake it.
      const next = this.waiting.shift();
      if (next) next();
      else this.active--;
    }
  }

  /** How many callers wait for a slot. */
  get queued(): number {
    return this.waiting.length;
  }
}
