// Auto-approval of node client certificates (kube-controller-manager's csrapproving, "selfnodeclient"):
// a request to the kube-apiserver-client-kubelet signer made by a node for its own identity
// (requestor system:node:<name> in group system:nodes, CN equal to the requestor, O system:nodes,
// client usages, no SANs) is approved, so nodes renew their client certificates without an admin.
// Kubernetes asks a SubjectAccessReview for `certificatesigningrequests/selfnodeclient`; skiff's
// default RBAC grants that to system:nodes, so the group check here is the same decision.
// Everything else waits for `kubectl certificate approve|deny`.
import type { KObject } from '../api/object.js';
import { isNotFound, isConflict } from '../client/types.js';
import type { ControllerContext } from './context.js';
import type { RunningController } from '../client/controller.js';
import { runController } from '../client/controller.js';
import { WorkQueue } from '../client/workqueue.js';
import { CsrError, isApproved, isDenied, kubeletClientRefusal, parseCsr, SIGNER_KUBELET_CLIENT } from '../api/csr.js';
import { CSR_RESOURCE } from './csr-signing.js';
import { nowRfc3339 } from '../util/time.js';

type Csr = KObject & { spec?: Record<string, any>; status?: Record<string, any> };

/** Whether `csr` is a node asking for its own client certificate (and nothing more). */
export function isSelfNodeClientRequest(csr: Csr): boolean {
  const spec = csr.spec ?? {};
  if (spec.signerName !== SIGNER_KUBELET_CLIENT) return false;
  const user = String(spec.username ?? '');
  if (!user.startsWith('system:node:') || !(spec.groups ?? []).includes('system:nodes')) return false;
  try {
    const parsed = parseCsr(Buffer.from(String(spec.request ?? ''), 'base64').toString('latin1'));
    return parsed.commonName === user && kubeletClientRefusal(parsed, spec.usages ?? []) === undefined;
  } catch (e) {
    if (e instanceof CsrError) return false;
    throw e;
  }
}

export function startCsrApprovingController(ctx: ControllerContext): RunningController {
  const csrs = ctx.informers.informerFor<Csr>(CSR_RESOURCE);
  const queue = new WorkQueue<string>();
  const enqueue = (o: KObject) => queue.add(o.metadata.name!);
  csrs.addHandlers({ onAdd: enqueue, onUpdate: (_o, n) => enqueue(n) });
  const loop = runController({
    name: 'csr-approving', queue,
    async reconcile(name) {
      const csr = csrs.getByName(undefined, name);
      if (!csr || isApproved(csr) || isDenied(csr) || csr.status?.certificate) return;
      if (!isSelfNodeClientRequest(csr)) return;
      const now = nowRfc3339();
      const conditions = [...(csr.status?.conditions ?? []), {
        type: 'Approved', status: 'True', reason: 'AutoApproved',
        message: 'Auto approving self kubelet client certificate after SubjectAccessReview.', lastUpdateTime: now, lastTransitionTime: now,
      }];
      try {
        await ctx.client.patch(CSR_RESOURCE, undefined, name, 'merge', {
          metadata: { resourceVersion: csr.metadata.resourceVersion }, status: { conditions },
        }, { subresource: 'approval' });
      } catch (e) {
        if (isNotFound(e)) return;
        if (isConflict(e)) { queue.add(name); return; }
        throw e;
      }
    },
  });
  return { name: 'csr-approving', stop: () => loop.stop() };
}
