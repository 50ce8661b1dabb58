// Objects every cluster has from its first start: the system namespaces, the `kubernetes` Service and
// its Endpoints, and the default RBAC roles. Created if missing on every start (idempotent), so a
// deleted default comes back on restart, as with Kubernetes' bootstrap controllers.
import { createHash } from 'node:crypto';
import { BUILTIN_KINDS, type KindInfo } from '../api/kinds.js';
import type { ObjectService, Actor } from '../apiserver/objects.js';
import { bootstrapRbacObjects } from '../apiserver/rbac-bootstrap.js';
import { flowControlDefaults, flowSchemaStatus, systemPriorityClasses } from '../apiserver/system-objects.js';
import { nowRfc3339 } from '../util/time.js';
import { addonCrd } from '../controllers/manifests.js';
import { metallbCrds } from '../controllers/loadbalancer/crds.js';
import { fleetCrds } from '../fleet/api.js';
import { upgradeCrd } from '../controllers/upgrade/api.js';
import { skiffIngressClass } from '../api/ingress.js';
import { logger } from '../util/log.js';
import { kubernetesEndpoints } from './kubernetes-endpoints.js';

const log = logger('bootstrap');

/** On skiff's own CRDs: a hash of the definition this release created them from. */
export const CRD_HASH_ANNOTATION = 'skiff.io/definition-hash';

export const SYSTEM_NAMESPACES = ['default', 'kube-system', 'kube-public', 'kube-node-lease'];

function kind(group: string, plural: string): KindInfo {
  return BUILTIN_KINDS.find((k) => k.group === group && k.plural === plural)!;
}

export interface BootstrapOptions {
  kubernetesServiceIp: string;
  advertiseAddress: string;
  port: number;
  /** k3s's default `local-path` StorageClass (served by the PersistentVolume controller). */
  localStorageClass?: boolean;
  /** The built-in ingress controller's IngressClass `skiff` (default class), unless ingress is disabled. */
  ingressClass?: boolean;
  /** The cluster DNS IP: kube-system/kube-dns is created with it (unless DNS is disabled). */
  clusterDns?: string;
}

