// Kubernetes resource quantities (`100m`, `128Mi`, `1e3`), exactly. A quantity is kept as an integer
// count of nano-units (bigint), which is Kubernetes' own canonical precision: anything finer than 1n
// is rounded up. Floating point would make "0.1" cpu 100.00000000000001m, so `0.1` and `100m` would
// differ, and a request/limit pair written both ways would change a pod's QoS class.

const BINARY: Record<string, bigint> = { Ki: 1n << 10n, Mi: 1n << 20n, Gi: 1n << 30n, Ti: 1n << 40n, Pi: 1n << 50n, Ei: 1n << 60n };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const QUANTITY = /^([+-]?)(\d*)(?:\.(\d*))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;
/** Larger exponents are refused rather than expanded: 10^(10^9) would take the process down. */
const MAX_EXPONENT = 1000;

export const QUANTITY_FORMAT_ERROR = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";

const formatError = (q: unknown) => new Error(`${QUANTITY_FORMAT_ERROR}: ${JSON.stringify(q)}`);

/** Division rounding away from zero, as Kubernetes rounds a quantity up to a coarser scale. */
function divUp(n: bigint, d: bigint): bigint {
  const q = n / d;
  if (q * d === n) return q;
  return n < 0n ? q - 1n : q + 1n;
}

/** The exact value of a quantity in nano-units (1 = 1n), or undefined when `q` is not a quantity. */
export function quantityNanos(q: unknown): bigint | undefined {
  if (typeof q === 'number') {
    if (!Number.isFinite(q)) return undefined;
    q = String(q); // "0.1", "1e-7", "1e+21": the shortest decimal that reads back as the number
  }
  if (typeof q !== 'string') return undefined;
  const m = QUANTITY.exec(q.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) return undefined;
  const [, sign, whole, frac = '', suffix = ''] = m;
  let digits = BigInt(whole + frac || '0');
  let exp10 = 9 - frac.length;
  if (suffix in BINARY) digits *= BINARY[suffix]!;
  else if (suffix in DECIMAL) exp10 += DECIMAL[suffix]!;
  else {
    const e = Number(suffix.slice(1));
    if (Math.abs(e) > MAX_EXPONENT) return undefined;
    exp10 += e;
  }
  let v: bigint;
  if (exp10 >= 0) v = digits * 10n ** BigInt(exp10);
  else if (-exp10 > whole.length + frac.length + 20) v = digits === 0n ? 0n : 1n; // far below 1n: rounds up to 1n
  else v = divUp(digits, 10n ** BigInt(-exp10));
  return sign === '-' ? -v : v;
}

export function isQuantity(q: unknown): boolean {
  return quantityNanos(q) !== undefined;
}

/**
 * The quantity times 10^scale (scale 0 gives units, 3 millis, 9 nanos), rounded up, as Kubernetes'
 * Value() and MilliValue() round. Throws on something that is not a quantity. Exact up to 2^53.
 */
export function parseQuantity(q: string | number, scale = 0): number {
  const n = quantityNanos(q);
  if (n === undefined) throw formatError(q);
  return Number(scaleNanos(n, scale));
}

/** parseQuantity for values that may be absent or malformed: undefined instead of an error. */
export function tryParseQuantity(q: unknown, scale = 0): number | undefined {
  const n = quantityNanos(q);
  return n === undefined ? undefined : Number(scaleNanos(n, scale));
}

function scaleNanos(n: bigint, scale: number): bigint {
  if (!Number.isInteger(scale) || scale < 0 || scale > 9) throw new RangeError(`quantity scale ${scale} is not in 0..9`);
  return scale === 9 ? n : divUp(n, 10n ** BigInt(9 - scale));
}

/** Millis of a quantity (cpu), rounded up: Kubernetes' MilliValue(). */
export const toMillis = (q: string | number): number => parseQuantity(q, 3);

/** Whole units of a quantity (bytes of memory or storage), rounded up: Kubernetes' Value(). */
export const toUnits = (q: string | number): number => parseQuantity(q, 0);

/** -1, 0 or 1 as `a` is less than, equal to or more than `b`, exactly (Quantity.Cmp). Throws on malformed input. */
export function compareQuantities(a: string | number, b: string | number): number {
  const x = quantityNanos(a);
  const y = quantityNanos(b);
  if (x === undefined) throw formatError(a);
  if (y === undefined) throw formatError(b);
  return x < y ? -1 : x > y ? 1 : 0;
}
