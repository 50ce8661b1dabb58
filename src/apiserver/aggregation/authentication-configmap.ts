// kube-system/extension-apiserver-authentication, as kube-apiserver publishes it: how extension API
// servers (metrics-server, any server built on k8s.io/apiserver) authenticate requests. Client
// certificates from the client CA are users; requests carrying X-Remote-User and friends are trusted
// only over a connection presenting a certificate from the request-header CA with an allowed name
// (the server's front-proxy certificate). Those servers read this ConfigMap at start (RBAC: the
// extension-apiserver-authentication-reader Role), so it is restored whenever edited or deleted.
import type { ApiClient } from '../../client/types.js';
import type { InformerFactory } from '../../client/informer-factory.js';
import { isAlreadyExists, Resources } from '../../client/types.js';
import { runController, type RunningController } from '../../client/controller.js';
import { WorkQueue } from '../../client/workqueue.js';
import type { KObject } from '../../api/object.js';

export const AUTHENTICATION_CONFIGMAP = 'extension-apiserver-authentication';
const NAMESPACE = 'kube-system';

export interface FrontProxyTrust {
  clientCaPem: string;
  requestHeaderCaPem: string;
  /** CNs allowed to assert identities (the front-proxy certificate's). */
  allowedNames: string[];
}

/** The ConfigMap's data, keyed as kube-apiserver keys it (lists are JSON arrays in strings). */
export function authenticationData(t: FrontProxyTrust): Record<string, string> {
  return {
    'client-ca-file': t.clientCaPem,
    'requestheader-client-ca-file': t.requestHeaderCaPem,
    'requestheader-allowed-names': JSON.stringify(t.allowedNames),
    'requestheader-username-headers': JSON.stringify(['X-Remote-User']),
    'requestheader-group-headers': JSON.stringify(['X-Remote-Group']),
    'requestheader-extra-headers-prefix': JSON.stringify(['X-Remote-Extra-']),
  };
}

type ConfigMap = KObject & { data?: Record<string, string> };

export function startAuthenticationPublisher(ctx: { client: ApiClient; informers: InformerFactory }, trust: FrontProxyTrust): RunningController {
  const maps = ctx.informers.informerFor<ConfigMap>(Resources.configMaps, { fieldSelector: `metadata.name=${AUTHENTICATION_CONFIGMAP}` });
  const queue = new WorkQueue<string>();
  const want = authenticationData(trust);
  const enqueue = (o: KObject) => { if (o.metadata.namespace === NAMESPACE) queue.add(AUTHENTICATION_CONFIGMAP); };
  maps.addHandlers({ onUpdate: (_o, n) => enqueue(n), onDelete: enqueue });
  queue.add(AUTHENTICATION_CONFIGMAP);
  return runController({
    name: 'cluster-authentication-trust', queue, informers: [maps],
    async reconcile() {
      const have = maps.getByName(NAMESPACE, AUTHENTICATION_CONFIGMAP);
      if (!have) {
        await ctx.client.create(Resources.configMaps, NAMESPACE, {
          apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: AUTHENTICATION_CONFIGMAP, namespace: NAMESPACE }, data: want,
        }).catch((e) => { if (!isAlreadyExists(e)) throw e; });
        return;
      }
      const data = have.data ?? {};
      if (Object.keys(want).every((k) => data[k] === want[k])) return;
      await ctx.client.patch(Resources.configMaps, NAMESPACE, AUTHENTICATION_CONFIGMAP, 'merge', { data: want });
    },
  });
}
