// Table printers for core/v1 kinds other than pods and controllers (nodes, services, config, storage,
// events...). Columns and cell rules are Kubernetes' (pkg/printers/internalversion).

import { type J, type Printer, accessModes, ageCol, col, formatLabels, listWithMore, nameCol, since } from './format.js';

export const nodes: Printer = {
  columns: () => [
    nameCol(),
    col('Status', 'string', 'The status of the node'),
    col('Roles', 'string', 'The roles of the node'),
    ageCol(),
    col('Version', 'string', 'V1NodeSystemInfo.kubeletVersion'),
    col('Internal-IP', 'string', 'V1NodeStatus.addresses', 1),
    col('External-IP', 'string', 'V1NodeStatus.addresses', 1),
    col('OS-Image', 'string', 'V1NodeSystemInfo.osImage', 1),
    col('Kernel-Version', 'string', 'V1NodeSystemInfo.kernelVersion', 1),
    col('Container-Runtime', 'string', 'V1NodeSystemInfo.containerRuntimeVersion', 1),
  ],
  row: (n, now) => {
    const ready = (n.status?.conditions ?? []).find((c: J) => c.type === 'Ready');
    const status = [ready ? (ready.status === 'True' ? 'Ready' : 'NotReady') : 'Unknown'];
    if (n.spec?.unschedulable) status.push('SchedulingDisabled');
    const info = n.status?.nodeInfo ?? {};
    const address = (type: string) => (n.status?.addresses ?? []).find((a: J) => a.type === type)?.address ?? '<none>';
    return [
      n.metadata?.name, status.join(','), nodeRoles(n.metadata?.labels ?? {}), since(n.metadata?.creationTimestamp, now),
      info.kubeletVersion ?? '', address('InternalIP'), address('ExternalIP'), info.osImage || '<unknown>',
      info.kernelVersion || '<unknown>', info.containerRuntimeVersion || '<unknown>',
    ];
  },
};

/** Roles from `node-role.kubernetes.io/<role>` labels and the older `kubernetes.io/role=<role>`. */
function nodeRoles(labels: Record<string, string>): string {
  const roles = new Set<string>();
  for (const [k, v] of Object.entries(labels)) {
    if (k.startsWith('node-role.kubernetes.io/')) {
      const role = k.slice('node-role.kubernetes.io/'.length);
      if (role) roles.add(role);
    } else if (k === 'kubernetes.io/role' && v) roles.add(v);
  }
  // Kubernetes joins a set in map order; sorting keeps our output stable.
  return [...roles].sort().join(',') || '<none>';
}

export const namespaces: Printer = {
  columns: () => [nameCol(), col('Status', 'string', 'The status of the namespace'), ageCol()],
  row: (n, now) => [n.metadata?.name, n.status?.phase ?? '', since(n.metadata?.creationTimestamp, now)],
};

export const services: Printer = {
  columns: () => [
    nameCol(),
    col('Type', 'string', 'V1ServiceSpec.type'),
    col('Cluster-IP', 'string', 'V1ServiceSpec.clusterIP'),
    col('External-IP', 'string', 'V1ServiceSpec.externalIPs'),
    col('Port(s)', 'string', 'V1ServiceSpec.ports'),
    ageCol(),
    col('Selector', 'string', 'V1ServiceSpec.selector', 1),
  ],
  row: (s, now) => {
    const spec = s.spec ?? {};
    const ports = (spec.ports ?? []).map((p: J) =>
      p.nodePort > 0 ? `${p.port}:${p.nodePort}/${p.protocol ?? 'TCP'}` : `${p.port}/${p.protocol ?? 'TCP'}`).join(',');
    return [
      s.metadata?.name, spec.type ?? '', spec.clusterIPs?.[0] ?? '<none>', externalIP(s), ports || '<none>',
      since(s.metadata?.creationTimestamp, now), formatLabels(spec.selector),
    ];
  },
};

function externalIP(s: J): string {
  const ext: string[] = s.spec?.externalIPs ?? [];
  switch (s.spec?.type) {
    case 'ClusterIP': case 'NodePort': return ext.length ? ext.join(',') : '<none>';
    case 'LoadBalancer': {
      const lb = [...new Set<string>((s.status?.loadBalancer?.ingress ?? []).map((i: J) => i.ip || i.hostname).filter(Boolean))];
      const all = [...lb, ...ext];
      return all.length ? all.join(',') : '<pending>';
    }
    case 'ExternalName': return s.spec.externalName ?? '';
  }
  return '<unknown>';
}

export const endpoints: Printer = {
  columns: () => [nameCol(), col('Endpoints', 'string', 'V1Endpoints.subsets'), ageCol()],
  row: (e, now) => [e.metadata?.name, formatEndpoints(e.subsets ?? []), since(e.metadata?.creationTimestamp, now)],
};

