// Cluster labels (`--cluster-label k=v`): the same rules as any object's labels, from the one
// definition in src/api, checked on the site before it registers and on the manager before it
// writes them.
import { validateLabels } from '../api/validation/meta.js';

/** Why `labels` are not valid Kubernetes labels, or undefined when they are. */
export function validLabels(labels: unknown): string | undefined {
  if (labels === null || typeof labels !== 'object' || Array.isArray(labels)) return 'must be an object of strings';
  for (const v of Object.values(labels)) if (typeof v !== 'string') return 'values must be strings';
  const causes = validateLabels(labels, 'labels');
  return causes.length ? causes.map((c) => `${c.field}: ${c.message}`).join('; ') : undefined;
}

/** `k=v` flags into a label map; throws with the flag's text when one is malformed. */
export function parseClusterLabels(flags: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const f of flags) {
    const eq = f.indexOf('=');
    if (eq <= 0) throw new Error(`--cluster-label: expected key=value, got "${f}"`);
    out[f.slice(0, eq)] = f.slice(eq + 1);
  }
  const bad = validLabels(out);
  if (bad) throw new Error(`--cluster-label: ${bad}`);
  return out;
}
