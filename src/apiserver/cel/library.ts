// Kubernetes' CEL libraries, as far as they map cheaply onto @bufbuild/cel's value model: regex
// (find/findAll; `matches` is standard CEL), lists (isSorted, sum, min, max), urls, quantities and
// the strings extension. Quantities are plain doubles here with Kubernetes' method names on them (so
// `quantity('1Gi').isGreaterThan(quantity('512Mi'))` works); URLs are their validated string.
import { celFunc, celMethod, CelScalar, listType, type CelFunc, type CelList } from '@bufbuild/cel';
import { strings } from '@bufbuild/cel/ext';
import { isQuantity, parseQuantity } from '../../api/quantity.js';

const { STRING, BOOL, DOUBLE, INT, DYN } = CelScalar;
const LIST = listType(DYN);

// Compiled patterns by source: rules use constant patterns, and compiling per evaluation was most of
// a `matches()` rule's cost.
const regexes = new Map<string, RegExp>();
function regex(re: string): RegExp {
  let r = regexes.get(re);
  if (r) return r;
  try { r = new RegExp(re, 'u'); } catch { throw new Error(`compilation failed: invalid regex ${JSON.stringify(re)}`); }
  if (regexes.size > 500) regexes.clear();
  regexes.set(re, r);
  return r;
}

function listValues(l: CelList): unknown[] {
  const out: unknown[] = [];
  for (let i = 0; i < l.size; i++) out.push(l.get(i));
  return out;
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'bigint' && typeof b === 'bigint') return a < b ? -1 : a > b ? 1 : 0;
  if ((typeof a === 'number' || typeof a === 'bigint') && (typeof b === 'number' || typeof b === 'bigint')) return Number(a) - Number(b);
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new Error('no such overload');
}

function parseUrl(s: string): URL {
  // Kubernetes accepts absolute URIs and absolute paths; a path is resolved against nothing (no host).
  try { return new URL(s); } catch { /* fall through */ }
  if (s.startsWith('/')) return new URL(s, 'relative:///');
  throw new Error(`URL parse error during conversion from string: parse "${s}": invalid URI for request`);
}

function quantity(s: string): number {
  if (!isQuantity(s)) throw new Error(`quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'`);
  return parseQuantity(s);
}

export const kubernetesLibrary: CelFunc[] = [
  ...strings,
  // RE2 and JavaScript agree on the patterns rules use (no backreferences, no lookaround in RE2).
  celMethod('matches', STRING, [STRING], BOOL, function (re) { return regex(re).test(this); }),
  celFunc('matches', [STRING, STRING], BOOL, (s, re) => regex(re).test(s)),
  celMethod('find', STRING, [STRING], STRING, function (re) { return regex(re).exec(this)?.[0] ?? ''; }),
  celMethod('findAll', STRING, [STRING], listType(STRING), function (re) {
    return [...this.matchAll(new RegExp(regex(re).source, 'gu'))].map((m) => m[0]);
  }),
  celMethod('findAll', STRING, [STRING, INT], listType(STRING), function (re, n) {
    const all = [...this.matchAll(new RegExp(regex(re).source, 'gu'))].map((m) => m[0]);
    return n < 0n ? all : all.slice(0, Number(n));
  }),
  celMethod('isSorted', LIST, [], BOOL, function () {
    const v = listValues(this);
    for (let i = 1; i < v.length; i++) if (compare(v[i - 1], v[i]) > 0) return false;
    return true;
  }),
  celMethod('sum', LIST, [], DYN, function () {
    const v = listValues(this);
    if (v.every((x) => typeof x === 'bigint')) return (v as bigint[]).reduce((a, b) => a + b, 0n);
    return v.reduce<number>((a, b) => a + Number(b), 0);
  }),
  celMethod('min', LIST, [], DYN, function () {
    const v = listValues(this);
    if (!v.length) throw new Error('min called on empty list');
    return v.reduce((a, b) => (compare(a, b) <= 0 ? a : b)) as any;
  }),
  celMethod('max', LIST, [], DYN, function () {
    const v = listValues(this);
    if (!v.length) throw new Error('max called on empty list');
    return v.reduce((a, b) => (compare(a, b) >= 0 ? a : b)) as any;
  }),
  celFunc('isURL', [STRING], BOOL, (s) => { try { parseUrl(s); return true; } catch { return false; } }),
  celFunc('url', [STRING], STRING, (s) => { parseUrl(s); return s; }),
  celMethod('getScheme', STRING, [], STRING, function () { const u = parseUrl(this); return u.protocol === 'relative:' ? '' : u.protocol.replace(/:$/, ''); }),
  celMethod('getHost', STRING, [], STRING, function () { return parseUrl(this).host; }),
  celMethod('getHostname', STRING, [], STRING, function () { return parseUrl(this).hostname.replace(/^\[|\]$/g, ''); }),
  celMethod('getPort', STRING, [], STRING, function () { return parseUrl(this).port; }),
  celMethod('getEscapedPath', STRING, [], STRING, function () { return parseUrl(this).pathname; }),
  celFunc('isQuantity', [STRING], BOOL, (s) => isQuantity(s)),
  celFunc('quantity', [STRING], DOUBLE, (s) => quantity(s)),
  celMethod('isGreaterThan', DOUBLE, [DOUBLE], BOOL, function (o) { return this > o; }),
  celMethod('isLessThan', DOUBLE, [DOUBLE], BOOL, function (o) { return this < o; }),
  celMethod('compareTo', DOUBLE, [DOUBLE], INT, function (o) { return this < o ? -1n : this > o ? 1n : 0n; }),
  celMethod('asApproximateFloat', DOUBLE, [], DOUBLE, function () { return this; }),
  celMethod('asInteger', DOUBLE, [], INT, function () {
    if (!Number.isInteger(this) || !Number.isSafeInteger(this)) throw new Error('cannot convert value to integer');
    return BigInt(this);
  }),
  celMethod('isInteger', DOUBLE, [], BOOL, function () { return Number.isSafeInteger(this); }),
];