/** `10.0.0.1:80,10.0.0.2:80 + 3 more...`; headless subsets without ports list bare IPs. */
function formatEndpoints(subsets: J[]): string {
  if (!subsets.length) return '<none>';
  const list: string[] = [];
  let count = 0;
  for (const ss of subsets) {
    const addrs: J[] = ss.addresses ?? [];
    const ports: J[] = ss.ports ?? [];
    if (!ports.length) {
      count += addrs.length;
      for (const a of addrs) if (list.length < 3) list.push(a.ip);
      continue;
    }
    for (const p of ports) {
      count += addrs.length;
      for (const a of addrs) {
        if (list.length < 3) list.push(String(a.ip).includes(':') ? `[${a.ip}]:${p.port}` : `${a.ip}:${p.port}`);
      }
    }
  }
  return count > 3 ? `${list.join(',')} + ${count - 3} more...` : list.join(',');
}

export const endpointslices: Printer = {
  columns: () => [
    nameCol(),
    col('AddressType', 'string', 'V1EndpointSlice.addressType'),
    col('Ports', 'string', 'V1EndpointSlice.ports'),
    col('Endpoints', 'string', 'V1EndpointSlice.endpoints'),
    ageCol(),
  ],
  row: (e, now) => [
    e.metadata?.name, e.addressType ?? '',
    listWithMore((e.ports ?? []).map((p: J) => (p.port != null ? String(p.port) : p.name ?? '*')), 3),
    listWithMore((e.endpoints ?? []).flatMap((ep: J) => ep.addresses ?? []), 3),
    since(e.metadata?.creationTimestamp, now),
  ],
};

export const configmaps: Printer = {
  columns: () => [nameCol(), col('Data', 'string', 'V1ConfigMap.data'), ageCol()],
  row: (c, now) => [
    c.metadata?.name, Object.keys(c.data ?? {}).length + Object.keys(c.binaryData ?? {}).length, since(c.metadata?.creationTimestamp, now),
  ],
};

export const secrets: Printer = {
  columns: () => [nameCol(), col('Type', 'string', 'V1Secret.type'), col('Data', 'string', 'V1Secret.data'), ageCol()],
  row: (s, now) => [s.metadata?.name, s.type ?? '', Object.keys(s.data ?? {}).length, since(s.metadata?.creationTimestamp, now)],
};

export const serviceaccounts: Printer = {
  columns: () => [nameCol(), col('Secrets', 'string', 'V1ServiceAccount.secrets'), ageCol()],
  row: (s, now) => [s.metadata?.name, (s.secrets ?? []).length, since(s.metadata?.creationTimestamp, now)],
};

export const events: Printer = {
  columns: () => [
    col('Last Seen', 'string', 'CoreV1Event.lastTimestamp'),
    col('Type', 'string', 'CoreV1Event.type'),
    col('Reason', 'string', 'CoreV1Event.reason'),
    col('Object', 'string', 'CoreV1Event.involvedObject'),
    col('Subobject', 'string', 'V1ObjectReference.fieldPath', 1),
    col('Source', 'string', 'CoreV1Event.source', 1),
    col('Message', 'string', 'CoreV1Event.message'),
    col('First Seen', 'string', 'CoreV1Event.firstTimestamp', 1),
    col('Count', 'string', 'CoreV1Event.count', 1),
    col('Name', 'string', 'V1ObjectMeta.name', 1, 'name'),
  ],
  row: eventRow,
};

/** Core and events.k8s.io Events print alike; the latter's fields are read under their own names. */
function eventRow(e: J, now: number): unknown[] {
  const v1 = 'regarding' in e || 'note' in e || 'deprecatedSource' in e;
  const involved = (v1 ? e.regarding : e.involvedObject) ?? {};
  const source = (v1 ? e.deprecatedSource : e.source) ?? {};
  const firstTs = v1 ? e.deprecatedFirstTimestamp : e.firstTimestamp;
  const lastTs = v1 ? e.deprecatedLastTimestamp : e.lastTimestamp;
  const first = firstTs ? since(firstTs, now) : since(e.eventTime, now);
  let last = lastTs ? since(lastTs, now) : first;
  let count = (v1 ? e.deprecatedCount : e.count) ?? 0;
  if (e.series) {
    last = since(e.series.lastObservedTime, now);
    count = e.series.count ?? 0;
  } else if (count === 0) {
    count = 1;
  }
  const kind = String(involved.kind ?? '').toLowerCase();
  const target = involved.name ? `${kind}/${involved.name}` : kind;
  const component = source.component || e.reportingController || '';
  const host = source.host || e.reportingInstance || '';
  return [
    last, e.type ?? '', e.reason ?? '', target, involved.fieldPath ?? '', host ? `${component}, ${host}` : component,
    String((v1 ? e.note : e.message) ?? '').trim(), first, count, e.metadata?.name,
  ];
}

