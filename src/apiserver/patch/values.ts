// Small helpers over decoded JSON values shared by the patch modules.

/** Structural equality of two JSON values (object key order does not matter). */
export function deepEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a) !== Array.isArray(b)) return false;
  // Loops, not every() and Object.keys(): every write's managed fields compare most of an object.
  if (Array.isArray(a)) {
    const bb = b as unknown[];
    if (a.length !== bb.length) return false;
    for (let i = 0; i < a.length; i++) if (!deepEqual(a[i], bb[i])) return false;
    return true;
  }
  const ao = a as Record<string, unknown>;
  const bo = b as Record<string, unknown>;
  let n = 0;
  for (const k in ao) {
    if (!Object.hasOwn(ao, k)) continue;
    if (!Object.hasOwn(bo, k) || !deepEqual(ao[k], bo[k])) return false;
    n++;
  }
  for (const k in bo) if (Object.hasOwn(bo, k)) n--;
  return n === 0;
}
