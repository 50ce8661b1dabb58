// AdmissionReview v1: the request a webhook receives and the checks on the response it returns.
import { randomUUID } from 'node:crypto';
import type { AdmissionAttributes } from './matching.js';

export interface AdmissionRequest {
  uid: string;
  kind: { group: string; version: string; kind: string };
  resource: { group: string; version: string; resource: string };
  subResource?: string;
  requestKind: { group: string; version: string; kind: string };
  requestResource: { group: string; version: string; resource: string };
  requestSubResource?: string;
  name?: string;
  namespace?: string;
  operation: string;
  userInfo: AdmissionAttributes['userInfo'];
  object: unknown;
  oldObject: unknown;
  dryRun: boolean;
  options: unknown;
}

const OPTIONS_KIND = { CREATE: 'CreateOptions', UPDATE: 'UpdateOptions', DELETE: 'DeleteOptions', CONNECT: undefined } as const;

/** The `request` of an AdmissionReview (also CEL's `request` variable). */
export function buildAdmissionRequest(a: AdmissionAttributes, uid: string = randomUUID()): AdmissionRequest {
  const { info } = a;
  const kind = { group: info.group, version: info.version, kind: info.kind };
  const resource = { group: info.group, version: info.version, resource: info.plural };
  const optionsKind = OPTIONS_KIND[a.operation];
  const req: AdmissionRequest = {
    uid, kind, resource,
    requestKind: kind, requestResource: resource,
    operation: a.operation,
    userInfo: a.userInfo,
    object: a.operation === 'DELETE' ? null : a.object ?? null,
    oldObject: a.operation === 'CREATE' ? null : a.oldObject ?? null,
    dryRun: a.dryRun,
    options: optionsKind ? { apiVersion: 'meta.k8s.io/v1', kind: optionsKind, ...(a.options ?? {}) } : null,
  };
  if (a.subresource) { req.subResource = a.subresource; req.requestSubResource = a.subresource; }
  if (a.name) req.name = a.name;
  if (a.namespace && info.namespaced) req.namespace = a.namespace;
  return req;
}

export function admissionReview(request: AdmissionRequest): Record<string, unknown> {
  return { apiVersion: 'admission.k8s.io/v1', kind: 'AdmissionReview', request };
}

export interface AdmissionResponse {
  uid: string;
  allowed: boolean;
  status?: { code?: number; message?: string; reason?: string };
  patch?: string;
  patchType?: string;
  warnings?: string[];
  auditAnnotations?: Record<string, string>;
}

/** The response of a review, or an error message worded as kube-apiserver words it. */
export function parseAdmissionResponse(body: unknown, uid: string, mutating: boolean): AdmissionResponse {
  const review = body as Record<string, any> | null;
  if (!review || typeof review !== 'object') throw new Error('expected AdmissionReview body');
  if (review.apiVersion !== 'admission.k8s.io/v1' || review.kind !== 'AdmissionReview') {
    throw new Error(`expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got ${review.apiVersion ?? ''}, Kind=${review.kind ?? ''}`);
  }
  const r = review.response as AdmissionResponse | undefined;
  if (!r || typeof r !== 'object') throw new Error('webhook response was absent');
  if (r.uid !== uid) throw new Error(`expected response.uid="${uid}", got "${r.uid ?? ''}"`);
  if (typeof r.allowed !== 'boolean') throw new Error('webhook response.allowed is not a boolean');
  if (r.patch !== undefined) {
    if (!mutating) throw new Error('validating webhook may not return response.patch');
    if (r.patchType !== 'JSONPatch') throw new Error(`webhook returned invalid response.patchType of "${r.patchType ?? ''}"`);
  } else if (r.patchType !== undefined && r.patchType !== '') {
    throw new Error('webhook returned response.patchType but not response.patch');
  }
  return r;
}
