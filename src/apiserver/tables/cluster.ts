// Table printers for networking, RBAC, storage, scheduling and coordination kinds. Columns and cell
// rules are Kubernetes' (pkg/printers/internalversion).

import { type J, type Printer, ageCol, col, formatSelector, nameCol, since } from './format.js';

export const ingresses: Printer = {
  columns: () => [
    nameCol(),
    col('Class', 'string', 'The name of the IngressClass resource that should be used for additional configuration'),
    col('Hosts', 'string', 'Hosts that incoming requests are matched against before the ingress rule'),
    col('Address', 'string', 'Address is a list containing ingress points for the load-balancer'),
    col('Ports', 'string', 'Ports of TLS configurations that open'),
    ageCol(),
  ],
  row: (i, now) => {
    const rules: J[] = i.spec?.rules ?? [];
    const hosts: string[] = [];
    let more = false;
    for (const r of rules) {
      if (hosts.length === 3) more = true;
      if (!more && r.host) hosts.push(r.host);
    }
    let hostCell = hosts.length ? hosts.join(',') : '*';
    if (hosts.length && more) hostCell += ` + ${rules.length - 3} more...`;
    const address = [...new Set<string>((i.status?.loadBalancer?.ingress ?? []).map((x: J) => x.ip || x.hostname).filter(Boolean))];
    return [
      i.metadata?.name, i.spec?.ingressClassName ?? '<none>', hostCell, address.join(','),
      (i.spec?.tls ?? []).length ? '80, 443' : '80', since(i.metadata?.creationTimestamp, now),
    ];
  },
};

export const ingressclasses: Printer = {
  columns: () => [
    nameCol(),
    col('Controller', 'string', 'Controller that is responsible for handling this class'),
    col('Parameters', 'string', 'A reference to a resource with additional parameters'),
    ageCol(),
  ],
  row: (c, now) => {
    const p = c.spec?.parameters;
    const params = p ? `${p.kind}${p.apiGroup ? '.' + p.apiGroup : ''}/${p.name}` : '<none>';
    return [c.metadata?.name, c.spec?.controller ?? '', params, since(c.metadata?.creationTimestamp, now)];
  },
};

export const networkpolicies: Printer = {
  columns: () => [nameCol(), col('Pod-Selector', 'string', 'V1NetworkPolicySpec.podSelector'), ageCol()],
  row: (n, now) => [n.metadata?.name, formatSelector(n.spec?.podSelector ?? {}), since(n.metadata?.creationTimestamp, now)],
};

function bindingPrinter(what: string): Printer {
  return {
    columns: () => [
      nameCol(),
      col('Role', 'string', 'V1RoleBinding.roleRef'),
      ageCol(),
      col('Users', 'string', `Users in the ${what}`, 1),
      col('Groups', 'string', `Groups in the ${what}`, 1),
      col('ServiceAccounts', 'string', `ServiceAccounts in the ${what}`, 1),
    ],
    row: (b, now) => {
      const subjects: J[] = b.subjects ?? [];
      const names = (kind: string) => subjects.filter((s) => s.kind === kind)
        .map((s) => (kind === 'ServiceAccount' ? `${s.namespace ?? ''}/${s.name}` : s.name)).join(', ');
      return [
        b.metadata?.name, `${b.roleRef?.kind ?? ''}/${b.roleRef?.name ?? ''}`, since(b.metadata?.creationTimestamp, now),
        names('User'), names('Group'), names('ServiceAccount'),
      ];
    },
  };
}

export const rolebindings = bindingPrinter('roleBinding');
export const clusterrolebindings = bindingPrinter('clusterRoleBinding');

export const leases: Printer = {
  columns: () => [nameCol(), col('Holder', 'string', 'V1LeaseSpec.holderIdentity'), ageCol()],
  row: (l, now) => [l.metadata?.name, l.spec?.holderIdentity ?? '', since(l.metadata?.creationTimestamp, now)],
};

export const storageclasses: Printer = {
  columns: () => [
    nameCol(),
    col('Provisioner', 'string', 'V1StorageClass.provisioner'),
    col('ReclaimPolicy', 'string', 'V1StorageClass.reclaimPolicy'),
    col('VolumeBindingMode', 'string', 'V1StorageClass.volumeBindingMode'),
    col('AllowVolumeExpansion', 'string', 'V1StorageClass.allowVolumeExpansion'),
    ageCol(),
  ],
  row: (s, now) => {
    const ann = s.metadata?.annotations ?? {};
    const isDefault = ann['storageclass.kubernetes.io/is-default-class'] === 'true' ||
      ann['storageclass.beta.kubernetes.io/is-default-class'] === 'true';
    return [
      isDefault ? `${s.metadata?.name} (default)` : s.metadata?.name, s.provisioner ?? '', s.reclaimPolicy ?? 'Delete',
      s.volumeBindingMode ?? 'Immediate', s.allowVolumeExpansion ?? false, since(s.metadata?.creationTimestamp, now),
    ];
  },
};

export const priorityclasses: Printer = {
  columns: () => [
    nameCol(),
    col('Value', 'integer', 'V1PriorityClass.value'),
    col('Global-Default', 'boolean', 'V1PriorityClass.globalDefault'),
    ageCol(),
    col('PreemptionPolicy', 'string', 'V1PriorityClass.preemptionPolicy'),
  ],
  row: (p, now) => [
    p.metadata?.name, p.value ?? 0, p.globalDefault ?? false, since(p.metadata?.creationTimestamp, now), p.preemptionPolicy ?? '',
  ],
};
