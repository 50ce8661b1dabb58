// The simple JSONPath expressions CRDs use in additionalPrinterColumns: `.spec.replicas`,
// `.items[0].name`, `.metadata.labels['app.kubernetes.io/name']`, `.status.conditions[?(@.type=="Ready")].status`.

type Step =
  | { kind: 'field'; name: string }
  | { kind: 'index'; index: number }
  | { kind: 'all' }
  | { kind: 'filter'; path: string[]; op: '==' | '!='; value: string };

const cache = new Map<string, Step[]>();

/** Parses `path` once; throws on syntax it does not support. */
export function parseJsonPath(path: string): Step[] {
  let steps = cache.get(path);
  if (steps) return steps;
  steps = [];
  let s = path.trim();
  if (s.startsWith('{') && s.endsWith('}')) s = s.slice(1, -1);
  if (s.startsWith('$')) s = s.slice(1);
  let i = 0;
  while (i < s.length) {
    if (s[i] === '.') {
      const m = /^\.([^.[\]]+)/.exec(s.slice(i));
      if (!m) throw new Error(`unsupported JSONPath ${path}`);
      steps.push({ kind: 'field', name: m[1] });
      i += m[0].length;
      continue;
    }
    const rest = s.slice(i);
    let m: RegExpExecArray | null;
    if ((m = /^\[(\d+)\]/.exec(rest))) steps.push({ kind: 'index', index: Number(m[1]) });
    else if ((m = /^\[\*\]/.exec(rest))) steps.push({ kind: 'all' });
    else if ((m = /^\[(['"])(.*?)\1\]/.exec(rest))) steps.push({ kind: 'field', name: m[2].replace(/\\\./g, '.') });
    else if ((m = /^\[\?\(@((?:\.[^.=!)\s]+)+)\s*(==|!=)\s*(['"])(.*?)\3\)\]/.exec(rest))) {
      steps.push({ kind: 'filter', path: m[1].slice(1).split('.'), op: m[2] as '==' | '!=', value: m[4] });
    } else throw new Error(`unsupported JSONPath ${path}`);
    i += m[0].length;
  }
  cache.set(path, steps);
  return steps;
}

/** The values `path` selects in `obj` (missing keys select nothing). */
export function evalJsonPath(obj: unknown, path: string): unknown[] {
  let current: unknown[] = [obj];
  for (const step of parseJsonPath(path)) {
    const next: unknown[] = [];
    for (const v of current) {
      if (v === null || typeof v !== 'object') continue;
      switch (step.kind) {
        case 'field':
          if (!Array.isArray(v) && step.name in v) next.push((v as Record<string, unknown>)[step.name]);
          break;
        case 'index':
          if (Array.isArray(v) && step.index < v.length) next.push(v[step.index]);
          break;
        case 'all':
          next.push(...(Array.isArray(v) ? v : Object.values(v)));
          break;
        case 'filter':
          for (const item of Array.isArray(v) ? v : []) {
            let x: unknown = item;
            for (const k of step.path) x = x !== null && typeof x === 'object' ? (x as Record<string, unknown>)[k] : undefined;
            if (x !== undefined && (String(x) === step.value) === (step.op === '==')) next.push(item);
          }
          break;
      }
    }
    current = next;
  }
  return current;
}
