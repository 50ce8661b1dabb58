// metav1.Time renders as RFC 3339 with second precision.
export function nowRfc3339(plusSeconds = 0): string {
  return new Date(Math.floor(Date.now() / 1000) * 1000 + plusSeconds * 1000).toISOString().replace('.000Z', 'Z');
}
