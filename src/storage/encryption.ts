// Encryption at rest for chosen resources (Secrets), as kube-apiserver's EncryptionConfiguration
// (apiserver.config.k8s.io/v1): the first provider encrypts new writes, every configured provider and
// key can read. The transformer sits between the watch cache and the Backend, so the cache (and every
// reader) keeps plaintext in memory and only the datastore holds ciphertext.
//
// Stored form: `k8s:enc:<provider>:v1:<key name>:` followed by the payload, as Kubernetes. Kubernetes
// stores the payload as raw bytes; skiff's Backend stores text, so the payload (IV/nonce + ciphertext
// [+ GCM tag]) is base64 after the prefix.
import { createCipheriv, createDecipheriv, randomBytes, type CipherGCMTypes } from 'node:crypto';
// Node's crypto has no XSalsa20; tweetnacl is the audited, dependency-free NaCl port.
import nacl from 'tweetnacl';
import type { Backend, BackendEvent, KeyValue } from './types.js';

export interface EncryptionKey { name: string; secret: string }
export type EncryptionProvider =
  | { aescbc: { keys: EncryptionKey[] } }
  | { aesgcm: { keys: EncryptionKey[] } }
  | { secretbox: { keys: EncryptionKey[] } }
  | { identity: Record<string, never> };

export interface EncryptionConfiguration {
  kind: 'EncryptionConfiguration';
  apiVersion: 'apiserver.config.k8s.io/v1';
  resources: { resources: string[]; providers: EncryptionProvider[] }[];
}

const PREFIX = 'k8s:enc:';

/** A key ready to use: its provider type, name and raw bytes. */
interface LoadedKey { type: 'aescbc' | 'aesgcm' | 'secretbox'; name: string; key: Buffer }

/** Key lengths each provider accepts (Kubernetes: AES-128/192/256; secretbox: 32 bytes only). */
const KEY_LENGTHS: Record<LoadedKey['type'], number[]> = { aescbc: [16, 24, 32], aesgcm: [16, 24, 32], secretbox: [32] };

/** One resource rule's providers: the first key writes (undefined: identity writes), all read. */
export interface ValueTransformer {
  readonly writer?: LoadedKey;
  readonly readers: Map<string, LoadedKey>;
}

/** Checks and loads a configuration; throws an Error naming what is wrong. */
export function loadEncryptionConfig(cfg: unknown): Map<string, ValueTransformer> {
  const c = cfg as Partial<EncryptionConfiguration> | null;
  if (!c || c.kind !== 'EncryptionConfiguration' || c.apiVersion !== 'apiserver.config.k8s.io/v1') {
    throw new Error('encryption config: want kind EncryptionConfiguration, apiVersion apiserver.config.k8s.io/v1');
  }
  const out = new Map<string, ValueTransformer>();
  for (const rule of c.resources ?? []) {
    if (!Array.isArray(rule.resources) || !Array.isArray(rule.providers) || rule.providers.length === 0) {
      throw new Error('encryption config: every resources entry needs resources and providers');
    }
    const readers = new Map<string, LoadedKey>();
    let writer: LoadedKey | undefined;
    let first = true;
    for (const p of rule.providers) {
      const [type] = Object.keys(p);
      if (type === 'identity') { first = false; continue; }
      if (type !== 'aescbc' && type !== 'aesgcm' && type !== 'secretbox') throw new Error(`encryption config: unknown provider ${JSON.stringify(type)}`);
      const keys = (p as Record<string, { keys?: EncryptionKey[] }>)[type].keys ?? [];
      if (keys.length === 0) throw new Error(`encryption config: provider ${type} has no keys`);
      for (const k of keys) {
        const key = Buffer.from(String(k.secret ?? ''), 'base64');
        if (!KEY_LENGTHS[type].includes(key.length)) throw new Error(`encryption config: key ${k.name} of ${type} must be ${KEY_LENGTHS[type].join(', ').replace(/, (\d+)$/, ' or $1')} bytes (base64)`);
        if (!k.name || k.name.includes(':')) throw new Error(`encryption config: bad key name ${JSON.stringify(k.name)}`);
        const loaded: LoadedKey = { type, name: k.name, key };
        readers.set(`${type}:${k.name}`, loaded);
        if (first) { writer = loaded; first = false; }
      }
    }
    for (const r of rule.resources) out.set(resourcePrefix(r), { writer, readers });
  }
  return out;
}

