// When a certificate must be renewed, and how `skiff certificate check` reports it: one place for the
// rules, so the server's start, its renewal timer, the CLI and the agents agree. Pure functions of the
// certificate's validity window and the clock (node:crypto only: cheap enough for the long-running
// processes, unlike the X.509 library in certs.ts).
import { X509Certificate } from 'node:crypto';

export const DAY_MS = 86_400_000;
/**
 * k3s renews leaf certificates that expire within this many days, at every start, and warns about
 * them (120 since its May 2025 releases, 90 before). The leaves live 365 days, so a server restarted
 * at least every 245 days, or running its renewal timer, never sees one expire.
 */
export const RENEW_WITHIN_DAYS = 120;
/** How often a running server looks at its leaves again (k3s checks daily for its expiry events). */
export const SERVER_RENEWAL_CHECK_MS = 12 * 3600 * 1000;

export type CertStatus = 'OK' | 'WARNING' | 'EXPIRED' | 'NOT YET VALID';

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

export function validityOf(certPem: string): Validity {
  const c = new X509Certificate(certPem);
  return { notBefore: new Date(c.validFrom), notAfter: new Date(c.validTo) };
}

/** A leaf the server issues itself is renewed once it is inside the window (or already expired). */
export function leafNeedsRenewal(v: Validity, now: Date, withinDays = RENEW_WITHIN_DAYS): boolean {
  return v.notAfter.getTime() - now.getTime() < withinDays * DAY_MS;
}

/** k3s's check statuses: WARNING inside the renewal window, EXPIRED past notAfter. */
export function certStatus(v: Validity, now: Date, withinDays = RENEW_WITHIN_DAYS): CertStatus {
  const t = now.getTime();
  if (t < v.notBefore.getTime()) return 'NOT YET VALID';
  if (t >= v.notAfter.getTime()) return 'EXPIRED';
  return leafNeedsRenewal(v, now, withinDays) ? 'WARNING' : 'OK';
}

/**
 * The moment a node renews its client certificate, as the kubelet's certificate manager: at a random
 * point between 70 % and 90 % of its lifetime (`jitter` in [0, 1) picks it), so a fleet that joined
 * together does not renew together.
 */
export function clientRenewalDeadline(v: Validity, jitter: number): Date {
  const start = v.notBefore.getTime();
  const total = v.notAfter.getTime() - start;
  const j = Math.min(Math.max(jitter, 0), 1);
  return new Date(Math.round(start + total * (0.7 + 0.2 * j)));
}

/** "364d", "12h", "-3d" (already expired): the residual time k3s's table shows. */
export function residual(v: Validity, now: Date): string {
  const ms = v.notAfter.getTime() - now.getTime();
  const abs = Math.abs(ms);
  const sign = ms < 0 ? '-' : '';
  if (abs >= DAY_MS) return `${sign}${Math.floor(abs / DAY_MS)}d`;
  if (abs >= 3600_000) return `${sign}${Math.floor(abs / 3600_000)}h`;
  return `${sign}${Math.floor(abs / 60_000)}m`;
}
