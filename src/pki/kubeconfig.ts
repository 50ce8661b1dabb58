// The admin kubeconfig (`--write-kubeconfig`, k3s's k3s.yaml): one cluster, user and context, all named
// `default`, credentials embedded so the file is self-contained and can be copied to another machine.
import { stringify } from 'yaml';
import { writeFileAtomic } from './pem-files.js';

export interface KubeconfigOptions {
  /** e.g. https://127.0.0.1:6443 */
  server: string;
  caPem: string;
  certPem: string;
  keyPem: string;
  /** File mode, default 0o600 (k3s's --write-kubeconfig-mode default); applied even when the file existed. */
  mode?: number;
}

export function kubeconfigYaml(o: Omit<KubeconfigOptions, 'mode'>): string {
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  return stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'default', cluster: { server: o.server, 'certificate-authority-data': b64(o.caPem) } }],
    users: [{ name: 'default', user: { 'client-certificate-data': b64(o.certPem), 'client-key-data': b64(o.keyPem) } }],
    contexts: [{ name: 'default', context: { cluster: 'default', user: 'default' } }],
    'current-context': 'default',
    preferences: {},
  });
}

export function writeKubeconfig(path: string, o: KubeconfigOptions): void {
  writeFileAtomic(path, kubeconfigYaml(o), o.mode ?? 0o600);
}
