// PKCS#10 certificate requests as the certificates API sees them: decoded from PEM with a small DER
// reader (the apiserver validates every CSR; loading a full X.509 library for that would keep ~20 MB in
// the server, see pki/isolated.ts), the signature checked with node:crypto, and the built-in signers'
// rules (Kubernetes' certificates helpers), shared by validation, the signing controller and the
// node-client auto-approver so each rule lives once.
import { verify as cryptoVerify, createPublicKey } from 'node:crypto';

export const SIGNER_KUBE_APISERVER_CLIENT = 'kubernetes.io/kube-apiserver-client';
export const SIGNER_KUBELET_CLIENT = 'kubernetes.io/kube-apiserver-client-kubelet';
export const SIGNER_KUBELET_SERVING = 'kubernetes.io/kubelet-serving';
export const SIGNER_LEGACY_UNKNOWN = 'kubernetes.io/legacy-unknown';
export const BUILTIN_SIGNERS = [SIGNER_KUBE_APISERVER_CLIENT, SIGNER_KUBELET_CLIENT, SIGNER_KUBELET_SERVING];

/** Every key usage the API accepts (certificates/v1 KeyUsage). */
export const KEY_USAGES = [
  'signing', 'digital signature', 'content commitment', 'key encipherment', 'key agreement', 'data encipherment',
  'cert sign', 'crl sign', 'encipher only', 'decipher only', 'any', 'server auth', 'client auth', 'code signing',
  'email protection', 's/mime', 'ipsec end system', 'ipsec tunnel', 'ipsec user', 'timestamping', 'ocsp signing',
  'microsoft sgc', 'netscape sgc',
];

/** Kubernetes refuses to issue certificates shorter than this (and rejects a shorter expirationSeconds). */
export const MIN_EXPIRATION_SECONDS = 600;

export interface ParsedCsr {
  commonName: string;
  organizations: string[];
  dnsNames: string[];
  ipAddresses: string[];
  emailAddresses: string[];
  uris: string[];
}

export class CsrError extends Error {}

// ---- DER ----------------------------------------------------------------------------------------

interface Tlv { tag: number; start: number; contentStart: number; end: number }

function readTlv(buf: Buffer, pos: number, limit = buf.length): Tlv {
  if (pos + 2 > limit) throw new CsrError('x509: malformed certificate request');
  const tag = buf[pos];
  let len = buf[pos + 1];
  let p = pos + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || p + n > limit) throw new CsrError('x509: malformed certificate request');
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + buf[p + i];
    p += n;
  }
  if (p + len > limit) throw new CsrError('x509: malformed certificate request');
  return { tag, start: pos, contentStart: p, end: p + len };
}

function children(buf: Buffer, t: Tlv): Tlv[] {
  const out: Tlv[] = [];
  for (let p = t.contentStart; p < t.end;) { const c = readTlv(buf, p, t.end); out.push(c); p = c.end; }
  return out;
}

function oid(buf: Buffer, t: Tlv): string {
  const b = buf.subarray(t.contentStart, t.end);
  if (b.length === 0) return '';
  const parts = [Math.floor(b[0] / 40), b[0] % 40];
  let v = 0;
  for (let i = 1; i < b.length; i++) {
    v = v * 128 + (b[i] & 0x7f);
    if (!(b[i] & 0x80)) { parts.push(v); v = 0; }
  }
  return parts.join('.');
}

const text = (buf: Buffer, t: Tlv) => buf.subarray(t.contentStart, t.end).toString(t.tag === 0x1e ? 'utf16le' : 'utf8');

const OID_CN = '2.5.4.3';
const OID_O = '2.5.4.10';
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SAN = '2.5.29.17';

