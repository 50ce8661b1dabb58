// Kubernetes' certificate admission plugins:
// - CertificateSubjectRestriction: no request to the kube-apiserver-client signer for the
//   system:masters group (a certificate for it would bypass authorization altogether);
// - CertificateApproval: writing /approval needs the `approve` verb on the request's signer
//   (resource `signers` of certificates.k8s.io, by name or by `<domain>/*`);
// - CertificateSigning: setting status.certificate needs the `sign` verb on the signer.
// RBAC on the subresources themselves is checked before admission, as for every request.
import { ApiError } from '../api/status.js';
import { SIGNER_KUBE_APISERVER_CLIENT, parseCsr, CsrError } from '../api/csr.js';
import type { Authorizer } from './authorizer.js';
import type { Actor } from './objects.js';

type Obj = Record<string, any>;

function forbidden(csr: Obj, reason: string): ApiError {
  const name = csr.metadata?.name ?? '';
  return new ApiError(403, 'Forbidden', `certificatesigningrequests.certificates.k8s.io "${name}" is forbidden: ${reason}`,
    { name, group: 'certificates.k8s.io', kind: 'certificatesigningrequests' });
}

export function restrictCsrSubject(csr: Obj): void {
  if (csr.spec?.signerName !== SIGNER_KUBE_APISERVER_CLIENT) return;
  let orgs: string[] = [];
  try {
    orgs = parseCsr(Buffer.from(String(csr.spec?.request ?? ''), 'base64').toString('latin1')).organizations;
  } catch (e) {
    if (e instanceof CsrError) return;   // validation has already said why
    throw e;
  }
  if (orgs.includes('system:masters')) {
    throw forbidden(csr, `use of ${SIGNER_KUBE_APISERVER_CLIENT} signer with system:masters group is not allowed`);
  }
}

/** Whether `actor` may `verb` (approve, sign) requests of `signerName`: by exact name or `<domain>/*`. */
function mayUseSigner(authz: Authorizer, actor: Actor, verb: string, signerName: string): boolean {
  const slash = signerName.indexOf('/');
  const names = [signerName, ...(slash > 0 ? [`${signerName.slice(0, slash)}/*`] : [])];
  return names.some((name) => authz.authorize({
    user: { name: actor.user, groups: actor.groups }, verb, apiGroup: 'certificates.k8s.io', resource: 'signers', name,
    path: '', resourceRequest: true,
  }).allowed);
}

export function admitCsrUpdate(authz: Authorizer | undefined, csr: Obj, old: Readonly<Obj>, subresource: string | undefined, actor: Actor): void {
  if (!authz) return;
  const signer = String(csr.spec?.signerName ?? '');
  if (subresource === 'approval' && !mayUseSigner(authz, actor, 'approve', signer)) {
    throw forbidden(csr, `user not permitted to approve requests with signerName "${signer}"`);
  }
  if (subresource === 'status' && csr.status?.certificate && csr.status.certificate !== old.status?.certificate
    && !mayUseSigner(authz, actor, 'sign', signer)) {
    throw forbidden(csr, `user not permitted to sign requests with signerName "${signer}"`);
  }
}
