// The certificate signer (kube-controller-manager's csrsigning): an approved
// CertificateSigningRequest for one of the built-in signers gets its certificate from skiff's CAs
// (kube-apiserver-client and kube-apiserver-client-kubelet from the client CA, which the API server
// trusts for client certificates; kubelet-serving from the server CA). A request that breaks its
// signer's rules gets a Failed condition (SignerValidationFailure) instead. The certificate lives
// `expirationSeconds` (at least 600 s), at most the signer's maximum (a year, as
// --cluster-signing-duration). Signing itself runs in the bounded PKI worker pool (pki/isolated.ts).
import type { KObject } from '../api/object.js';
import type { ResourceRef } from '../client/types.js';
import { isConflict, isNotFound } from '../client/types.js';
import type { ControllerContext } from './context.js';
import type { RunningController } from '../client/controller.js';
import { runController } from '../client/controller.js';
import { WorkQueue } from '../client/workqueue.js';
import {
  BUILTIN_SIGNERS, certificateDurationSeconds, CsrError, isApproved, isDenied, isFailed, parseCsr, signerRefusal,
  SIGNER_KUBELET_SERVING,
} from '../api/csr.js';
import { nowRfc3339 } from '../util/time.js';
import { logger } from '../util/log.js';

export const CSR_RESOURCE: ResourceRef = Object.freeze({ group: 'certificates.k8s.io', version: 'v1', resource: 'certificatesigningrequests' });
const MAX_DURATION_SECONDS = 365 * 86_400;
const log = logger('csr-signing');

type Csr = KObject & { spec?: Record<string, any>; status?: Record<string, any> };

/** Signs a PEM request: `client` from the client CA, `server` from the server CA; returns the certificate PEM. */
export type CsrSigner = (csrPem: string, usage: 'client' | 'server', seconds: number) => Promise<string>;

export function startCsrSigningController(ctx: ControllerContext, sign: CsrSigner): RunningController {
  const csrs = ctx.informers.informerFor<Csr>(CSR_RESOURCE);
  const queue = new WorkQueue<string>();
  const enqueue = (o: KObject) => queue.add(o.metadata.name!);
  csrs.addHandlers({ onAdd: enqueue, onUpdate: (_o, n) => enqueue(n) });
  const loop = runController({
    name: 'csr-signing', queue,
    async reconcile(name) {
      const csr = csrs.getByName(undefined, name);
      if (!csr || csr.status?.certificate || !isApproved(csr) || isDenied(csr) || isFailed(csr)) return;
      const signer = String(csr.spec?.signerName ?? '');
      if (!BUILTIN_SIGNERS.includes(signer)) return;   // someone else's signer
      const pem = Buffer.from(String(csr.spec?.request ?? ''), 'base64').toString('latin1');
      let refusal: string | undefined;
      try {
        refusal = signerRefusal(signer, parseCsr(pem), csr.spec?.usages ?? []);
      } catch (e) {
        refusal = e instanceof CsrError ? e.message : String(e);
      }
      const status = structuredClone(csr.status ?? {});
      if (refusal) {
        const now = nowRfc3339();
        status.conditions = [...(status.conditions ?? []), {
          type: 'Failed', status: 'True', reason: 'SignerValidationFailure', message: refusal, lastUpdateTime: now, lastTransitionTime: now,
        }];
      } else {
        const seconds = certificateDurationSeconds(csr.spec?.expirationSeconds, MAX_DURATION_SECONDS);
        const cert = await sign(pem, signer === SIGNER_KUBELET_SERVING ? 'server' : 'client', seconds);
        status.certificate = Buffer.from(cert).toString('base64');
      }
      try {
        await ctx.client.updateStatus(CSR_RESOURCE, undefined, { ...csr, status });
        log.info({ csr: name, signer, issued: !refusal, refusal }, refusal ? 'certificate request failed signer validation' : 'certificate issued');
      } catch (e) {
        if (isNotFound(e)) return;
        if (isConflict(e)) { queue.add(name); return; }
        throw e;
      }
    },
  });
  return { name: 'csr-signing', stop: () => loop.stop() };
}
