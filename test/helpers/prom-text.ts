// A small parser of Prometheus' text exposition format (0.0.4), strict enough that a malformed
// scrape fails the test: every sample line is `name{labels} value`, every family has TYPE and HELP.
export interface Sample { name: string; labels: Record<string, string>; value: number }
export interface Scrape { samples: Sample[]; types: Map<string, string>; names: Set<string> }

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)(\s+-?\d+)?$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*/y;

export function parsePrometheusText(text: string): Scrape {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  const helps = new Set<string>();
  for (const [i, line] of text.split('\n').entries()) {
    if (line === '') continue;
    if (line.startsWith('# HELP ')) { helps.add(line.split(' ')[2]); continue; }
    if (line.startsWith('# TYPE ')) {
      const [, , name, type] = line.split(' ');
      if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(type)) throw new Error(`line ${i + 1}: bad type ${type}`);
      types.set(name, type);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = SAMPLE.exec(line);
    if (!m) throw new Error(`line ${i + 1}: not a sample: ${line}`);
    const labels: Record<string, string> = {};
    if (m[3]) {
      LABEL.lastIndex = 0;
      let l: RegExpExecArray | null;
      let end = 0;
      while ((l = LABEL.exec(m[3]))) { labels[l[1]] = l[2].replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c)); end = LABEL.lastIndex; }
      if (end !== m[3].length) throw new Error(`line ${i + 1}: bad labels: ${m[3]}`);
    }
    const value = m[4] === '+Inf' ? Infinity : m[4] === '-Inf' ? -Infinity : Number(m[4]);
    if (Number.isNaN(value) && m[4] !== 'NaN') throw new Error(`line ${i + 1}: bad value ${m[4]}`);
    samples.push({ name: m[1], labels, value });
  }
  for (const name of types.keys()) if (!helps.has(name)) throw new Error(`${name} has a TYPE but no HELP`);
  const names = new Set<string>();
  for (const s of samples) names.add(s.name.replace(/_(bucket|sum|count)$/, (x) => (types.has(s.name.slice(0, -x.length)) ? '' : x)));
  return { samples, types, names };
}
