// Bootstrap data shared through an external datastore (`--datastore-endpoint` for PostgreSQL,
// MySQL/MariaDB or etcd), as k3s's storage bootstrap: every server of a cluster must hold the same
// authorities (server, client and request-header CAs with their keys), the service-account signing key
// and the secrets-encryption config, or credentials issued by one server fail on another. The first
// server stores them in the datastore, encrypted with a key derived from the join token's password;
// a further server given only the endpoint and the token reads, decrypts and installs them before it
// creates any certificate of its own, so it issues its leaves from the same CAs. Embedded etcd does
// not use this: it copies the same set over HTTP when a server joins (embedded-etcd-join.ts).
//
// As in k3s the record's key is derived from the password (`/skiff/bootstrap/<first 12 hex of its
// sha256>`), so a server with another token finds records under other keys only and is refused before
// it writes anything. Unlike k3s the key derivation is PBKDF2-HMAC-SHA256 with many more iterations
// (k3s: SHA-1, 4096) and the key name is bound into AES-GCM as associated data, so a record copied
// under another key does not decrypt. The value is JSON (the watch cache loads every key and parses it;
// `/skiff/...` is no API group, CRD groups need a dot). Two-step use: prepare() before the server
// creates or loads any of the files (installs the cluster's set, or refuses), finish() once the server
// has them all (stores them for a first server; pushes a local change such as a CA rotation made
// while the server was down).
import { createCipheriv, createDecipheriv, createHash, pbkdf2, randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { backendFor, KeyExistsError, RevisionConflictError, type Backend, type DatastoreTls, type KeyValue } from '../storage/index.js';
import { parseToken } from '../pki/token.js';
import { PUBLIC_MODE, readIfExists, SECRET_MODE, writeFileAtomic } from '../pki/pem-files.js';
import { CROSS_SUFFIX, PREVIOUS_SUFFIX, ROTATABLE_CAS } from '../pki/ca-files.js';

export const BOOTSTRAP_PREFIX = '/skiff/bootstrap/';
const KDF_ITERATIONS = 200_000;
const RECORD_KIND = 'BootstrapData';
const RECORD_API_VERSION = 'skiff.io/v1';

/** A file of the shared set, relative to `<data-dir>/server`. */
interface SharedFile { path: string; mode: number; required: boolean }

/** What every server of a cluster must share (k3s: ControlRuntimeBootstrap, minus etcd's and the passwd file). */
export const SHARED_FILES: readonly SharedFile[] = [
  ...ROTATABLE_CAS.flatMap((ca) => [
    { path: `tls/${ca}.crt`, mode: PUBLIC_MODE, required: true },
    { path: `tls/${ca}.key`, mode: SECRET_MODE, required: true },
    // A CA rotation's overlap: the previous CAs stay trusted on every server.
    { path: `tls/${ca}${PREVIOUS_SUFFIX}`, mode: PUBLIC_MODE, required: false },
  ]),
  { path: `tls/server-ca${CROSS_SUFFIX}`, mode: PUBLIC_MODE, required: false },
  { path: 'tls/service.key', mode: SECRET_MODE, required: true },
  { path: 'cred/encryption-config.json', mode: SECRET_MODE, required: false },
  { path: 'cred/encryption-state.json', mode: SECRET_MODE, required: false },
];

/** Where this server notes the digest of the set it last agreed with the datastore on. */
const SYNCED_FILE = 'cred/bootstrap-synced';

export type SharedSet = Record<string, string>;

/** One clear line for the operator; the server exits with it. */
export class BootstrapError extends Error {}

interface Record_ {
  apiVersion: string; kind: string; metadata: { name: string };
  kdf: 'pbkdf2-sha256'; iterations: number; salt: string; nonce: string; data: string;
}

/** The record's key for a join password (k3s's scheme: the first 12 hex digits of its sha256). */
export function bootstrapKey(password: string): string {
  return BOOTSTRAP_PREFIX + createHash('sha256').update(password).digest('hex').slice(0, 12);
}

const pbkdf2Async = promisify(pbkdf2);

/** In the thread pool: the derivation takes a tenth of a second or more, which the event loop must not wait out. */
function deriveKey(password: string, salt: Buffer, iterations: number): Promise<Buffer> {
  return pbkdf2Async(password, salt, iterations, 32, 'sha256');
}

/** The stored value for `set` under `key`, sealed with the password. */
export async function sealBootstrap(key: string, password: string, set: SharedSet): Promise<string> {
  const salt = randomBytes(16);
  const nonce = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', await deriveKey(password, salt, KDF_ITERATIONS), nonce);
  cipher.setAAD(Buffer.from(key));
  const plain = Buffer.from(JSON.stringify({ version: 1, files: set }));
  const data = Buffer.concat([cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
  const rec: Record_ = {
    apiVersion: RECORD_API_VERSION, kind: RECORD_KIND, metadata: { name: key.slice(BOOTSTRAP_PREFIX.length) },
    kdf: 'pbkdf2-sha256', iterations: KDF_ITERATIONS,
    salt: salt.toString('base64'), nonce: nonce.toString('base64'), data: data.toString('base64'),
  };
  return JSON.stringify(rec);
}

/** The set a stored value holds; BootstrapError when the password or the record is not right. */
export async function openBootstrap(key: string, password: string, value: string): Promise<SharedSet> {
  const bad = (why: string) => new BootstrapError(`the bootstrap data in the datastore (${key}) ${why}`);
  let rec: Record_;
  try { rec = JSON.parse(value) as Record_; } catch { throw bad('is not valid JSON: it was damaged or not written by skiff'); }
  if (rec?.kind !== RECORD_KIND || rec.kdf !== 'pbkdf2-sha256' || !Number.isInteger(rec.iterations) || rec.iterations < 1 || rec.iterations > 10_000_000
    || typeof rec.salt !== 'string' || typeof rec.nonce !== 'string' || typeof rec.data !== 'string') {
    throw bad('is not in a format this skiff reads');
  }
  const data = Buffer.from(rec.data, 'base64');
  const nonce = Buffer.from(rec.nonce, 'base64');
  if (data.length < 17 || nonce.length !== 12) throw bad('is truncated');
  const derived = await deriveKey(password, Buffer.from(rec.salt, 'base64'), rec.iterations);
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', derived, nonce);
    decipher.setAAD(Buffer.from(key));
    decipher.setAuthTag(data.subarray(data.length - 16));
    plain = Buffer.concat([decipher.update(data.subarray(0, data.length - 16)), decipher.final()]);
  } catch {
    // The key name matched this token's hash, so a failed tag means the record was altered.
    throw bad('does not decrypt with this token: it was altered or damaged (restore it from a snapshot)');
  }
  const parsed = JSON.parse(plain.toString('utf8')) as { version?: number; files?: SharedSet };
  if (parsed.version !== 1 || !parsed.files || typeof parsed.files !== 'object') throw bad('holds a version this skiff does not read');
  const set: SharedSet = {};
  for (const f of SHARED_FILES) if (typeof parsed.files[f.path] === 'string') set[f.path] = parsed.files[f.path]!;
  const missing = SHARED_FILES.filter((f) => f.required && !(f.path in set)).map((f) => f.path);
  if (missing.length) throw bad(`lacks ${missing.join(', ')}`);
  return set;
}

/** This data dir's shared files as they are on disk now. */
export function readSharedSet(dataDir: string): SharedSet {
  const set: SharedSet = {};
  for (const f of SHARED_FILES) {
    const text = readIfExists(join(dataDir, 'server', f.path));
    if (text !== undefined) set[f.path] = text;
  }
  return set;
}

/** Writes `set` into the data dir; listed files the set lacks are removed (an ended rotation's leftovers). */
export function installSharedSet(dataDir: string, set: SharedSet): void {
  for (const f of SHARED_FILES) {
    const path = join(dataDir, 'server', f.path);
    if (f.path in set) {
      if (readIfExists(path) !== set[f.path]) writeFileAtomic(path, set[f.path]!, f.mode);
    } else if (!f.required) {
      rmSync(path, { force: true });
    }
  }
}

export function digestOf(set: SharedSet): string {
  const h = createHash('sha256');
  for (const f of SHARED_FILES) if (f.path in set) h.update(`${f.path}\0${set[f.path]}\0`);
  return h.digest('hex');
}

function firstDifference(a: SharedSet, b: SharedSet): string {
  return SHARED_FILES.find((f) => a[f.path] !== b[f.path])?.path ?? '?';
}

export type BootstrapState =
  /** Nothing in the datastore: this server's set is stored by finish(). */
  | 'new'
  /** The cluster's set was installed into a data dir that had none. */
  | 'joined'
  /** The data dir already held the cluster's set. */
  | 'current'
  /** The datastore's set changed since this server last agreed with it (another server's CA rotation): installed. */
  | 'updated'
  /** This data dir's set changed since it last agreed with the datastore (a CA rotation while down): pushed by finish(). */
  | 'local-change';

export interface PreparedBootstrap {
  state: BootstrapState;
  /**
   * Called once the server has created or loaded every shared file and knows its token's password:
   * stores the set (first server), or pushes a local change. Writes nothing when all agree.
   */
  finish(backend: Backend, password: string): Promise<void>;
}

export interface PrepareOptions {
  dataDir: string;
  /** The join password (`--token`'s, or the one this data dir stored); unset: this server generates one. */
  password?: string;
  log?: (msg: string, fields?: object) => void;
}

/**
 * Reads the datastore's bootstrap record and brings the data dir in line with it, before the server
 * creates anything. Throws BootstrapError (one line, nothing written anywhere) when the datastore
 * belongs to a cluster with another token, when the record is damaged, or when this data dir holds
 * another cluster's authorities.
 */
export async function prepareDatastoreBootstrap(backend: Backend, opts: PrepareOptions): Promise<PreparedBootstrap> {
  const log = opts.log ?? (() => {});
  const { kvs } = await backend.listLatest(BOOTSTRAP_PREFIX);
  const local = readSharedSet(opts.dataDir);
  const fresh = SHARED_FILES.every((f) => !f.required || !(f.path in local));
  const syncedPath = join(opts.dataDir, 'server', SYNCED_FILE);
  const markSynced = (set: SharedSet) => writeFileAtomic(syncedPath, digestOf(set) + '\n', SECRET_MODE);
  const mine = opts.password === undefined ? undefined : kvs.find((kv) => kv.key === bootstrapKey(opts.password!));

  if (!mine) {
    if (kvs.length) {
      throw new BootstrapError(opts.password === undefined
        ? 'the datastore already holds another server\'s cluster: start this server with that cluster\'s token (--token; `skiff token show` on a server of it)'
        : 'the datastore holds bootstrap data encrypted with a different token: start this server with the token of the cluster already in the datastore (`skiff token show` on a server of it)');
    }
    return {
      state: 'new',
      async finish(b, password) {
        const set = readSharedSet(opts.dataDir);
        const key = bootstrapKey(password);
        try {
          await b.create(key, await sealBootstrap(key, password, set));
        } catch (err) {
          if (!(err instanceof KeyExistsError)) throw err;
          // Another server stored its set between our read and this write. A data dir whose
          // authorities were made just now is cleared, so the next start joins that cluster.
          if (fresh) for (const f of SHARED_FILES) rmSync(join(opts.dataDir, 'server', f.path), { force: true });
          throw new BootstrapError('another server initialised the datastore at the same moment: start this server again and it joins that cluster');
        }
        markSynced(set);
        log('stored the cluster\'s bootstrap data in the datastore', { key });
      },
    };
  }

  const record = await openBootstrap(mine.key, opts.password!, mine.value);
  const recorded = digestOf(record);
  const synced = readIfExists(syncedPath)?.trim();
  let state: BootstrapState;
  if (digestOf(local) === recorded) {
    state = 'current';
  } else if (fresh) {
    installSharedSet(opts.dataDir, record);
    state = 'joined';
  } else if (synced === recorded) {
    state = 'local-change';
  } else if (synced !== undefined && synced === digestOf(local)) {
    installSharedSet(opts.dataDir, record);
    state = 'updated';
  } else {
    throw new BootstrapError(`${join(opts.dataDir, 'server', firstDifference(local, record))} differs from the cluster's bootstrap data in the datastore: `
      + 'this data dir belongs to another cluster (or both changed); remove its server/tls and server/cred to join this cluster');
  }
  if (state !== 'local-change') markSynced(record);
  if (state !== 'current') log('bootstrap data from the datastore', { state, key: mine.key });
  return {
    state,
    async finish(b, password) {
      const set = readSharedSet(opts.dataDir);
      if (digestOf(set) === recorded) return;
      // The set changed on this server (a CA rotation done while it was down, or a flag such as
      // --secrets-encryption creating a file at this start): the datastore gets it, compare-and-swap
      // on the record this server read, so a concurrent change by another server is not overwritten.
      const key = bootstrapKey(password);
      try {
        await b.update(key, await sealBootstrap(key, password, set), (mine as KeyValue).modRevision);
      } catch (err) {
        if (err instanceof RevisionConflictError) throw new BootstrapError('the cluster\'s bootstrap data changed in the datastore while this server started: start it again');
        throw err;
      }
      markSynced(set);
      log('pushed this server\'s changed bootstrap data to the datastore', { key, changed: firstDifference(set, record) });
    },
  };
}

/**
 * `skiff token rotate`: the record moves to the new password's key (sealed with it), and the old
 * one is deleted, so servers started later need the new token, as with k3s.
 */
export async function rekeyDatastoreBootstrap(backend: Backend, oldPassword: string, newPassword: string): Promise<void> {
  const oldKey = bootstrapKey(oldPassword);
  const kv = await backend.get(oldKey);
  if (!kv) return;
  const set = await openBootstrap(oldKey, oldPassword, kv.value);
  const newKey = bootstrapKey(newPassword);
  try {
    await backend.create(newKey, await sealBootstrap(newKey, newPassword, set));
  } catch (err) {
    if (!(err instanceof KeyExistsError)) throw err;
  }
  await backend.delete(oldKey, kv.modRevision).catch(() => undefined);
}

/** Whether `--datastore-endpoint` names a datastore other servers can share (not the embedded SQLite). */
export function isSharedEndpoint(endpoint: string | undefined): boolean {
  const ep = (endpoint ?? '').trim().toLowerCase();
  return ep !== '' && ep !== 'sqlite' && !ep.startsWith('sqlite:');
}

/**
 * prepareDatastoreBootstrap on a connection of its own, closed before the server opens its store:
 * the secrets-encryption config the set may carry must be on disk before the store first reads.
 */
export async function prepareFromEndpoint(o: { dataDir: string; endpoint: string; tls?: DatastoreTls; token?: string; log?: PrepareOptions['log'] }): Promise<PreparedBootstrap> {
  let password: string | undefined;
  try {
    const given = o.token ?? readIfExists(join(o.dataDir, 'server', 'token'))?.trim();
    password = given ? parseToken(given).password : undefined;
  } catch (err) {
    throw new BootstrapError(`--token: ${(err as Error).message}`);
  }
  const backend = await backendFor(o.dataDir, o.endpoint, { tls: o.tls, log: o.log });
  await backend.start();
  try {
    return await prepareDatastoreBootstrap(backend, { dataDir: o.dataDir, password, log: o.log });
  } finally {
    await backend.close().catch(() => undefined);
  }
}
