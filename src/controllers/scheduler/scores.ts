// Node scores on kube-scheduler's 0..100 scale and the normalizations its plugins apply, with the
// default plugin weights they are summed with.
import { ROW, type NodeInfo, type PodInfo } from './node-info.js';

export const MAX_NODE_SCORE = 100;

export const WEIGHTS = {
  taintToleration: 3,
  nodeAffinity: 2,
  podTopologySpread: 2,
  interPodAffinity: 2,
  leastAllocated: 1,
  balancedAllocation: 1,
} as const;

function leastRequested(requested: number, capacity: number): number {
  if (capacity === 0 || requested > capacity) return 0;
  return Math.floor(((capacity - requested) * MAX_NODE_SCORE) / capacity);
}

/** NodeResourcesFit's LeastAllocated strategy over cpu and memory (weight 1 each), with non-zero requests. */
export function leastAllocatedScore(node: NodeInfo, pod: PodInfo): number {
  const d = node.rows.data;
  const row = node.row;
  let sum = 0;
  let weights = 0;
  const cpu = d[row + ROW.allocMilliCPU]!;
  const mem = d[row + ROW.allocMemory]!;
  if (cpu !== 0) { sum += leastRequested(d[row + ROW.nonZeroCPU]! + pod.nonZeroCPU, cpu); weights++; }
  if (mem !== 0) { sum += leastRequested(d[row + ROW.nonZeroMemory]! + pod.nonZeroMemory, mem); weights++; }
  return weights ? Math.floor(sum / weights) : 0;
}

/** NodeResourcesBalancedAllocation: prefers nodes whose cpu and memory fill at the same rate. */
export function balancedAllocationScore(node: NodeInfo, pod: PodInfo): number {
  const d = node.rows.data;
  const row = node.row;
  const cpu = d[row + ROW.allocMilliCPU]!;
  const mem = d[row + ROW.allocMemory]!;
  // The standard deviation of the two fractions; with one resource alone there is none.
  if (cpu === 0 || mem === 0) return MAX_NODE_SCORE;
  const cpuFraction = Math.min(1, (d[row + ROW.reqMilliCPU]! + pod.requests.milliCPU) / cpu);
  const memFraction = Math.min(1, (d[row + ROW.reqMemory]! + pod.requests.memory) / mem);
  return Math.trunc((1 - Math.abs((cpuFraction - memFraction) / 2)) * MAX_NODE_SCORE);
}

/** Scale so the best node gets 100 (or, reversed, so the worst gets 0); all-zero stays all-zero unless reversed. */
export function defaultNormalize(scores: Float64Array, reverse: boolean): void {
  let max = 0;
  for (const s of scores) if (s > max) max = s;
  if (max === 0) {
    if (reverse) scores.fill(MAX_NODE_SCORE);
    return;
  }
  for (let i = 0; i < scores.length; i++) {
    const s = Math.trunc((MAX_NODE_SCORE * scores[i]!) / max);
    scores[i] = reverse ? MAX_NODE_SCORE - s : s;
  }
}

/** InterPodAffinity: min..max mapped onto 0..100 (scores may be negative). */
export function normalizeAffinityScores(scores: Float64Array): void {
  let min = Infinity;
  let max = -Infinity;
  for (const s of scores) { if (s < min) min = s; if (s > max) max = s; }
  const diff = max - min;
  for (let i = 0; i < scores.length; i++) scores[i] = diff > 0 ? Math.trunc(MAX_NODE_SCORE * ((scores[i]! - min) / diff)) : 0;
}

/** PodTopologySpread: fewer matching pods scores higher; NaN marks nodes left out, which score 0. */
export function normalizeSpreadScores(scores: Float64Array): void {
  let min = Infinity;
  let max = 0;
  for (const s of scores) {
    if (Number.isNaN(s)) continue;
    if (s < min) min = s;
    if (s > max) max = s;
  }
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i]!;
    if (Number.isNaN(s)) scores[i] = 0;
    else if (max === 0) scores[i] = MAX_NODE_SCORE;
    else scores[i] = Math.trunc((MAX_NODE_SCORE * (max + min - s)) / max);
  }
}
