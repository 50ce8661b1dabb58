// Cell formats shared by the server-side Table printers, matching kubectl's (apimachinery's
// duration.HumanDuration, labels.FormatLabels, metav1.FormatLabelSelector).

import { loadSchemaDocs } from '../../api/schema.js';

/** A decoded JSON object: printers read optional fields of many kinds, so they stay untyped. */
export type J = any;

export interface ColumnDefinition {
  name: string;
  type: string;
  format: string;
  description: string;
  priority: number;
}

/** How one resource prints: its columns (built on first use) and the cells of an object's row. */
export interface Printer {
  columns: () => ColumnDefinition[];
  row: (obj: J, now: number) => unknown[];
}

/** A column; `description` is literal text, or `Type.field` to borrow that field's API doc. */
export function col(name: string, type: string, description: string, priority = 0, format = ''): ColumnDefinition {
  const ref = /^([A-Z]\w+)\.(\w+)$/.exec(description);
  if (ref) description = loadSchemaDocs().descriptions[ref[1]]?.[ref[2]] ?? '';
  return { name, type, format, description, priority };
}

export const nameCol = (): ColumnDefinition => col('Name', 'string', 'V1ObjectMeta.name', 0, 'name');
export const ageCol = (): ColumnDefinition => col('Age', 'string', 'V1ObjectMeta.creationTimestamp');

/** kubectl's approximate age: `45s`, `3m2s`, `12m`, `4h5m`, `20h`, `2d3h`, `45d`, `2y3d`, `9y`. */
export function humanDuration(ms: number): string {
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.trunc(seconds / 60);
  if (minutes < 10) return seconds % 60 === 0 ? `${minutes}m` : `${minutes}m${seconds % 60}s`;
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.trunc(minutes / 60);
  if (hours < 8) return minutes % 60 === 0 ? `${hours}h` : `${hours}h${minutes % 60}m`;
  if (hours < 48) return `${hours}h`;
  const days = Math.trunc(hours / 24);
  if (hours < 24 * 8) return hours % 24 === 0 ? `${days}d` : `${days}d${hours % 24}h`;
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.trunc(days / 365);
  if (hours < 24 * 365 * 8) return days % 365 === 0 ? `${years}y` : `${years}y${days % 365}d`;
  return `${years}y`;
}

/** Age of a timestamp, `<unknown>` when unset. */
export function since(timestamp: string | undefined, now: number): string {
  if (!timestamp) return '<unknown>';
  const t = Date.parse(timestamp);
  return Number.isNaN(t) ? '<unknown>' : humanDuration(now - t);
}

/** `a=b,c=d` sorted by key, `<none>` when empty (labels.FormatLabels). */
export function formatLabels(labels: Record<string, string> | undefined): string {
  const s = Object.keys(labels ?? {}).sort().map((k) => `${k}=${labels![k]}`).join(',');
  return s || '<none>';
}

/** A LabelSelector as a selector string (`app=x,tier in (a,b),!gone`), '' when it selects nothing or all. */
export function selectorString(sel: J): string {
  if (!sel) return '';
  const reqs: [string, string][] = [];
  for (const [k, v] of Object.entries(sel.matchLabels ?? {})) reqs.push([k, `${k}=${v}`]);
  for (const e of sel.matchExpressions ?? []) {
    const values = [...(e.values ?? [])].sort().join(',');
    switch (e.operator) {
      case 'In': reqs.push([e.key, `${e.key} in (${values})`]); break;
      case 'NotIn': reqs.push([e.key, `${e.key} notin (${values})`]); break;
      case 'Exists': reqs.push([e.key, e.key]); break;
      case 'DoesNotExist': reqs.push([e.key, `!${e.key}`]); break;
    }
  }
  return reqs.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map((r) => r[1]).join(',');
}

/** metav1.FormatLabelSelector: the selector string, or `<none>`. */
export function formatSelector(sel: J): string {
  return selectorString(sel) || '<none>';
}

/** `list`, or its first `max` items and ` + N more...`. */
export function listWithMore(list: string[], max: number, empty = '<unset>'): string {
  if (list.length > max) return `${list.slice(0, max).join(',')} + ${list.length - max} more...`;
  return list.length ? list.join(',') : empty;
}

/** Container names and images, comma-joined (the wide CONTAINERS and IMAGES columns). */
export function containerCells(containers: J[] | undefined): [string, string] {
  const cs = containers ?? [];
  return [cs.map((c) => c.name ?? '').join(','), cs.map((c) => c.image ?? '').join(',')];
}

export function boolPtr(v: boolean | undefined): string {
  return v === undefined || v === null ? '<unset>' : v ? 'True' : 'False';
}

/** RWO,ROX,RWX,RWOP in that order, as kubectl abbreviates access modes. */
export function accessModes(modes: string[] | undefined): string {
  const m = modes ?? [];
  const out: string[] = [];
  if (m.includes('ReadWriteOnce')) out.push('RWO');
  if (m.includes('ReadOnlyMany')) out.push('ROX');
  if (m.includes('ReadWriteMany')) out.push('RWX');
  if (m.includes('ReadWriteOncePod')) out.push('RWOP');
  return out.join(',');
}
