// Slow start (pkg/controller's slowStartBatch): many creations are sent in batches of 1, 2, 4, ...,
// so a call bound to fail (quota, admission, a namespace being deleted) is tried once or a few times
// instead of once per item.

/**
 * Runs `fn` over `items` in batches of `initialBatch`, then twice as many each time; stops after the
 * first batch with a failure. Of the items, `items.length - successes` failed or were never tried.
 */
export async function slowStartBatch<T>(items: readonly T[], fn: (item: T) => Promise<void>,
  initialBatch = 1): Promise<{ successes: number; error?: unknown }> {
  let successes = 0;
  let next = 0;
  for (let size = Math.min(items.length, initialBatch); size > 0; size = Math.min(2 * size, items.length - next)) {
    const results = await Promise.allSettled(items.slice(next, next + size).map(fn));
    next += size;
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    successes += results.filter((r) => r.status === 'fulfilled').length;
    if (failed) return { successes, error: failed.reason };
  }
  return { successes };
}
