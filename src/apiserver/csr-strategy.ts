// What a write may change on a CertificateSigningRequest, per endpoint (Kubernetes' csr strategies):
// the main resource changes metadata only; /approval changes status.conditions only (kubectl
// certificate approve|deny); /status changes the rest of status (the signer's certificate and
// Failed condition) but never adds or drops Approved/Denied, which belong to /approval.
// Condition timestamps the client left out are filled in here.
import { nowRfc3339 } from '../util/time.js';

type Obj = Record<string, any>;

const APPROVAL_TYPES = new Set(['Approved', 'Denied']);

/** Rewrites `next` (already a copy) so that only what `subresource` may change differs from `old`. */
export function prepareCsrUpdate(subresource: string | undefined, next: Obj, sent: Obj, old: Readonly<Obj>): void {
  next.spec = structuredClone(old.spec);
  const oldStatus: Obj = structuredClone(old.status ?? {});
  const conditions = Array.isArray(sent.status?.conditions) ? sent.status.conditions : [];
  if (subresource === 'approval') {
    next.status = { ...oldStatus, conditions: structuredClone(conditions) };
  } else if (subresource === 'status') {
    // Approved/Denied instances stay as they were; everything else in status is the writer's.
    const kept = (oldStatus.conditions ?? []).filter((c: Obj) => APPROVAL_TYPES.has(c?.type));
    const others = conditions.filter((c: Obj) => !APPROVAL_TYPES.has(c?.type));
    next.status = { ...structuredClone(sent.status ?? {}), conditions: [...kept, ...structuredClone(others)] };
  } else {
    next.status = oldStatus;
  }
  if (!next.status.conditions?.length) delete next.status.conditions;
  stampConditions(next, old);
}

function stampConditions(next: Obj, old: Readonly<Obj>): void {
  const now = nowRfc3339();
  for (const c of next.status?.conditions ?? []) {
    if (!c || typeof c !== 'object') continue;
    const prev = (old.status?.conditions ?? []).find((o: Obj) => o?.type === c.type);
    c.lastUpdateTime ??= now;
    if (!c.lastTransitionTime) c.lastTransitionTime = prev && prev.status === c.status && prev.lastTransitionTime ? prev.lastTransitionTime : now;
  }
}
