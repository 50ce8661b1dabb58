// YAML in and out, and a line diff drawn as a unified diff: loaded only when an object's page opens
// (the `yaml` and `diff` packages are a third of the page's bytes otherwise).
import { parse, stringify } from 'yaml';
import { structuredPatch } from 'diff';
import { h } from './dom.js';

/** As `kubectl get -o yaml` shows it: managedFields left out (they are the server's bookkeeping). */
export function toYaml(obj: unknown): string {
  return stringify(withoutManagedFields(obj), { lineWidth: 0, aliasDuplicateObjects: false });
}

export function withoutManagedFields(obj: any): any {
  if (!obj || typeof obj !== 'object' || !obj.metadata?.managedFields) return obj;
  const { managedFields: _drop, ...metadata } = obj.metadata;
  return { ...obj, metadata };
}

/** The object a YAML text holds, or an Error saying where the text is wrong. */
export function fromYaml(text: string): any {
  const v = parse(text, { prettyErrors: true });
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('The YAML must be one object (a mapping with apiVersion, kind and metadata).');
  return v;
}

/** A unified diff (3 lines of context) of two YAML texts; null when they are the same. */
export function diffView(before: string, after: string): HTMLElement | null {
  const patch = structuredPatch('live', 'edited', before, after, '', '', { context: 3 });
  if (!patch.hunks.length) return null;
  const pre = h('pre', { class: 'diff', 'data-test': 'yaml-diff' });
  for (const hunk of patch.hunks) {
    pre.append(h('span', { class: 'hunk' }, `@@ -${hunk.oldStart},${hunk.oldLines} +${hunk.newStart},${hunk.newLines} @@`));
    for (const line of hunk.lines) {
      const cls = line.startsWith('+') ? 'add' : line.startsWith('-') ? 'del' : '';
      pre.append(h('span', { class: cls }, line));
    }
  }
  return pre;
}
