// Table printers for the cluster-extension kinds: admission registration, certificates, runtime
// classes, API priority and fairness, API services and CSI storage. Columns and cell rules are
// Kubernetes' (pkg/printers/internalversion).
import { type J, type Printer, ageCol, col, humanDuration, nameCol, since } from './format.js';

const webhookConfig = (kind: string): Printer => ({
  columns: () => [nameCol(), col('Webhooks', 'integer', `Webhooks indicates the number of webhooks registered in this ${kind}.`), ageCol()],
  row: (c, now) => [c.metadata?.name, (c.webhooks ?? []).length, since(c.metadata?.creationTimestamp, now)],
});
export const mutatingwebhookconfigurations = webhookConfig('MutatingWebhookConfiguration');
export const validatingwebhookconfigurations = webhookConfig('ValidatingWebhookConfiguration');

export const validatingadmissionpolicies: Printer = {
  columns: () => [
    nameCol(),
    col('Validations', 'integer', 'Validations indicates the number of validation rules defined in this configuration'),
    col('ParamKind', 'string', 'ParamKind specifies the kind of resources used to parameterize this policy'),
    ageCol(),
  ],
  row: (p, now) => {
    const pk = p.spec?.paramKind;
    return [p.metadata?.name, (p.spec?.validations ?? []).length, pk ? `${pk.apiVersion}/${pk.kind}` : '<unset>', since(p.metadata?.creationTimestamp, now)];
  },
};

export const validatingadmissionpolicybindings: Printer = {
  columns: () => [
    nameCol(),
    col('PolicyName', 'string', 'PolicyName indicates the policy definition which the policy binding binded to'),
    col('ParamRef', 'string', 'ParamRef indicates the param resource which sets the configration param'),
    ageCol(),
  ],
  row: (b, now) => {
    const r = b.spec?.paramRef;
    const ref = r ? (r.namespace ? `${r.namespace}/` : '') + (r.name ?? '*') : '<unset>';
    return [b.metadata?.name, b.spec?.policyName ?? '', ref, since(b.metadata?.creationTimestamp, now)];
  },
};

/** "Approved,Issued", "Denied", "Pending"...: the CSR's True conditions, then Issued once a certificate is there. */
export function csrCondition(csr: J): string {
  const types: string[] = [];
  for (const c of csr.status?.conditions ?? []) if ((c.status ?? 'True') === 'True' && c.type) types.push(c.type);
  if (csr.status?.certificate) types.push('Issued');
  return types.length ? types.join(',') : 'Pending';
}

export const certificatesigningrequests: Printer = {
  columns: () => [
    nameCol(),
    ageCol(),
    col('SignerName', 'string', 'Name of the signer'),
    col('Requestor', 'string', 'Name of the user that created the request'),
    col('RequestedDuration', 'string', 'Requested duration of the certificate'),
    col('Condition', 'string', 'Current condition of the request'),
  ],
  row: (c, now) => [
    c.metadata?.name, since(c.metadata?.creationTimestamp, now), c.spec?.signerName ?? '<none>', c.spec?.username ?? '',
    typeof c.spec?.expirationSeconds === 'number' ? humanDuration(c.spec.expirationSeconds * 1000) : '<none>', csrCondition(c),
  ],
};

export const runtimeclasses: Printer = {
  columns: () => [nameCol(), col('Handler', 'string', 'Handler specifies the underlying runtime and configuration that the CRI implementation will use to handle pods of this class.'), ageCol()],
  row: (r, now) => [r.metadata?.name, r.handler ?? '', since(r.metadata?.creationTimestamp, now)],
};

export const flowschemas: Printer = {
  columns: () => [
    nameCol(),
    col('PriorityLevel', 'string', 'The name of the priority level to which this FlowSchema belongs'),
    col('MatchingPrecedence', 'string', 'The matching precedence of this FlowSchema'),
    col('DistinguisherMethod', 'string', 'DistinguisherMethod of this FlowSchema'),
    ageCol(),
    col('MissingPL', 'string', 'Whether this FlowSchema references a missing priority level'),
  ],
  row: (f, now) => {
    const missing = (f.status?.conditions ?? []).find((c: J) => c.type === 'Dangling');
    return [
      f.metadata?.name, f.spec?.priorityLevelConfiguration?.name ?? '', String(f.spec?.matchingPrecedence ?? ''),
      f.spec?.distinguisherMethod?.type ?? '<none>', since(f.metadata?.creationTimestamp, now), missing ? missing.status : '?',
    ];
  },
};

