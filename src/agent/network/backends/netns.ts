// Which network namespace this process runs in. Backends record it next to the kernel state they
// make, so teardown run from another namespace (a test removing a host's agent) never deletes the
// same-named state of its own namespace.
import { readlinkSync } from 'node:fs';

/** This process's network namespace, e.g. `net:[4026531840]`. */
export function netnsId(): string {
  try {
    return readlinkSync('/proc/self/ns/net');
  } catch {
    return 'unknown';
  }
}
