// The root CA publisher: every namespace gets a ConfigMap `kube-root-ca.crt` holding the CA that signs
// the API server's certificate, so that pods can verify the server (the service-account volume that
// admission adds to pods mounts it as ca.crt). Restored when deleted or edited, as Kubernetes'
// root-ca-cert-publisher does.
import type { KObject } from '../api/object.js';
import { isAlreadyExists, isNotFound, Resources, type ResourceRef } from '../client/types.js';
import type { ControllerContext } from './context.js';
import { runController, type RunningController } from '../client/controller.js';
import { WorkQueue } from '../client/workqueue.js';

export const ROOT_CA_CONFIGMAP = 'kube-root-ca.crt';
const DESCRIPTION = 'Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints '
  + 'such as the internal service IP or kubernetes.default.svc. No other usage is guaranteed across distributions of Kubernetes clusters.';
const NAMESPACES: ResourceRef = Resources.namespaces;
const CONFIGMAPS: ResourceRef = Resources.configMaps;

type ConfigMap = KObject & { data?: Record<string, string> };

export function startRootCaPublisher(ctx: ControllerContext, caPem: string): RunningController {
  const namespaces = ctx.informers.informerFor(NAMESPACES);
  // Only the one ConfigMap per namespace, not every ConfigMap of the cluster.
  const maps = ctx.informers.informerFor<ConfigMap>(CONFIGMAPS, { fieldSelector: `metadata.name=${ROOT_CA_CONFIGMAP}` });
  const queue = new WorkQueue<string>();
  const enqueueNs = (o: KObject) => queue.add(o.metadata.name!);
  const enqueueMap = (o: KObject) => queue.add(o.metadata.namespace!);
  namespaces.addHandlers({ onAdd: enqueueNs, onUpdate: (_o, n) => enqueueNs(n) });
  maps.addHandlers({ onUpdate: (_o, n) => enqueueMap(n), onDelete: enqueueMap });
  return runController({
    name: 'root-ca-publisher', queue, informers: [namespaces, maps],
    async reconcile(ns) {
      const namespace = namespaces.getByName(undefined, ns);
      if (!namespace || namespace.metadata.deletionTimestamp) return;
      const want = { 'ca.crt': caPem };
      const have = maps.getByName(ns, ROOT_CA_CONFIGMAP) ?? await ctx.client.get<ConfigMap>(CONFIGMAPS, ns, ROOT_CA_CONFIGMAP).catch((e) => {
        if (isNotFound(e)) return undefined;
        throw e;
      });
      if (!have) {
        await ctx.client.create(CONFIGMAPS, ns, {
          apiVersion: 'v1', kind: 'ConfigMap',
          metadata: { name: ROOT_CA_CONFIGMAP, namespace: ns, annotations: { 'kubernetes.io/description': DESCRIPTION } },
          data: want,
        }).catch((e) => { if (!isAlreadyExists(e)) throw e; });
        return;
      }
      const data = have.data ?? {};
      if (data['ca.crt'] === caPem && Object.keys(data).length === 1 && have.metadata.annotations?.['kubernetes.io/description'] === DESCRIPTION) return;
      await ctx.client.patch(CONFIGMAPS, ns, ROOT_CA_CONFIGMAP, 'merge', {
        metadata: { annotations: { 'kubernetes.io/description': DESCRIPTION } },
        data: { ...Object.fromEntries(Object.keys(data).map((k) => [k, null])), ...want },
      });
    },
  });
}