export const prioritylevelconfigurations: Printer = {
  columns: () => [
    nameCol(),
    col('Type', 'string', 'Type of the priority level'),
    col('NominalConcurrencyShares', 'string', 'NominalConcurrencyShares of the priority level'),
    col('Queues', 'string', 'Number of queues'),
    col('HandSize', 'string', 'Hand size'),
    col('QueueLengthLimit', 'string', 'Queue length limit'),
    ageCol(),
  ],
  row: (p, now) => {
    const l = p.spec?.limited;
    const q = l?.limitResponse?.queuing;
    return [
      p.metadata?.name, p.spec?.type ?? '', l ? String(l.nominalConcurrencyShares ?? 0) : '<none>',
      q ? String(q.queues) : '<none>', q ? String(q.handSize) : '<none>', q ? String(q.queueLengthLimit) : '<none>',
      since(p.metadata?.creationTimestamp, now),
    ];
  },
};

export const apiservices: Printer = {
  columns: () => [
    nameCol(),
    col('Service', 'string', 'The reference to the service that hosts this API endpoint.'),
    col('Available', 'string', 'Whether this service is available.'),
    ageCol(),
  ],
  row: (a, now) => {
    const svc = a.spec?.service;
    const avail = (a.status?.conditions ?? []).find((c: J) => c.type === 'Available');
    const cell = !avail ? 'Unknown' : avail.status === 'True' ? 'True' : `${avail.status} (${avail.reason})`;
    return [a.metadata?.name, svc ? `${svc.namespace}/${svc.name}` : 'Local', cell, since(a.metadata?.creationTimestamp, now)];
  },
};

export const csidrivers: Printer = {
  columns: () => [
    nameCol(),
    col('AttachRequired', 'boolean', 'Indicates this CSI volume driver requires an attach operation'),
    col('PodInfoOnMount', 'boolean', 'Indicates this CSI volume driver requires additional pod information during mount operations'),
    col('StorageCapacity', 'boolean', 'Indicates this CSI volume driver reports storage capacity'),
    col('TokenRequests', 'string', 'Indicates the audiences of the service account tokens the driver wants'),
    col('RequiresRepublish', 'boolean', 'Indicates this CSI volume driver requires NodePublishVolume being periodically called'),
    col('Modes', 'string', 'The volume lifecycle modes this CSI volume driver supports'),
    ageCol(),
  ],
  row: (d, now) => {
    const s = d.spec ?? {};
    const tokens = (s.tokenRequests ?? []).map((t: J) => t.audience).join(',');
    return [
      d.metadata?.name, s.attachRequired ?? true, s.podInfoOnMount ?? false, s.storageCapacity ?? false, tokens || '<unset>',
      s.requiresRepublish ?? false, (s.volumeLifecycleModes ?? []).join(',') || '<none>', since(d.metadata?.creationTimestamp, now),
    ];
  },
};

export const csinodes: Printer = {
  columns: () => [nameCol(), col('Drivers', 'integer', 'Drivers indicates the number of CSI drivers registered on the node'), ageCol()],
  row: (n, now) => [n.metadata?.name, (n.spec?.drivers ?? []).length, since(n.metadata?.creationTimestamp, now)],
};

export const volumeattachments: Printer = {
  columns: () => [
    nameCol(),
    col('Attacher', 'string', 'Attacher indicates the name of the volume driver that MUST handle this request.'),
    col('PV', 'string', 'Name of the persistent volume to attach'),
    col('Node', 'string', 'The node that the volume should be attached to'),
    col('Attached', 'boolean', 'Indicates the volume is successfully attached'),
    ageCol(),
  ],
  row: (v, now) => [
    v.metadata?.name, v.spec?.attacher ?? '', v.spec?.source?.persistentVolumeName ?? '', v.spec?.nodeName ?? '',
    v.status?.attached ?? false, since(v.metadata?.creationTimestamp, now),
  ],
};
