// Kubernetes' time formats and time zones, in one place: metav1.Time (RFC 3339, whole seconds),
// metav1.MicroTime (RFC 3339, microseconds) and the IANA zone names CronJobs may name.

/**
 * metav1.Time as the API writes it: RFC 3339 in UTC with whole seconds. Fractions are dropped, not
 * rounded, as Go's formatting of a truncated time does, so a time never moves into the future.
 */
export function rfc3339(t: Date | number = Date.now()): string {
  const ms = typeof t === 'number' ? t : t.getTime();
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

/** metav1.Time of now, or of `plusSeconds` from now (deletion timestamps after a grace period). */
export function nowRfc3339(plusSeconds = 0): string {
  return rfc3339(Math.floor(Date.now() / 1000) * 1000 + plusSeconds * 1000);
}

/** metav1.MicroTime (Lease renew times, events.k8s.io times): six fraction digits; a Date holds only millis. */
export function microTime(t: Date | number = Date.now()): string {
  return new Date(t).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
}

/** Whether `tz` names a time zone the IANA database knows (what Go's time.LoadLocation accepts). */
export function isKnownTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
