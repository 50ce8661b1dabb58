// Host-key checking for `skiff up` / `skiff down` against an OpenSSH known_hosts file
// (`--ssh-known-hosts FILE`): the host (`[host]:port` when the port is not 22, as OpenSSH writes it)
// must be listed, plain or hashed (`|1|salt|hmac`), with the key the server presents. Patterns with
// `*`/`?` and `!negation`, and `@revoked` lines, are honoured; `@cert-authority` lines are skipped
// (host certificates are not checked). Without the flag, keys are accepted as k3sup accepts them.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';

export interface HostKeyVerdict { ok: boolean; reason?: string }

interface Entry { marker?: string; patterns: string; keyType: string; key: Buffer }

function parse(text: string): Entry[] {
  const out: Entry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const f = line.split(/\s+/);
    const marker = f[0]!.startsWith('@') ? f.shift() : undefined;
    if (f.length < 3) continue;
    out.push({ marker, patterns: f[0]!, keyType: f[1]!, key: Buffer.from(f[2]!, 'base64') });
  }
  return out;
}

const glob = (p: string) => new RegExp('^' + p.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i');

/** Whether a host field (comma-separated patterns, or one hashed name) names `name`. */
function matches(patterns: string, name: string): boolean {
  if (patterns.startsWith('|1|')) {
    const [, , salt, hash] = patterns.split('|');
    if (!salt || !hash) return false;
    const want = Buffer.from(hash, 'base64');
    const got = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest();
    return want.length === got.length && timingSafeEqual(want, got);
  }
  let hit = false;
  for (const p of patterns.split(',')) {
    if (p.startsWith('!')) { if (glob(p.slice(1)).test(name)) return false; } else if (glob(p).test(name)) hit = true;
  }
  return hit;
}

/** The name OpenSSH looks a host up by. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Checks the key a host presented (the raw key blob, as ssh2's hostVerifier receives it). */
export function checkHostKey(knownHostsText: string, host: string, port: number, key: Buffer, file = 'known_hosts'): HostKeyVerdict {
  const name = knownHostsName(host, port);
  const entries = parse(knownHostsText).filter((e) => e.marker !== '@cert-authority' && matches(e.patterns, name));
  if (entries.some((e) => e.marker === '@revoked' && e.key.equals(key))) return { ok: false, reason: `the host key of ${name} is marked @revoked in ${file}` };
  const listed = entries.filter((e) => !e.marker);
  if (listed.some((e) => e.key.equals(key))) return { ok: true };
  if (listed.length) {
    return { ok: false, reason: `HOST KEY MISMATCH for ${name}: its key is not the one ${file} lists (${listed.map((e) => e.keyType).join(', ')}): `
      + 'someone may be in between, or the host was reinstalled (then remove its line from the file)' };
  }
  return { ok: false, reason: `${name} is not in ${file}: add its key first (ssh-keyscan${port === 22 ? '' : ` -p ${port}`} ${host} >> ${file}, after checking it)` };
}

/** A verifier for ssh2 reading `file` once; the reason of a refusal is kept for the error message. */
export function knownHostsVerifier(file: string, host: string, port: number): { verify: (key: Buffer) => boolean; refusal: () => string | undefined } {
  let text: string;
  try { text = readFileSync(file, 'utf8'); } catch (e) { throw new Error(`cannot read --ssh-known-hosts ${file}: ${(e as Error).message}`); }
  let refusal: string | undefined;
  return {
    verify: (key) => { const v = checkHostKey(text, host, port, key, file); refusal = v.reason; return v.ok; },
    refusal: () => refusal,
  };
}
