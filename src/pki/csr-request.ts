// A PKCS#10 certificate request for a node's client certificate (CN system:node:<name>, O
// system:nodes, no extensions), built with node:crypto and a few lines of DER: the agent renews its
// certificate through the certificates API and must not load the X.509 library (~20 MB) for that.
import { createPrivateKey, createPublicKey, generateKeyPairSync, sign } from 'node:crypto';

function len(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), len(body.length), body]);
}

function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes: number[] = [40 * parts[0] + parts[1]];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(0x06, Buffer.from(bytes));
}

const OID_CN = '2.5.4.3';
const OID_O = '2.5.4.10';
const OID_ECDSA_SHA256 = '1.2.840.10045.4.3.2';

function rdn(type: string, value: string): Buffer {
  return tlv(0x31, tlv(0x30, oid(type), tlv(0x0c, Buffer.from(value, 'utf8'))));
}

export interface CsrWithKey {
  csrPem: string;
  /** SEC1 PEM, as the join endpoint hands out. */
  keyPem: string;
}

/** A new P-256 key and a request for `cn` in `groups` (each an O value), signed with it. */
export function newClientCsr(cn: string, groups: string[]): CsrWithKey {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const spki = createPublicKey(privateKey).export({ type: 'spki', format: 'der' });
  const subject = tlv(0x30, rdn(OID_CN, cn), ...groups.map((g) => rdn(OID_O, g)));
  // version 0, subject, key, attributes [0] (empty)
  const info = tlv(0x30, tlv(0x02, Buffer.from([0])), subject, spki, Buffer.from([0xa0, 0x00]));
  const signature = sign('sha256', info, privateKey);   // DER ECDSA-Sig-Value
  const der = tlv(0x30, info, tlv(0x30, oid(OID_ECDSA_SHA256)), tlv(0x03, Buffer.from([0]), signature));
  const b64 = der.toString('base64').replace(/.{1,64}/g, '$&\n');
  const keyPem = createPrivateKey(privateKey.export({ type: 'pkcs8', format: 'pem' })).export({ type: 'sec1', format: 'pem' }) as string;
  return { csrPem: `-----BEGIN CERTIFICATE REQUEST-----\n${b64}-----END CERTIFICATE REQUEST-----\n`, keyPem };
}
