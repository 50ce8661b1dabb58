// Small file helpers for PEM material: secrets must never be readable by others, not even for the instant
// between create and chmod, and a crash mid-write must not leave half a key behind. So: write a temp file
// created with the final mode, then rename it over the target.
import { chmodSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { randomBytes } from 'node:crypto';

export const SECRET_MODE = 0o600;
export const PUBLIC_MODE = 0o644;

export function writeFileAtomic(path: string, data: string, mode: number): void {
  mkdirSync(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${randomBytes(4).toString('hex')}`;
  writeFileSync(tmp, data, { mode });
  // The umask may have stripped bits from `mode` (e.g. a 0644 kubeconfig asked for 0666): set it exactly.
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

/** The file's text, or undefined when it does not exist. */
export function readIfExists(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The private keys of a PEM file, in order, each exactly as written (a service.key may hold several). */
export function privateKeyPems(text: string): string[] {
  return text.match(/-----BEGIN (?:EC |RSA )?PRIVATE KEY-----[\s\S]*?-----END (?:EC |RSA )?PRIVATE KEY-----\r?\n?/g) ?? [];
}
