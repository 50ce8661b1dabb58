// CEL programs as Kubernetes uses them: compiled once per expression text (a small LRU), evaluated
// against JSON objects converted to CEL values (integers become CEL ints, as the API server's
// unstructured→CEL conversion does), under a per-evaluation budget.
//
// @bufbuild/cel has no cost accounting, so skiff bounds evaluations in two cheap ways: expression
// text is limited in length (Kubernetes' own limit on rule size), and an evaluation that runs past
// the time budget is reported as exceeding the cost limit (the check happens after it returns, since
// a synchronous evaluation cannot be interrupted; inputs are bounded by the request size).
import { celEnv, isCelError, isCelList, isCelMap, parse, plan, CelScalar, type CelEnv } from '@bufbuild/cel';
import { kubernetesLibrary } from './library.js';

export const MAX_EXPRESSION_LENGTH = 5000;
/** Per-evaluation budget: far above any sane rule (µs), so a GC pause on a busy machine never fails one. */
export const EVAL_BUDGET_MS = 1000;

export type CelProgram = (vars: Record<string, unknown>) => EvalResult;
export type EvalResult = { ok: true; value: unknown } | { ok: false; error: string };

const VARIABLES = ['self', 'oldSelf', 'object', 'oldObject', 'request', 'params', 'namespaceObject', 'authorizer', 'variables'] as const;

let env: CelEnv | undefined;
function celEnvironment(): CelEnv {
  env ??= celEnv({
    variables: Object.fromEntries(VARIABLES.map((v) => [v, CelScalar.DYN])),
    funcs: kubernetesLibrary,
  });
  return env;
}

const cache = new Map<string, CelProgram>();
const CACHE_SIZE = 1000;

export class CelCompileError extends Error {}

/** Compiles an expression (cached by text); throws CelCompileError with the parser's message. */
export function compile(expression: string): CelProgram {
  const hit = cache.get(expression);
  if (hit) return hit;
  if (expression.length > MAX_EXPRESSION_LENGTH) throw new CelCompileError(`expression too long (${expression.length} > ${MAX_EXPRESSION_LENGTH} characters)`);
  let run: ReturnType<typeof plan>;
  try {
    run = plan(celEnvironment(), parse(expression));
  } catch (e) {
    throw new CelCompileError(`compilation failed: ${(e as Error).message}`);
  }
  const program: CelProgram = (vars) => {
    const t0 = performance.now();
    let r: unknown;
    try {
      r = run(vars as any);
    } catch (e) {
      return { ok: false, error: (e as Error).message };
    }
    if (performance.now() - t0 > EVAL_BUDGET_MS) return { ok: false, error: 'operation cancelled: actual cost limit exceeded' };
    if (isCelError(r)) return { ok: false, error: r.message };
    return { ok: true, value: fromCel(r) };
  };
  if (cache.size >= CACHE_SIZE) cache.delete(cache.keys().next().value!);
  cache.set(expression, program);
  return program;
}

/** JSON → CEL input: integral numbers become ints; everything else keeps its shape. */
export function toCel(v: unknown): unknown {
  if (typeof v === 'number') return Number.isInteger(v) ? BigInt(v) : v;
  if (Array.isArray(v)) return v.map(toCel);
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== undefined) out[k] = toCel(x);
    return out;
  }
  return v;
}

/** CEL result → plain JS (ints as numbers when safe) for messages and comparisons. */
export function fromCel(v: unknown): unknown {
  if (typeof v === 'bigint') return Number(v);
  if (isCelList(v)) { const out: unknown[] = []; for (let i = 0; i < v.size; i++) out.push(fromCel(v.get(i))); return out; }
  if (isCelMap(v)) { const out: Record<string, unknown> = {}; for (const [k, x] of v.entries()) out[String(k)] = fromCel(x); return out; }
  return v;
}

/** Evaluates a boolean expression; a non-bool result is an error, as in Kubernetes. */
export function evalBool(program: CelProgram, vars: Record<string, unknown>): { ok: true; value: boolean } | { ok: false; error: string } {
  const r = program(vars);
  if (!r.ok) return r;
  if (typeof r.value !== 'boolean') return { ok: false, error: `expression must evaluate to bool, got ${typeof r.value}` };
  return { ok: true, value: r.value };
}
