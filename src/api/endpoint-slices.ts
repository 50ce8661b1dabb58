// EndpointSlice facts both the control plane (which writes slices) and nodes (which read them: the
// service proxy, cluster DNS) need: the label naming a slice's Service, and how an endpoint's
// conditions read when a field is unset (discovery.k8s.io/v1: ready nil means ready, serving nil
// means "as ready", terminating nil means not terminating).

export const LABEL_SERVICE_NAME = 'kubernetes.io/service-name';

export interface EndpointConditions { ready?: boolean | null; serving?: boolean | null; terminating?: boolean | null }

export function endpointReady(c: EndpointConditions | undefined): boolean {
  return c?.ready ?? true;
}

export function endpointServing(c: EndpointConditions | undefined): boolean {
  return c?.serving ?? endpointReady(c);
}

export function endpointTerminating(c: EndpointConditions | undefined): boolean {
  return c?.terminating ?? false;
}
