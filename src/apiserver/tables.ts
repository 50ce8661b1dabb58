// Server-side Table columns and rows (`Accept: application/json;as=Table;g=meta.k8s.io;v=v1`): what
// `kubectl get` prints is exactly these columns, so each built-in resource gets Kubernetes' own set.
// Kinds without a printer get Kubernetes' default (NAME, CREATED AT); custom resources get their
// CRD's additionalPrinterColumns, or NAME and AGE.

import { type ColumnDefinition, type J, type Printer, col, humanDuration, nameCol } from './tables/format.js';
import * as workloads from './tables/workloads.js';
import * as core from './tables/core.js';
import * as cluster from './tables/cluster.js';
import * as ext from './tables/extensions.js';
import { evalJsonPath } from './tables/jsonpath.js';
import { rfc3339 } from '../util/time.js';

export type { ColumnDefinition } from './tables/format.js';
export { humanDuration } from './tables/format.js';

/** Printers keyed by `group/resource`. */
const PRINTERS: Record<string, Printer> = {
  '/pods': workloads.pods,
  '/replicationcontrollers': workloads.replicationcontrollers,
  '/podtemplates': core.podtemplates,
  '/nodes': core.nodes,
  '/namespaces': core.namespaces,
  '/services': core.services,
  '/endpoints': core.endpoints,
  '/configmaps': core.configmaps,
  '/secrets': core.secrets,
  '/serviceaccounts': core.serviceaccounts,
  '/events': core.events,
  '/persistentvolumes': core.persistentvolumes,
  '/persistentvolumeclaims': core.persistentvolumeclaims,
  '/resourcequotas': core.resourcequotas,
  'apps/deployments': workloads.deployments,
  'apps/replicasets': workloads.replicasets,
  'apps/daemonsets': workloads.daemonsets,
  'apps/statefulsets': workloads.statefulsets,
  'apps/controllerrevisions': workloads.controllerrevisions,
  'batch/jobs': workloads.jobs,
  'batch/cronjobs': workloads.cronjobs,
  'autoscaling/horizontalpodautoscalers': workloads.horizontalpodautoscalers,
  'policy/poddisruptionbudgets': workloads.poddisruptionbudgets,
  'discovery.k8s.io/endpointslices': core.endpointslices,
  'events.k8s.io/events': core.events,
  'networking.k8s.io/ingresses': cluster.ingresses,
  'networking.k8s.io/ingressclasses': cluster.ingressclasses,
  'networking.k8s.io/networkpolicies': cluster.networkpolicies,
  'rbac.authorization.k8s.io/rolebindings': cluster.rolebindings,
  'rbac.authorization.k8s.io/clusterrolebindings': cluster.clusterrolebindings,
  'coordination.k8s.io/leases': cluster.leases,
  'storage.k8s.io/storageclasses': cluster.storageclasses,
  'scheduling.k8s.io/priorityclasses': cluster.priorityclasses,
  'admissionregistration.k8s.io/mutatingwebhookconfigurations': ext.mutatingwebhookconfigurations,
  'admissionregistration.k8s.io/validatingwebhookconfigurations': ext.validatingwebhookconfigurations,
  'admissionregistration.k8s.io/validatingadmissionpolicies': ext.validatingadmissionpolicies,
  'admissionregistration.k8s.io/validatingadmissionpolicybindings': ext.validatingadmissionpolicybindings,
  'certificates.k8s.io/certificatesigningrequests': ext.certificatesigningrequests,
  'node.k8s.io/runtimeclasses': ext.runtimeclasses,
  'flowcontrol.apiserver.k8s.io/flowschemas': ext.flowschemas,
  'flowcontrol.apiserver.k8s.io/prioritylevelconfigurations': ext.prioritylevelconfigurations,
  'apiregistration.k8s.io/apiservices': ext.apiservices,
  'storage.k8s.io/csidrivers': ext.csidrivers,
  'storage.k8s.io/csinodes': ext.csinodes,
  'storage.k8s.io/volumeattachments': ext.volumeattachments,
};

/** Kubernetes' default table (rest.DefaultTableConvertor): roles, clusterroles, limitranges, CRDs... */
const DEFAULT_PRINTER: Printer = {
  columns: () => [nameCol(), col('Created At', 'date', 'V1ObjectMeta.creationTimestamp')],
  row: (o) => [o.metadata?.name, createdAt(o.metadata?.creationTimestamp)],
};

/** RFC 3339 in UTC to the second, as Go's time.RFC3339 prints it. */
function createdAt(ts: string | undefined): string {
  const t = Date.parse(ts ?? '');
  return Number.isNaN(t) ? '0001-01-01T00:00:00Z' : rfc3339(t);
}

const columnCache = new Map<string, ColumnDefinition[]>();

function printerFor(group: string, resource: string): Printer {
  return PRINTERS[`${group}/${resource}`] ?? DEFAULT_PRINTER;
}

export function tableColumns(group: string, resource: string): ColumnDefinition[] {
  const key = `${group}/${resource}`;
  let cols = columnCache.get(key);
  if (!cols) {
    cols = printerFor(group, resource).columns();
    columnCache.set(key, cols);
  }
  return cols;
}

/** The cells of one object's row; `now` (ms since the epoch) dates the AGE cells. */
export function tableRow(group: string, resource: string, obj: unknown, now: number): unknown[] {
  return printerFor(group, resource).row(obj as J, now);
}

/** A CRD version's additionalPrinterColumns entry. */
export interface PrinterColumn {
  name: string;
  type: string;
  format?: string;
  description?: string;
  priority?: number;
  jsonPath: string;
}

export interface CustomResourceTable {
  columns: ColumnDefinition[];
  row(obj: unknown, now: number): unknown[];
}

/**
 * Table of a custom resource: NAME, then the CRD's additionalPrinterColumns (AGE when it has none),
 * with cells typed as the apiextensions server types them (integer, number, boolean, string, and
 * `date` shown as an age).
 */
export function customResourceTable(printerColumns: PrinterColumn[] | undefined): CustomResourceTable {
  const pcs: PrinterColumn[] = printerColumns?.length ? printerColumns : [{
    name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp',
    description: col('Age', 'date', 'V1ObjectMeta.creationTimestamp').description,
  }];
  const columns = [nameCol(), ...pcs.map((c) => ({
    name: c.name, type: c.type, format: c.format ?? '', priority: c.priority ?? 0,
    description: c.description || `Custom resource definition column (in JSONPath format): ${c.jsonPath}`,
  }))];
  return {
    columns,
    row: (obj, now) => [(obj as J)?.metadata?.name, ...pcs.map((c) => cell(c.type, obj, c.jsonPath, now))],
  };
}

function cell(type: string, obj: unknown, jsonPath: string, now: number): unknown {
  let value: unknown;
  try {
    value = evalJsonPath(obj, jsonPath)[0];
  } catch {
    return null;
  }
  if (value === undefined || value === null) return null;
  switch (type) {
    case 'string':
      return typeof value === 'string' ? value : JSON.stringify(value);
    case 'integer':
      return typeof value === 'number' ? Math.trunc(value) : null;
    case 'number':
      return typeof value === 'number' ? value : null;
    case 'boolean':
      return typeof value === 'boolean' ? value : null;
    case 'date': {
      if (typeof value !== 'string') return null;
      const t = Date.parse(value);
      return Number.isNaN(t) ? '<invalid>' : humanDuration(now - t);
    }
  }
  return null;
}
