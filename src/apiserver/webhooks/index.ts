// Dynamic admission, in kube-apiserver's order: mutating webhooks, then (after the object is
// validated again if a webhook changed it) ValidatingAdmissionPolicies, then validating webhooks.
import type { Store } from '../../storage/types.js';
import { BUILTIN_KINDS, type KindInfo } from '../../api/kinds.js';
import { AdmissionConfigCache } from './config.js';
import { CallPool, type Dialer } from './client.js';
import { runMutatingWebhooks, runValidatingWebhooks, type WebhookEnv } from './dispatcher.js';
import { runValidatingPolicies, type KindResolver } from './policy.js';
import { exemptFromAdmission, type AdmissionAttributes } from './matching.js';

export type { AdmissionAttributes } from './matching.js';

const builtinResolver: KindResolver = (apiVersion, kind) => {
  const [group, version] = apiVersion.includes('/') ? apiVersion.split('/', 2) as [string, string] : ['', apiVersion];
  return BUILTIN_KINDS.find((k) => k.group === group && k.version === version && k.kind === kind);
};

export class DynamicAdmission {
  readonly config: AdmissionConfigCache;
  private readonly env: WebhookEnv;
  private defaultCa = '';

  constructor(private readonly store: Store, private readonly resolve: KindResolver = builtinResolver, pool = new CallPool()) {
    this.config = new AdmissionConfigCache(store);
    this.env = { store, pool, defaultCa: () => this.defaultCa };
  }

  /** The cluster CA, trusted for webhooks that give no caBundle. */
  useDefaultCa(pem: string): void { this.defaultCa = pem; }

  /** Routes calls to endpoint pods through their node's tunnel (set once the tunnel server exists). */
  useDialer(dialer: Dialer): void { this.env.dialer = dialer; }

  /**
   * Admits one write. `a.object` is mutated in place by mutating webhooks; `revalidate` runs the
   * object's validation again when they changed it. Returns the warnings for the client.
   */
  async admit(a: AdmissionAttributes, revalidate: () => void): Promise<string[]> {
    if (exemptFromAdmission(a.info) || this.config.empty()) return [];
    const warnings: string[] = [];
    if (await runMutatingWebhooks(this.env, this.config.get('mutating'), a, warnings)) revalidate();
    runValidatingPolicies(this.store, this.resolve, this.config.get('policies'), this.config.get('bindings'), a, warnings);
    await runValidatingWebhooks(this.env, this.config.get('validating'), a, warnings);
    return warnings;
  }
}

export function attributes(info: KindInfo, operation: AdmissionAttributes['operation'], init: Omit<AdmissionAttributes, 'info' | 'operation'>): AdmissionAttributes {
  return { info, operation, ...init };
}