export async function bootstrapObjects(objects: ObjectService, opts: BootstrapOptions): Promise<void> {
  const actor: Actor = { user: 'system:apiserver', groups: ['system:masters'], manager: 'skiff-bootstrap' };
  const ensure = async (info: KindInfo, obj: Record<string, any>) => {
    if (objects.tryGet(info, obj.metadata.namespace, obj.metadata.name)) return;
    try {
      await objects.create(info, obj.metadata.namespace, obj, { actor });
    } catch (e: any) {
      if (e?.code !== 409) throw e;
    }
  };
  // skiff's own CRDs change between releases (a new printer column, a new status field). A server
  // started on an older data dir replaces them when their definition differs, found by a hash of
  // the definition in an annotation, so an unchanged CRD is not rewritten on every start.
  const crdInfo = kind('apiextensions.k8s.io', 'customresourcedefinitions');
  const ensureCrd = async (crd: Record<string, any>) => {
    const hash = createHash('sha256').update(JSON.stringify(crd)).digest('hex').slice(0, 16);
    const want: Record<string, any> = { ...crd, metadata: { ...crd.metadata, annotations: { ...crd.metadata?.annotations, [CRD_HASH_ANNOTATION]: hash } } };
    const stored = objects.tryGet(crdInfo, undefined, crd.metadata.name);
    if (!stored) return ensure(crdInfo, want);
    if (stored.obj.metadata?.annotations?.[CRD_HASH_ANNOTATION] === hash) return;
    await objects.update(crdInfo, undefined, crd.metadata.name, (cur) => ({
      ...structuredClone(cur!.obj), spec: want.spec,
      metadata: { ...structuredClone(cur!.obj.metadata), annotations: { ...cur!.obj.metadata?.annotations, [CRD_HASH_ANNOTATION]: hash } },
    }), { actor });
    log.info({ crd: crd.metadata.name }, 'updated a skiff CRD to this release\'s definition');
  };
  const ns = kind('', 'namespaces');
  for (const name of SYSTEM_NAMESPACES) await ensure(ns, { apiVersion: 'v1', kind: 'Namespace', metadata: { name } });
  await ensure(kind('', 'services'), {
    apiVersion: 'v1', kind: 'Service',
    metadata: { name: 'kubernetes', namespace: 'default', labels: { component: 'apiserver', provider: 'kubernetes' } },
    spec: { type: 'ClusterIP', clusterIP: opts.kubernetesServiceIp, ports: [{ name: 'https', port: 443, protocol: 'TCP', targetPort: opts.port }], sessionAffinity: 'None' },
  });
  // Kept current with every live server by kubernetes-endpoints.ts.
  await ensure(kind('', 'endpoints'), kubernetesEndpoints([{ ip: opts.advertiseAddress, port: opts.port }]));
  // kube-dns as k3s shows it, but without a selector: every agent answers the cluster DNS IP itself
  // (the service proxy sends it to the node-local server), so there are no DNS pods to select.
  if (opts.clusterDns) {
    // A --cluster-dns outside --service-cidr (or taken) must not stop the server: the agents serve DNS anyway.
    await ensure(kind('', 'services'), kubeDnsService(opts.clusterDns))
      .catch((e: unknown) => log.warn({ clusterDns: opts.clusterDns, err: e instanceof Error ? e.message : String(e) }, 'kube-system/kube-dns not created'));
  }
  // The Addon kind the manifests deployer tracks files with (as k3s's `addons.k3s.cattle.io`).
  await ensureCrd(addonCrd());
  // MetalLB's layer-2 kinds (IPAddressPool, L2Advertisement), so MetalLB manifests apply unchanged.
  for (const crd of metallbCrds()) await ensureCrd(crd);
  // The fleet kinds (Cluster, ClusterGroup, Bundle, GitRepo): every server can be a fleet manager.
  for (const crd of fleetCrds()) await ensureCrd(crd);
  // Rolling upgrades of the nodes (src/controllers/upgrade).
  await ensureCrd(upgradeCrd());
  if (opts.localStorageClass) {
    await ensure(kind('storage.k8s.io', 'storageclasses'), {
      apiVersion: 'storage.k8s.io/v1', kind: 'StorageClass',
      metadata: { name: 'local-path', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      provisioner: 'rancher.io/local-path', reclaimPolicy: 'Delete', volumeBindingMode: 'WaitForFirstConsumer',
    });
  }
  if (opts.ingressClass) await ensure(kind('networking.k8s.io', 'ingressclasses'), skiffIngressClass());
  for (const pc of systemPriorityClasses()) await ensure(kind('scheduling.k8s.io', 'priorityclasses'), pc);
  const apf = flowControlDefaults();
  for (const pl of apf.levels) await ensure(kind('flowcontrol.apiserver.k8s.io', 'prioritylevelconfigurations'), pl);
  const fsInfo = kind('flowcontrol.apiserver.k8s.io', 'flowschemas');
  for (const fs of apf.schemas) {
    await ensure(fsInfo, fs);
    const stored = objects.tryGet(fsInfo, undefined, fs.metadata.name);
    if (stored && !stored.obj.status?.conditions) {
      await objects.update(fsInfo, undefined, fs.metadata.name, (cur) => ({ ...structuredClone(cur!.obj), status: flowSchemaStatus(fs, nowRfc3339()) }),
        { actor, subresource: 'status' });
    }
  }
  let created = 0;
  for (const obj of bootstrapRbacObjects()) {
    const info = kind('rbac.authorization.k8s.io', obj.kind === 'ClusterRole' ? 'clusterroles' : obj.kind === 'ClusterRoleBinding' ? 'clusterrolebindings' : obj.kind === 'Role' ? 'roles' : 'rolebindings');
    if (!objects.tryGet(info, obj.metadata.namespace, obj.metadata.name!)) { await ensure(info, structuredClone(obj)); created++; }
  }
  if (created) log.info({ created }, 'created default RBAC objects');
}

export function kubeDnsService(clusterDns: string): Record<string, any> {
  return {
    apiVersion: 'v1', kind: 'Service',
    metadata: {
      name: 'kube-dns', namespace: 'kube-system',
      labels: { 'k8s-app': 'kube-dns', 'kubernetes.io/cluster-service': 'true', 'kubernetes.io/name': 'CoreDNS' },
      annotations: { 'prometheus.io/port': '9153', 'prometheus.io/scrape': 'true' },
    },
    spec: {
      type: 'ClusterIP', clusterIP: clusterDns, clusterIPs: [clusterDns], sessionAffinity: 'None',
      ports: [
        { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
        { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
        { name: 'metrics', port: 9153, protocol: 'TCP', targetPort: 9153 },
      ],
    },
  };
}