/** Signature algorithm OID → node:crypto digest (null: the key type implies it). */
const SIG_HASH: Record<string, string | null> = {
  '1.2.840.113549.1.1.5': 'sha1', '1.2.840.113549.1.1.11': 'sha256', '1.2.840.113549.1.1.12': 'sha384',
  '1.2.840.113549.1.1.13': 'sha512', '1.2.840.10045.4.3.2': 'sha256', '1.2.840.10045.4.3.3': 'sha384',
  '1.2.840.10045.4.3.4': 'sha512', '1.3.101.112': null,
};

/** The DER bytes of the first `CERTIFICATE REQUEST` PEM block (Kubernetes' message otherwise). */
export function csrDer(pem: string): Buffer {
  const m = /-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/.exec(pem);
  if (!m || m[1] !== 'CERTIFICATE REQUEST') throw new CsrError('PEM block type must be CERTIFICATE REQUEST');
  const b64 = m[2].replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64)) throw new CsrError('PEM block type must be CERTIFICATE REQUEST');
  return Buffer.from(b64, 'base64');
}

/** Decodes a PEM CSR and checks its self-signature; throws CsrError with the reason. */
export function parseCsr(pem: string): ParsedCsr {
  const der = csrDer(pem);
  const top = readTlv(der, 0);
  if (top.tag !== 0x30 || top.end !== der.length) throw new CsrError('x509: malformed certificate request');
  const [info, algo, sig] = children(der, top);
  if (!info || !algo || !sig || info.tag !== 0x30 || algo.tag !== 0x30 || sig.tag !== 0x03) throw new CsrError('x509: malformed certificate request');
  const fields = children(der, info);
  const [, subject, spki] = fields;
  if (!subject || !spki || subject.tag !== 0x30 || spki.tag !== 0x30) throw new CsrError('x509: malformed certificate request');

  const out: ParsedCsr = { commonName: '', organizations: [], dnsNames: [], ipAddresses: [], emailAddresses: [], uris: [] };
  for (const rdn of children(der, subject)) {
    for (const atv of children(der, rdn)) {
      const [type, value] = children(der, atv);
      if (!type || !value) continue;
      const o = oid(der, type);
      if (o === OID_CN) out.commonName = text(der, value);
      else if (o === OID_O) out.organizations.push(text(der, value));
    }
  }
  const attrs = fields.find((f) => f.tag === 0xa0);
  for (const attr of attrs ? children(der, attrs) : []) {
    const [type, values] = children(der, attr);
    if (!type || !values || oid(der, type) !== OID_EXTENSION_REQUEST) continue;
    for (const exts of children(der, values)) {
      for (const ext of children(der, exts)) {
        const parts = children(der, ext);
        if (!parts[0] || oid(der, parts[0]) !== OID_SAN) continue;
        const octets = parts[parts.length - 1];
        const inner = der.subarray(octets.contentStart, octets.end);
        const names = readTlv(inner, 0);
        for (const n of children(inner, names)) {
          const raw = inner.subarray(n.contentStart, n.end);
          switch (n.tag & 0x1f) {
            case 1: out.emailAddresses.push(raw.toString('latin1')); break;
            case 2: out.dnsNames.push(raw.toString('latin1')); break;
            case 6: out.uris.push(raw.toString('latin1')); break;
            case 7: out.ipAddresses.push(ipText(raw)); break;
          }
        }
      }
    }
  }

  const algoOid = oid(der, children(der, algo)[0] ?? algo);
  if (!(algoOid in SIG_HASH)) throw new CsrError(`x509: cannot verify signature: algorithm unimplemented`);
  const signature = der.subarray(sig.contentStart + 1, sig.end);   // skip the unused-bits byte
  let ok = false;
  try {
    const key = createPublicKey({ key: der.subarray(spki.start, spki.end), format: 'der', type: 'spki' });
    ok = cryptoVerify(SIG_HASH[algoOid], der.subarray(info.start, info.end), key, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw new CsrError('x509: certificate request signature verification failed');
  return out;
}

function ipText(b: Buffer): string {
  if (b.length === 4) return [...b].join('.');
  const groups: string[] = [];
  for (let i = 0; i + 1 < b.length; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  return groups.join(':');
}

// ---- the built-in signers' rules ----------------------------------------------------------------

const same = (a: string[], b: string[]) => a.length === b.length && a.every((x) => b.includes(x));
const subset = (a: string[], allowed: string[]) => a.every((x) => allowed.includes(x));

/**
 * Why the signer `signerName` must not sign this request (undefined: it may). The messages are
 * Kubernetes' (they end up in the Failed condition as `SignerValidationFailure`).
 */
export function signerRefusal(signerName: string, csr: ParsedCsr, usages: string[]): string | undefined {
  if (signerName === SIGNER_KUBE_APISERVER_CLIENT) {
    const bad = usages.find((u) => !['client auth', 'digital signature', 'key encipherment'].includes(u));
    if (bad !== undefined) return `invalid usage for client certificate: ${bad}`;
    if (!usages.includes('client auth')) return 'invalid usage for client certificate: missing usage client auth';
    return undefined;
  }
  if (signerName === SIGNER_KUBELET_CLIENT) return kubeletClientRefusal(csr, usages);
  if (signerName === SIGNER_KUBELET_SERVING) {
    if (!same(csr.organizations, ['system:nodes'])) return 'subject organization is not system:nodes';
    if (!csr.commonName.startsWith('system:node:')) return 'subject common name does not begin with system:node:';
    if (csr.dnsNames.length === 0 && csr.ipAddresses.length === 0) return 'DNS or IP subjectAltName is required';
    if (csr.emailAddresses.length) return 'Email subjectAltNames are not allowed';
    if (csr.uris.length) return 'URI subjectAltNames are not allowed';
    if (!usages.includes('server auth') || !subset(usages, ['server auth', 'digital signature', 'key encipherment'])) {
      return 'usages did not match [digital signature key encipherment server auth]';
    }
    return undefined;
  }
  return `unsupported signer ${signerName}`;
}

/** A node client certificate request (kubelet client signer); also what the auto-approver checks. */
export function kubeletClientRefusal(csr: ParsedCsr, usages: string[]): string | undefined {
  if (!same(csr.organizations, ['system:nodes'])) return 'subject organization is not system:nodes';
  if (!csr.commonName.startsWith('system:node:')) return 'subject common name does not begin with system:node:';
  if (csr.dnsNames.length) return 'DNS subjectAltNames are not allowed';
  if (csr.emailAddresses.length) return 'Email subjectAltNames are not allowed';
  if (csr.ipAddresses.length) return 'IP subjectAltNames are not allowed';
  if (csr.uris.length) return 'URI subjectAltNames are not allowed';
  if (!usages.includes('client auth') || !subset(usages, ['client auth', 'digital signature', 'key encipherment'])) {
    return 'usages did not match [client auth digital signature key encipherment]';
  }
  return undefined;
}

/** The certificate's lifetime: the requested expirationSeconds, capped by the signer's maximum. */
export function certificateDurationSeconds(expirationSeconds: number | undefined, maxSeconds: number): number {
  if (expirationSeconds === undefined || expirationSeconds === null) return maxSeconds;
  return Math.min(Math.max(expirationSeconds, MIN_EXPIRATION_SECONDS), maxSeconds);
}

export type CsrState = 'Pending' | 'Approved' | 'Denied' | 'Failed' | 'Issued';

const hasCond = (csr: Record<string, any>, type: string) =>
  (csr.status?.conditions ?? []).some((c: any) => c?.type === type && (c.status ?? 'True') === 'True');

export const isApproved = (csr: Record<string, any>) => hasCond(csr, 'Approved');
export const isDenied = (csr: Record<string, any>) => hasCond(csr, 'Denied');
export const isFailed = (csr: Record<string, any>) => hasCond(csr, 'Failed');
