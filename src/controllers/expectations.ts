// Creations and deletions a controller has asked for but not yet seen through its informer
// (pkg/controller's ControllerExpectations, with deletions tracked per pod as its
// UIDTrackingControllerExpectations does). While any are outstanding for a key, the controller only
// reports status: acting again on a cache that lags its own writes would double them. They live in
// memory only: after a restart the first sync works from a freshly listed cache, which is exactly
// what a level-triggered loop needs.

/** An expectation not met after this long is given up on (a lost watch event must not wedge a key). */
export const EXPECTATION_TTL_MS = 5 * 60_000;

interface Expectation { adds: number; deletes: Set<string>; at: number }

export interface ExpectationsOptions {
  ttlMs?: number;
  now?: () => number;
}

export class Expectations {
  private readonly byKey = new Map<string, Expectation>();
  private readonly ttlMs: number;
  private readonly now: () => number;

  constructor(opts: ExpectationsOptions = {}) {
    this.ttlMs = opts.ttlMs ?? EXPECTATION_TTL_MS;
    this.now = opts.now ?? Date.now;
  }

  /** Replaces what `key` waits for: `adds` creations, and the deletion of each pod key in `deletes`. */
  expect(key: string, adds: number, deletes: readonly string[] = []): void {
    this.byKey.set(key, { adds, deletes: new Set(deletes), at: this.now() });
  }

  /** One creation seen (or one that will never be: it failed, or was never sent). */
  creationObserved(key: string): void {
    const e = this.byKey.get(key);
    if (e && e.adds > 0) e.adds--;
  }

  /** `podKey` seen going (or its deletion failed). Seeing the same pod twice counts once. */
  deletionObserved(key: string, podKey: string): void {
    this.byKey.get(key)?.deletes.delete(podKey);
  }

  /** True when nothing is outstanding (or what is has waited too long to still be trusted). */
  satisfied(key: string): boolean {
    const e = this.byKey.get(key);
    if (!e) return true;
    if (e.adds <= 0 && e.deletes.size === 0) return true;
    return this.now() - e.at > this.ttlMs;
  }

  forget(key: string): void {
    this.byKey.delete(key);
  }
}
