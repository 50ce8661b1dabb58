// ServiceAccount admission (Kubernetes' plugin of that name), the token part: a pod that does not opt
// out gets the projected `kube-api-access-<random>` volume (a bound token for its service account, the
// cluster CA from the `kube-root-ca.crt` ConfigMap, its namespace), mounted read-only where client
// libraries look for in-cluster credentials, in every container that does not mount that path itself.
// Kubernetes refuses a pod whose service account does not exist (yet); skiff admits it without the
// volume instead: the API-only mode (`--disable-controller-manager`) creates no default accounts, and a
// pod created right after its namespace would otherwise race the account's creation.
import { randomInt } from 'node:crypto';
import type { Store } from '../storage/types.js';

export const SERVICE_ACCOUNT_MOUNT_PATH = '/var/run/secrets/kubernetes.io/serviceaccount';
const VOLUME_PREFIX = 'kube-api-access-';
/** Kubernetes' token lifetime for this volume: an hour plus the kubelet's refresh slack. */
const TOKEN_EXPIRATION_SECONDS = 3607;
/** The alphabet of Kubernetes' random name suffixes (no vowels, no look-alikes). */
const ALPHANUMS = 'bcdfghjklmnpqrstvwxz2456789';

type Obj = Record<string, any>;

/** Adds the service-account volume and mounts to a pod being created (its serviceAccountName already defaulted). */
export function mountServiceAccountToken(store: Store, pod: Obj): void {
  const spec = pod.spec;
  if (!spec || spec.automountServiceAccountToken === false) return;
  const sa = store.get(`/core/serviceaccounts/${pod.metadata.namespace}/${spec.serviceAccountName}`)?.obj as Obj | undefined;
  if (!sa) return;
  if (spec.automountServiceAccountToken === undefined && sa.automountServiceAccountToken === false) return;
  const containers: Obj[] = [...(spec.initContainers ?? []), ...(spec.containers ?? [])];
  const needing = containers.filter((c) => !(c.volumeMounts ?? []).some((m: Obj) => m.mountPath === SERVICE_ACCOUNT_MOUNT_PATH));
  if (needing.length === 0) return;
  const volumes: Obj[] = (spec.volumes ??= []);
  let volume = volumes.find((v) => typeof v.name === 'string' && v.name.startsWith(VOLUME_PREFIX) && v.projected);
  if (!volume) {
    let name: string;
    do name = VOLUME_PREFIX + Array.from({ length: 5 }, () => ALPHANUMS[randomInt(ALPHANUMS.length)]).join('');
    while (volumes.some((v) => v.name === name));
    volume = {
      name,
      projected: {
        defaultMode: 0o644,
        sources: [
          { serviceAccountToken: { expirationSeconds: TOKEN_EXPIRATION_SECONDS, path: 'token' } },
          { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
          { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } },
        ],
      },
    };
    volumes.push(volume);
  }
  for (const c of needing) (c.volumeMounts ??= []).push({ name: volume.name, readOnly: true, mountPath: SERVICE_ACCOUNT_MOUNT_PATH });
}
