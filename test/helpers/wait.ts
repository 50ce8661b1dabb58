// Polling for a condition in end-to-end tests: the value once `fn` returns something truthy, or an
// error naming what was awaited (plus `context()`, e.g. a log tail) once `ms` have passed.
export async function eventually<T>(fn: () => Promise<T | undefined | false>, what: string, ms = 30_000,
  context?: () => string): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${context ? `\n${context()}` : ''}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Resolves once `read()` has given the same value `times` polls in a row (a writer that stalled). */
export async function settled(read: () => number, times = 5): Promise<number> {
  let last = -1;
  let same = 0;
  for (;;) {
    const v = read();
    same = v === last ? same + 1 : 0;
    last = v;
    if (same >= times) return v;
    await new Promise((r) => setTimeout(r, 20));
  }
}
