// Latency samples → percentiles and throughput, printed the same way by every phase.
import { performance } from 'node:perf_hooks';

export interface PhaseResult {
  name: string;
  concurrency: number;
  count: number;
  errors: number;
  seconds: number;
  p50: number;       // ms
  p99: number;       // ms
  perSecond: number;
}

/** Nearest-rank percentile of samples already sorted ascending. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

export function summarize(name: string, concurrency: number, samples: number[], errors: number, seconds: number): PhaseResult {
  const sorted = [...samples].sort((a, b) => a - b);
  return {
    name, concurrency, count: samples.length, errors, seconds,
    p50: percentile(sorted, 50), p99: percentile(sorted, 99), perSecond: samples.length / seconds,
  };
}

export function formatPhase(r: PhaseResult): string {
  const pad = (s: string, n: number) => s.padEnd(n);
  return `${pad(r.name, 14)} c=${pad(String(r.concurrency), 3)} n=${pad(String(r.count), 6)} ` +
    `p50=${pad(r.p50.toFixed(2) + 'ms', 10)} p99=${pad(r.p99.toFixed(2) + 'ms', 10)} ` +
    `${r.perSecond.toFixed(0)}/s${r.errors ? `  errors=${r.errors}` : ''}`;
}

/**
 * Runs `count` operations over `concurrency` workers, timing each, and prints the phase's line.
 * An answer with a status other than `expect` counts as an error (the first one is printed).
 */
export async function runPhase(name: string, concurrency: number, count: number,
  op: (i: number) => Promise<{ status: number; body: string }>, expect = 200): Promise<PhaseResult> {
  const samples: number[] = [];
  let errors = 0;
  let first = '';
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let i = next++; i < count; i = next++) {
      const s = performance.now();
      const r = await op(i);
      if (r.status !== expect) { errors++; first ||= `HTTP ${r.status} ${r.body.slice(0, 200)}`; continue; }
      samples.push(performance.now() - s);
    }
  }));
  const r = summarize(name, concurrency, samples, errors, (performance.now() - t0) / 1000);
  console.log(formatPhase(r) + (first ? `  first error: ${first}` : ''));
  return r;
}

export interface Rate { perSec: number; p50: number; p99: number; n: number; errors: number }

/** Runs `op` from `clients` loops for `ms`; an op returns true when it succeeded (false or a throw: an error). */
export async function driveFor(ms: number, clients: number, op: (w: number, i: number) => Promise<boolean>): Promise<Rate> {
  const samples: number[] = [];
  let errors = 0;
  const t0 = performance.now();
  const deadline = t0 + ms;
  await Promise.all(Array.from({ length: clients }, async (_, w) => {
    for (let i = 0; performance.now() < deadline; i++) {
      const s = performance.now();
      try {
        if (await op(w, i)) samples.push(performance.now() - s); else errors++;
      } catch {
        errors++;
      }
    }
  }));
  const secs = (performance.now() - t0) / 1000;
  samples.sort((a, b) => a - b);
  return { perSec: samples.length / secs, p50: percentile(samples, 50), p99: percentile(samples, 99), n: samples.length, errors };
}