/** `secrets` → `/core/secrets/`, `widgets.example.com` → `/example.com/widgets/` (skiff's key layout). */
export function resourcePrefix(resource: string): string {
  const dot = resource.indexOf('.');
  return dot < 0 ? `/core/${resource}/` : `/${resource.slice(dot + 1)}/${resource.slice(0, dot)}/`;
}

export function encryptValue(t: ValueTransformer, storageKey: string, plaintext: string): string {
  const w = t.writer;
  if (!w) return plaintext;
  const head = `${PREFIX}${w.type}:v1:${w.name}:`;
  const data = Buffer.from(plaintext);
  if (w.type === 'aescbc') {
    const iv = randomBytes(16);
    const c = createCipheriv(`aes-${w.key.length * 8}-cbc`, w.key, iv);   // PKCS#7 padding is Node's default
    return head + Buffer.concat([iv, c.update(data), c.final()]).toString('base64');
  }
  if (w.type === 'secretbox') {
    // XSalsa20-Poly1305 with a random 24-byte nonce in front, as Kubernetes' secretbox transformer
    // (NaCl's secretbox has no associated data, so the storage key is not authenticated).
    const nonce = randomBytes(nacl.secretbox.nonceLength);
    return head + Buffer.concat([nonce, nacl.secretbox(data, nonce, w.key)]).toString('base64');
  }
  const nonce = randomBytes(12);
  const c = createCipheriv(`aes-${w.key.length * 8}-gcm` as CipherGCMTypes, w.key, nonce);
  // The storage key is authenticated (as Kubernetes does), so a ciphertext moved to another key fails.
  c.setAAD(Buffer.from(storageKey));
  const body = Buffer.concat([c.update(data), c.final()]);
  return head + Buffer.concat([nonce, body, c.getAuthTag()]).toString('base64');
}

export function decryptValue(t: ValueTransformer | undefined, storageKey: string, stored: string): string {
  // Plaintext (identity) is always readable, so a store moves between encrypted and not while live.
  if (!stored.startsWith(PREFIX)) return stored;
  const m = /^k8s:enc:([a-z]+):v1:([^:]+):/.exec(stored);
  const k = m && t?.readers.get(`${m[1]}:${m[2]}`);
  if (!m || !k) throw new Error(`${storageKey}: no configured key can decrypt it (${stored.slice(0, 40)}...)`);
  const raw = Buffer.from(stored.slice(m[0].length), 'base64');
  if (k.type === 'aescbc') {
    const d = createDecipheriv(`aes-${k.key.length * 8}-cbc`, k.key, raw.subarray(0, 16));
    return Buffer.concat([d.update(raw.subarray(16)), d.final()]).toString();
  }
  if (k.type === 'secretbox') {
    const n = nacl.secretbox.nonceLength;
    const opened = raw.length > n ? nacl.secretbox.open(raw.subarray(n), raw.subarray(0, n), k.key) : null;
    if (!opened) throw new Error(`${storageKey}: secretbox key ${k.name} failed to authenticate the stored value`);
    return Buffer.from(opened.buffer, opened.byteOffset, opened.byteLength).toString();
  }
  const d = createDecipheriv(`aes-${k.key.length * 8}-gcm` as CipherGCMTypes, k.key, raw.subarray(0, 12));
  d.setAAD(Buffer.from(storageKey));
  d.setAuthTag(raw.subarray(raw.length - 16));
  return Buffer.concat([d.update(raw.subarray(12, raw.length - 16)), d.final()]).toString();
}

