// Limits checked before a body is handed to a parser, and on what a parser returned. Every pass here
// is linear and iterative: a hostile body must cost no more than its size to refuse.
//
// Kubernetes refuses nesting past 10,000 levels. skiff cannot go that deep: the engine's own recursive
// operations (structuredClone, JSON.stringify) run out of stack near 2,000 levels, so an object that
// parsed could still fail every later read. 500 levels leave room for the server's own frames and
// is still far beyond any real object (the deepest CRD schemas are under 100).
import { errors } from '../api/status.js';

export const MAX_NESTING_DEPTH = 500;
/**
 * The `yaml` parser builds per-nesting-level state for flow collections (`[[[...`): a few hundred
 * levels already cost it hundreds of milliseconds and ~1,000 abort the process in V8's regexp
 * compiler. Flow nesting is therefore held much lower than block nesting.
 */
export const MAX_YAML_FLOW_DEPTH = 100;
/**
 * YAML that is not JSON costs the `yaml` package orders of magnitude more per byte than JSON.parse
 * (a 1 MB body holds the event loop for seconds). kubectl always sends JSON (also for server-side
 * apply); hand-written YAML bodies above this size are refused with 413.
 */
export const MAX_YAML_BYTES = 512 * 1024;

/**
 * An upper estimate of YAML nesting: block levels from the indentation stack (plus compact `- - x`
 * sequences), and flow levels from brackets outside quotes and comments. Over-counting only refuses
 * bodies nobody writes; under-counting is what must not happen.
 */
export function yamlDepth(text: string): { block: number; flow: number } {
  const indents: number[] = [];
  let maxBlock = 0, flow = 0, maxFlow = 0;
  let quote = 0;         // 0, 34 ("), 39 (')
  let lineStart = true, indent = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 10) { lineStart = true; indent = 0; continue; }
    if (lineStart) {
      if (c === 32) { indent++; continue; }
      lineStart = false;
      if (c !== 35 /* # */ && quote === 0 && flow === 0) {
        while (indents.length && indents[indents.length - 1] > indent) indents.pop();
        if (!indents.length || indents[indents.length - 1] < indent) indents.push(indent);
        let dashes = 0;
        for (let j = i; j + 1 < text.length && text.charCodeAt(j) === 45 && text.charCodeAt(j + 1) === 32; j += 2) dashes++;
        maxBlock = Math.max(maxBlock, indents.length + dashes);
      }
    }
    if (quote) {
      if (quote === 34 && c === 92) i++;
      else if (c === quote) quote = 0;
      continue;
    }
    // A quote opens a quoted scalar only where a value starts (as the parser reads it): `it's` in
    // a plain scalar must not hide the brackets after it.
    if ((c === 34 || c === 39) && startsValue(text, i)) { quote = c; continue; }
    if (c === 35 && (i === 0 || text.charCodeAt(i - 1) === 32 || text.charCodeAt(i - 1) === 9)) {
      while (i + 1 < text.length && text.charCodeAt(i + 1) !== 10) i++;   // comment to end of line
      continue;
    }
    if (c === 91 || c === 123) { if (++flow > maxFlow) maxFlow = flow; }
    else if ((c === 93 || c === 125) && flow > 0) flow--;
    if (maxFlow > MAX_YAML_FLOW_DEPTH) break;
  }
  return { block: maxBlock, flow: maxFlow };
}

function startsValue(text: string, i: number): boolean {
  let j = i - 1;
  while (j >= 0 && (text.charCodeAt(j) === 32 || text.charCodeAt(j) === 9)) j--;
  if (j < 0) return true;
  const p = text.charCodeAt(j);
  // line start, `key: `, `- `, `? `, and flow separators
  return p === 10 || ((p === 58 || p === 45 || p === 63) && j < i - 1) || p === 91 || p === 123 || p === 44;
}

/** The nesting depth of a decoded value, without recursion (protobuf bodies, embedded raw JSON). */
export function valueDepth(value: unknown, limit = MAX_NESTING_DEPTH): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) { max = d; if (max > limit) return max; }
    for (const child of Array.isArray(v) ? v : Object.values(v)) if (child !== null && typeof child === 'object') stack.push([child, d + 1]);
  }
  return max;
}

export function tooDeep(format: string, limit = MAX_NESTING_DEPTH): Error {
  return errors.badRequest(`the body of the request could not be decoded as ${format}: exceeded max depth of ${limit}`);
}
