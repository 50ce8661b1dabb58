// The admission configuration in force: webhook configurations, ValidatingAdmissionPolicies and
// their bindings, kept from the watch cache (listed once, then followed), so a request never reads
// the store to learn which webhooks to call. Objects are sorted by name, the order in which
// kube-apiserver calls them.
import type { Store } from '../../storage/types.js';

const GROUP = '/admissionregistration.k8s.io/';
export const CONFIG_PREFIXES = {
  mutating: `${GROUP}mutatingwebhookconfigurations/`,
  validating: `${GROUP}validatingwebhookconfigurations/`,
  policies: `${GROUP}validatingadmissionpolicies/`,
  bindings: `${GROUP}validatingadmissionpolicybindings/`,
} as const;

type Section = keyof typeof CONFIG_PREFIXES;

export class AdmissionConfigCache {
  private readonly objects = new Map<Section, Map<string, Readonly<Record<string, any>>>>();
  private readonly sorted = new Map<Section, Readonly<Record<string, any>>[]>();
  private started = false;

  constructor(private readonly store: Store) {}

  /** Lists and watches on first use (the store is open by the time a request arrives). */
  private start(): void {
    if (this.started) return;
    this.started = true;
    for (const section of Object.keys(CONFIG_PREFIXES) as Section[]) {
      const prefix = CONFIG_PREFIXES[section];
      const m = new Map<string, Readonly<Record<string, any>>>();
      this.objects.set(section, m);
      const listed = this.store.list(prefix);
      for (const o of listed.items) m.set(o.key, o.obj);
      this.store.watch(prefix, listed.revision, (e) => {
        if (e.type === 'DELETED') m.delete(e.object.key); else m.set(e.object.key, e.object.obj);
        this.sorted.delete(section);
      });
    }
  }

  get(section: Section): readonly Readonly<Record<string, any>>[] {
    this.start();
    let s = this.sorted.get(section);
    if (!s) {
      s = [...this.objects.get(section)!.values()].sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
      this.sorted.set(section, s);
    }
    return s;
  }

  /** True when nothing is configured: the common case costs one check per write. */
  empty(): boolean {
    this.start();
    for (const m of this.objects.values()) if (m.size) return false;
    return true;
  }
}
