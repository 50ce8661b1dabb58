// DefaultStorageClass admission: a claim that names no storage class gets the cluster's default one
// (the class annotated `storageclass.kubernetes.io/is-default-class: "true"`; the newest if several).
// A claim that sets `storageClassName: ""` asks for no class and is left alone.
import type { Store } from '../storage/types.js';

const DEFAULT_CLASS = 'storageclass.kubernetes.io/is-default-class';
const DEFAULT_CLASS_BETA = 'storageclass.beta.kubernetes.io/is-default-class';

export function setDefaultStorageClass(store: Store, pvc: Record<string, any>): void {
  const spec = pvc.spec;
  if (!spec || (spec.storageClassName !== undefined && spec.storageClassName !== null)) return;
  let best: Record<string, any> | undefined;
  for (const { obj } of store.list('/storage.k8s.io/storageclasses/').items) {
    const a = obj.metadata?.annotations ?? {};
    if (a[DEFAULT_CLASS] !== 'true' && a[DEFAULT_CLASS_BETA] !== 'true') continue;
    const newer = !best || String(obj.metadata.creationTimestamp) > String(best.metadata.creationTimestamp)
      || (obj.metadata.creationTimestamp === best.metadata.creationTimestamp && obj.metadata.name < best.metadata.name);
    if (newer) best = obj;
  }
  if (best) spec.storageClassName = best.metadata.name;
}
