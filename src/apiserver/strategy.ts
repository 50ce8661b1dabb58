// What differs per kind on write, beyond defaults and validation: how status and spec are separated,
// when `metadata.generation` moves, and how deletion proceeds. Kubernetes keeps these in each
// registry's "strategy"; here they are small functions keyed by group/resource.
import type { KindInfo } from '../api/kinds.js';
import { qosClass } from '../api/pod.js';

/** Kinds whose `metadata.generation` tracks spec changes (everything with a spec and a status subresource, and every CR). */
export function tracksGeneration(info: KindInfo): boolean {
  return Boolean(info.crd) || (info.subresources ?? []).includes('status');
}

export function hasStatusSubresource(info: KindInfo): boolean {
  return (info.subresources ?? []).includes('status');
}

/** Fields a main-resource write may not change (they belong to the status subresource). */
export function resetStatusOnCreate(info: KindInfo, obj: Record<string, any>): void {
  if (!hasStatusSubresource(info)) return;
  const gr = `${info.group}/${info.plural}`;
  if (gr === '/pods') {
    obj.status = { phase: 'Pending', qosClass: qosClass(obj) };
  } else if (gr === '/namespaces') {
    obj.status = { phase: 'Active' };
  } else if (gr === '/persistentvolumeclaims' || gr === '/persistentvolumes') {
    obj.status = { phase: 'Pending' };
  } else if (gr === '/nodes') {
    // Nodes register with their status in the create (the kubelet does this); keep it.
  } else if (gr === '/services') {
    obj.status = { loadBalancer: {} };
  } else if (gr === 'apiextensions.k8s.io/customresourcedefinitions') {
    obj.status = {};
  } else {
    delete obj.status;
  }
}

/** Everything that counts as "spec" for generation: the object minus metadata and status. */
export function specChanged(a: Record<string, any>, b: Record<string, any>): boolean {
  const strip = (o: Record<string, any>) => { const { metadata: _m, status: _s, ...rest } = o; return JSON.stringify(rest); };
  return strip(a) !== strip(b);
}

/** Deletion mode of an object. Namespaces use spec.finalizers; pods on a node terminate gracefully. */
export function isNamespace(info: KindInfo): boolean {
  return info.group === '' && info.plural === 'namespaces';
}
export function isPod(info: KindInfo): boolean {
  return info.group === '' && info.plural === 'pods';
}