/** Whether a stored value was written by the given transformer's writer (reencryption skips those). */
export function writtenBy(t: ValueTransformer | undefined, stored: string): boolean {
  const w = t?.writer;
  if (!w) return !stored.startsWith(PREFIX);
  return stored.startsWith(`${PREFIX}${w.type}:v1:${w.name}:`);
}

/**
 * A Backend that encrypts the values of configured resources on the way in and decrypts them on the
 * way out. The configuration can be swapped while running (`secrets-encrypt` commands).
 */
export class EncryptingBackend implements Backend {
  private transformers = new Map<string, ValueTransformer>();
  /** Ciphertexts of writes in flight → their plaintext, so a commit event is not decrypted again. */
  private readonly inFlight = new Map<string, string>();

  constructor(readonly inner: Backend) {}

  setConfig(transformers: Map<string, ValueTransformer>): void {
    this.transformers = transformers;
  }

  transformerFor(key: string): ValueTransformer | undefined {
    for (const [prefix, t] of this.transformers) if (key.startsWith(prefix)) return t;
    return undefined;
  }

  private decode(kv: KeyValue): KeyValue {
    // Plaintext first: looking a value up in inFlight hashes all of it (a pod is about 5 KB), and
    // only ciphertexts are there.
    if (!kv.value.startsWith(PREFIX)) return kv;
    const known = this.inFlight.get(kv.value);
    if (known !== undefined) return { ...kv, value: known };
    return { ...kv, value: decryptValue(this.transformerFor(kv.key), kv.key, kv.value) };
  }

  private decodeEvent(e: BackendEvent): BackendEvent {
    return { type: e.type, kv: this.decode(e.kv), ...(e.prev ? { prev: this.decode(e.prev) } : {}) };
  }

  private async write(key: string, value: string, op: (stored: string) => Promise<KeyValue>): Promise<KeyValue> {
    const t = this.transformerFor(key);
    if (!t?.writer) return op(value);
    const stored = encryptValue(t, key, value);
    this.inFlight.set(stored, value);
    try {
      return { ...(await op(stored)), value };
    } finally {
      this.inFlight.delete(stored);
    }
  }

  /** The raw stored value of a key (reencryption checks which key wrote it). */
  rawGet(key: string): Promise<KeyValue | undefined> { return this.inner.get(key); }

  start(): Promise<void> { return this.inner.start(); }
  currentRevision(): number { return this.inner.currentRevision(); }
  async listLatest(prefix: string): Promise<{ revision: number; kvs: KeyValue[] }> {
    const r = await this.inner.listLatest(prefix);
    return { revision: r.revision, kvs: r.kvs.map((kv) => this.decode(kv)) };
  }
  eachLatest(prefix: string, each: (kv: KeyValue) => void): Promise<number> {
    return this.inner.eachLatest(prefix, (kv) => each(this.decode(kv)));
  }
  async history(afterRevision: number, limit: number): Promise<BackendEvent[]> {
    return (await this.inner.history(afterRevision, limit)).map((e) => this.decodeEvent(e));
  }
  async get(key: string): Promise<KeyValue | undefined> {
    const kv = await this.inner.get(key);
    return kv && this.decode(kv);
  }
  create(key: string, value: string): Promise<KeyValue> { return this.write(key, value, (v) => this.inner.create(key, v)); }
  update(key: string, value: string, expectedModRevision: number): Promise<KeyValue> {
    return this.write(key, value, (v) => this.inner.update(key, v, expectedModRevision));
  }
  async delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    return this.decode(await this.inner.delete(key, expectedModRevision));
  }
  onCommit(listener: (events: BackendEvent[]) => void): void {
    this.inner.onCommit((events) => listener(events.map((e) => this.decodeEvent(e))));
  }
  compact(revision: number): Promise<void> { return this.inner.compact(revision); }
  compactedRevision(): number { return this.inner.compactedRevision(); }
  dbSize(): Promise<number> { return this.inner.dbSize(); }
  checkHealth(maxAgeMs?: number): Promise<void> { return this.inner.checkHealth(maxAgeMs); }
  close(): Promise<void> { return this.inner.close(); }
}
