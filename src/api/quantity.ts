// Kubernetes resource quantities (`100m`, `128Mi`, `1e3`) as exact integers at a chosen scale.

const BINARY: Record<string, number> = { Ki: 10, Mi: 20, Gi: 30, Ti: 40, Pi: 50, Ei: 60 };
const DECIMAL: Record<string, number> = { n: -9, u: -6, m: -3, '': 0, k: 3, M: 6, G: 9, T: 12, P: 15, E: 18 };
const QUANTITY = /^([+-]?)(\d*)(?:\.(\d*))?(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE]|[eE][+-]?\d+)?$/;

/** The quantity times 10^scale, rounded up (scale 3 gives millis), as a safe integer. */
export function parseQuantity(q: string | number, scale = 0): number {
  if (typeof q === 'number') return Math.ceil(q * 10 ** scale);
  const m = QUANTITY.exec(q.trim());
  if (!m || (m[2] === '' && (m[3] ?? '') === '')) throw new Error(`quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$': ${JSON.stringify(q)}`);
  const [, sign, whole, frac = '', suffix = ''] = m;
  // Keep the digits as one integer and move the decimal point by exponent, so "0.1" cpu is exactly 100m
  // (floating point would make it 100.00000000000001 and round it up to 101m).
  let digits = Number(whole + frac);
  let exp10 = scale - frac.length;
  if (suffix in BINARY) digits *= 2 ** BINARY[suffix]!;
  else if (suffix in DECIMAL) exp10 += DECIMAL[suffix]!;
  else exp10 += Number(suffix.slice(1));
  const v = exp10 >= 0 ? digits * 10 ** exp10 : Math.ceil(digits / 10 ** -exp10);
  return sign === '-' ? -v : v;
}

