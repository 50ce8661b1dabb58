// Leaf renewal while the server runs (k3s renews only at start; a server that is never restarted
// would otherwise serve an expired certificate after a year). Every SERVER_RENEWAL_CHECK_MS the PKI
// is ensured again, which renews any leaf inside the renewal window (pki/renewal.ts) from the same
// CAs; a changed serving certificate or client CA bundle is swapped into the listening server with
// setSecureContext (new connections get it, open ones keep theirs), and a changed admin certificate
// rewrites the admin kubeconfig.
import type { FrontDoor } from './tls-front.js';
import { ensureServerPkiIsolated, type ServerPkiFiles } from '../pki/isolated.js';
import type { EnsureServerPkiOptions } from '../pki/certs.js';
import { SERVER_RENEWAL_CHECK_MS } from '../pki/renewal.js';
import { logger } from '../util/log.js';
import { SERVER_TLS_SECURE_OPTIONS } from '../apiserver/server.js';

const log = logger('cert-renewal');

export interface CertRenewalOptions {
  pkiOpts: Omit<EnsureServerPkiOptions, 'log' | 'now'>;
  current: ServerPkiFiles;
  /** Where the serving certificate is in use. */
  door: Pick<FrontDoor, 'setSecureContext'>;
  /** Rewrites the admin kubeconfig with the renewed admin certificate. */
  writeKubeconfig(pki: ServerPkiFiles): void;
  intervalMs?: number;
}

export interface CertRenewal {
  /** One check now; true when something was renewed. */
  check(): Promise<boolean>;
  stop(): void;
}

export function startCertRenewal(o: CertRenewalOptions): CertRenewal {
  let current = o.current;
  let running: Promise<boolean> | undefined;
  const check = (): Promise<boolean> => {
    running ??= (async () => {
      const next = await ensureServerPkiIsolated(o.pkiOpts);
      let changed = false;
      if (next.servingCertPem !== current.servingCertPem || next.servingKeyPem !== current.servingKeyPem || next.clientCaPem !== current.clientCaPem) {
        o.door.setSecureContext({ cert: next.servingCertPem, key: next.servingKeyPem, ca: next.clientCaPem, secureOptions: SERVER_TLS_SECURE_OPTIONS });
        log.info({}, 'serving certificate renewed and reloaded');
        changed = true;
      }
      if (next.adminCertPem !== current.adminCertPem) {
        o.writeKubeconfig(next);
        log.info({}, 'admin certificate renewed; kubeconfig rewritten');
        changed = true;
      }
      current = next;
      return changed;
    })().finally(() => { running = undefined; });
    return running;
  };
  const timer = setInterval(() => {
    check().catch((err: unknown) => log.error({ err: err instanceof Error ? err.message : String(err) }, 'certificate renewal failed'));
  }, o.intervalMs ?? SERVER_RENEWAL_CHECK_MS);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}