export const persistentvolumes: Printer = {
  columns: () => [
    nameCol(),
    col('Capacity', 'string', 'V1PersistentVolumeSpec.capacity'),
    col('Access Modes', 'string', 'V1PersistentVolumeSpec.accessModes'),
    col('Reclaim Policy', 'string', 'V1PersistentVolumeSpec.persistentVolumeReclaimPolicy'),
    col('Status', 'string', 'V1PersistentVolumeStatus.phase'),
    col('Claim', 'string', 'V1PersistentVolumeSpec.claimRef'),
    col('StorageClass', 'string', 'StorageClass of the pv'),
    col('VolumeAttributesClass', 'string', 'VolumeAttributesClass of the pv'),
    col('Reason', 'string', 'V1PersistentVolumeStatus.reason'),
    ageCol(),
    col('VolumeMode', 'string', 'V1PersistentVolumeSpec.volumeMode', 1),
  ],
  row: (pv, now) => {
    const spec = pv.spec ?? {};
    const claim = spec.claimRef ? `${spec.claimRef.namespace ?? ''}/${spec.claimRef.name ?? ''}` : '';
    return [
      pv.metadata?.name, quantityString(spec.capacity?.storage), accessModes(spec.accessModes),
      spec.persistentVolumeReclaimPolicy ?? '', pv.metadata?.deletionTimestamp ? 'Terminating' : pv.status?.phase ?? '', claim,
      storageClassOf(pv), spec.volumeAttributesClassName ?? '<unset>', pv.status?.reason ?? '',
      since(pv.metadata?.creationTimestamp, now), spec.volumeMode ?? '<unset>',
    ];
  },
};

export const persistentvolumeclaims: Printer = {
  columns: () => [
    nameCol(),
    col('Status', 'string', 'V1PersistentVolumeClaimStatus.phase'),
    col('Volume', 'string', 'V1PersistentVolumeClaimSpec.volumeName'),
    col('Capacity', 'string', 'V1PersistentVolumeClaimStatus.capacity'),
    col('Access Modes', 'string', 'V1PersistentVolumeClaimStatus.accessModes'),
    col('StorageClass', 'string', 'StorageClass of the pvc'),
    col('VolumeAttributesClass', 'string', 'VolumeAttributesClass of the pvc'),
    ageCol(),
    col('VolumeMode', 'string', 'V1PersistentVolumeClaimSpec.volumeMode', 1),
  ],
  row: (c, now) => {
    const spec = c.spec ?? {};
    const bound = !!spec.volumeName;
    return [
      c.metadata?.name, c.metadata?.deletionTimestamp ? 'Terminating' : c.status?.phase ?? '', spec.volumeName ?? '',
      bound ? quantityString(c.status?.capacity?.storage) : '', bound ? accessModes(c.status?.accessModes) : '',
      storageClassOf(c), spec.volumeAttributesClassName ?? '<unset>', since(c.metadata?.creationTimestamp, now),
      spec.volumeMode ?? '<unset>',
    ];
  },
};

/** A Quantity as printed: unset prints as `0`, as Go's zero Quantity does. */
function quantityString(q: unknown): string {
  return q === undefined || q === null ? '0' : String(q);
}

/** The beta annotation still wins over spec.storageClassName, as in Kubernetes. */
function storageClassOf(o: J): string {
  return o.metadata?.annotations?.['volume.beta.kubernetes.io/storage-class'] ?? o.spec?.storageClassName ?? '';
}

export const resourcequotas: Printer = {
  columns: () => [
    nameCol(), ageCol(),
    col('Request', 'string', 'Request represents a minimum amount of cpu/memory that a container may consume.'),
    col('Limit', 'string', 'Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.'),
  ],
  row: (q, now) => {
    const hard: Record<string, unknown> = q.status?.hard ?? {};
    const used: Record<string, unknown> = q.status?.used ?? {};
    const requests: string[] = [];
    const limits: string[] = [];
    for (const r of Object.keys(hard).sort()) {
      const cell = `${r}: ${quantityString(used[r])}/${quantityString(hard[r])}`;
      (r.split('.').length > 1 && r.split('.')[0] === 'limits' ? limits : requests).push(cell);
    }
    return [q.metadata?.name, since(q.metadata?.creationTimestamp, now), requests.join(', '), limits.join(', ')];
  },
};

export const podtemplates: Printer = {
  columns: () => [
    nameCol(),
    col('Containers', 'string', 'Names of each container in the template.'),
    col('Images', 'string', 'Images referenced by each container in the template.'),
    col('Pod Labels', 'string', 'The labels for the pod template.'),
  ],
  row: (t) => {
    const cs: J[] = t.template?.spec?.containers ?? [];
    return [
      t.metadata?.name, cs.map((c) => c.name).join(','), cs.map((c) => c.image).join(','), formatLabels(t.template?.metadata?.labels),
    ];
  },
};
