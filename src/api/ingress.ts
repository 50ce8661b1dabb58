// Which Ingresses the built-in ingress controller serves, and which Secrets they name: one definition
// read by the agents (routing), the server's ingress status loop (status, events) and the node
// authorizer (which TLS Secrets a node may read), so the three never disagree about "ours".
//
// Kubernetes' rules: an Ingress names its class in `spec.ingressClassName` (or, before 1.18, the
// `kubernetes.io/ingress.class` annotation, which still wins when both are set, as the controllers
// read it); an Ingress naming no class belongs to the default class, the one IngressClass annotated
// `ingressclass.kubernetes.io/is-default-class: "true"`. A class is ours when its `spec.controller`
// is skiff's.

export const INGRESS_CONTROLLER = 'skiff.io/ingress';
export const INGRESS_CLASS_NAME = 'skiff';
export const DEFAULT_CLASS_ANNOTATION = 'ingressclass.kubernetes.io/is-default-class';
export const LEGACY_CLASS_ANNOTATION = 'kubernetes.io/ingress.class';
export const TLS_SECRET_TYPE = 'kubernetes.io/tls';
/** A node serving ingress traffic says so on its Node object: `http=80,https=443`. */
export const PROXY_NODE_ANNOTATION = 'ingress.skiff.io/proxy';

type Obj = { metadata?: { name?: string; namespace?: string; annotations?: Record<string, string> }; spec?: any };

/** The IngressClass the server creates at bootstrap (as k3s ships `traefik`), default for class-less Ingresses. */
export function skiffIngressClass(): Record<string, any> {
  return {
    apiVersion: 'networking.k8s.io/v1', kind: 'IngressClass',
    metadata: { name: INGRESS_CLASS_NAME, annotations: { [DEFAULT_CLASS_ANNOTATION]: 'true' } },
    spec: { controller: INGRESS_CONTROLLER },
  };
}

export interface ServedClasses {
  /** Names of the IngressClasses whose controller is skiff's. */
  names: Set<string>;
  /** Whether one of them is the default class (Ingresses without a class are then ours). */
  isDefault: boolean;
}

export function servedClasses(classes: Iterable<Obj>): ServedClasses {
  const names = new Set<string>();
  let isDefault = false;
  for (const c of classes) {
    if (c.spec?.controller !== INGRESS_CONTROLLER || !c.metadata?.name) continue;
    names.add(c.metadata.name);
    if (c.metadata.annotations?.[DEFAULT_CLASS_ANNOTATION] === 'true') isDefault = true;
  }
  return { names, isDefault };
}

/** The class an Ingress names, if any (the legacy annotation first, as the controllers read it). */
export function ingressClassOf(ing: Obj): string | undefined {
  const legacy = ing.metadata?.annotations?.[LEGACY_CLASS_ANNOTATION];
  if (typeof legacy === 'string' && legacy) return legacy;
  const named = ing.spec?.ingressClassName;
  return typeof named === 'string' && named ? named : undefined;
}

export function isServedIngress(ing: Obj, served: ServedClasses): boolean {
  const cls = ingressClassOf(ing);
  return cls === undefined ? served.isDefault : served.names.has(cls);
}

/** The Secret names `spec.tls[].secretName` of an Ingress (same namespace as the Ingress). */
export function tlsSecretNames(ing: Obj): string[] {
  const tls = Array.isArray(ing.spec?.tls) ? ing.spec.tls : [];
  const out = new Set<string>();
  for (const t of tls) if (typeof t?.secretName === 'string' && t.secretName) out.add(t.secretName);
  return [...out];
}
