// Secrets encryption at rest, run as k3s runs it: the EncryptionConfiguration lives in
// <data-dir>/server/cred/encryption-config.json (0600), `--secrets-encryption` creates it with one
// AES-CBC key, and `skiff secrets-encrypt` drives key rotation through the running server's admin-only
// endpoint `/v1-skiff/encrypt/<op>` (k3s: /v1-k3s/encrypt/...). Unlike k3s, every change applies live:
// the Backend wrapper's keys are swapped in place, so no restart is needed between stages.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { IncomingMessage, ServerResponse } from 'node:http';
import {
  EncryptingBackend, loadEncryptionConfig, RevisionConflictError, KeyNotFoundError,
  type Backend, type EncryptionConfiguration, type Store,
} from '../storage/index.js';
import { writtenBy } from '../storage/encryption.js';
import type { EncryptionProvider } from '../storage/encryption.js';
import { readIfExists, SECRET_MODE, writeFileAtomic } from '../pki/pem-files.js';
import type { UserInfo } from '../apiserver/authn.js';
import { logger } from '../util/log.js';

const log = logger('secrets-encryption');
const SECRETS_PREFIX = '/core/secrets/';

/** k3s's rotation stages. */
export type RotationStage = 'start' | 'prepare' | 'rotate' | 'reencrypt_request' | 'reencrypt_active' | 'reencrypt_finished';

interface State { stage: RotationStage }

export interface EncryptionStatus {
  enabled: boolean;
  stage: RotationStage;
  /** Keys in provider order: the first one (if not identity) writes. */
  keys: { type: string; name: string; active: boolean }[];
}

function newKey(name: string): { name: string; secret: string } {
  return { name, secret: randomBytes(32).toString('base64') };
}

function defaultConfig(): EncryptionConfiguration {
  return {
    kind: 'EncryptionConfiguration', apiVersion: 'apiserver.config.k8s.io/v1',
    resources: [{ resources: ['secrets'], providers: [{ aescbc: { keys: [newKey('aescbckey')] } }, { identity: {} }] }],
  };
}

export class SecretsEncryption {
  readonly configPath: string;
  private readonly statePath: string;
  private config?: EncryptionConfiguration;
  private state: State = { stage: 'start' };
  private backend?: EncryptingBackend;
  private store?: Store;
  /** One operation at a time. */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(dataDir: string, enable: boolean) {
    const dir = join(dataDir, 'server', 'cred');
    this.configPath = join(dir, 'encryption-config.json');
    this.statePath = join(dir, 'encryption-state.json');
    const text = readIfExists(this.configPath);
    if (text !== undefined) {
      this.config = JSON.parse(text) as EncryptionConfiguration;
      loadEncryptionConfig(this.config);   // fail at start, not at the first Secret
    } else if (enable) {
      this.config = defaultConfig();
      this.save();
      log.info({ file: this.configPath }, 'secrets encryption enabled: new AES-CBC key');
    }
    const st = readIfExists(this.statePath);
    if (st) this.state = JSON.parse(st) as State;
  }

  /** For openStore's `wrap`: the Backend the watch cache sits on. */
  wrap = (inner: Backend): Backend => {
    this.backend = new EncryptingBackend(inner);
    this.apply();
    return this.backend;
  };

  attach(store: Store): void { this.store = store; }

  private apply(): void {
    this.backend?.setConfig(this.config ? loadEncryptionConfig(this.config) : new Map());
  }

  private save(): void {
    if (this.config) writeFileAtomic(this.configPath, JSON.stringify(this.config, null, 2) + '\n', SECRET_MODE);
    writeFileAtomic(this.statePath, JSON.stringify(this.state) + '\n', SECRET_MODE);
  }

  private providers(): EncryptionProvider[] {
    if (!this.config) this.config = defaultConfig();
    const rule = this.config.resources.find((r) => r.resources.includes('secrets'));
    if (!rule) throw new Error('encryption config has no rule for secrets');
    return rule.providers;
  }

  private aescbc(): { name: string; secret: string }[] {
    const ps = this.providers();
    let p = ps.find((x): x is { aescbc: { keys: { name: string; secret: string }[] } } => 'aescbc' in x);
    if (!p) { p = { aescbc: { keys: [newKey('aescbckey')] } }; ps.push(p); }
    return p.aescbc.keys;
  }

  status(): EncryptionStatus {
    const keys: EncryptionStatus['keys'] = [];
    let first = true;
    for (const p of this.config ? this.providers() : []) {
      const [type] = Object.keys(p);
      if (type === 'identity') { keys.push({ type: 'identity', name: '', active: first }); first = false; continue; }
      for (const k of (p as Record<string, { keys: { name: string }[] }>)[type].keys) {
        keys.push({ type, name: k.name, active: first });
        first = false;
      }
    }
    return { enabled: keys.length > 0 && keys[0].type !== 'identity', stage: this.state.stage, keys };
  }

  /** Runs one CLI operation; answers its status afterwards. */
  run(op: string): Promise<EncryptionStatus> {
    const next = this.chain.catch(() => {}).then(() => this.runNow(op));
    this.chain = next;
    return next;
  }

  private async runNow(op: string): Promise<EncryptionStatus> {
    switch (op) {
      case 'status': return this.status();
      case 'enable': this.enable(true); break;
      case 'disable': this.enable(false); break;
      case 'prepare': this.prepare(); break;
      case 'rotate': this.rotate(); break;
      case 'reencrypt': await this.reencrypt(); break;
      case 'rotate-keys': this.prepare(); this.rotate(); await this.reencrypt(); break;
      default: throw new Error(`unknown secrets-encrypt operation ${JSON.stringify(op)}`);
    }
    return this.status();
  }

  /** Enable: an AES-CBC provider first; disable: identity first (AES keys stay, to read what is encrypted). */
  private enable(on: boolean): void {
    const ps = this.providers();
    this.aescbc();
    const idx = ps.findIndex((p) => 'identity' in p);
    const identity = idx >= 0 ? ps.splice(idx, 1)[0] : { identity: {} as Record<string, never> };
    if (on) ps.push(identity); else ps.unshift(identity);
    const cbc = ps.findIndex((p) => 'aescbc' in p);
    if (on && cbc > 0) ps.unshift(ps.splice(cbc, 1)[0]);
    this.state.stage = 'start';
    this.commit();
  }

  /** A new key that reads but does not write yet (so every server learns it before it is used). */
  private prepare(): void {
    const keys = this.aescbc();
    keys.splice(1, 0, newKey(`aescbckey-${new Date().toISOString().replace(/[-:.]/g, '').slice(0, 15)}`));
    this.state.stage = 'prepare';
    this.commit();
  }

  /** The prepared key becomes the writer; the old one still reads. */
  private rotate(): void {
    const keys = this.aescbc();
    if (this.state.stage !== 'prepare' || keys.length < 2) throw new Error(`rotate needs a prepared key (current stage: ${this.state.stage}); run prepare first`);
    keys.unshift(keys.splice(1, 1)[0]);
    this.state.stage = 'rotate';
    this.commit();
  }

  /**
   * Rewrites every Secret written by another key (or in plaintext) with the current writer, drops the
   * retired AES keys, then compacts so no superseded row keeps the old form.
   */
  private async reencrypt(): Promise<void> {
    const store = this.store;
    const backend = this.backend;
    if (!store || !backend) throw new Error('datastore not ready');
    this.state.stage = 'reencrypt_active';
    this.save();
    const t = backend.transformerFor(SECRETS_PREFIX);
    let rewritten = 0;
    for (const o of store.list(SECRETS_PREFIX).items) {
      for (let attempt = 0; attempt < 5; attempt++) {
        const raw = await backend.rawGet(o.key);
        if (!raw || writtenBy(t, raw.value)) break;
        const cur = store.get(o.key);
        if (!cur) break;
        try {
          await store.update(o.key, { ...cur.obj }, cur.modRevision);
          rewritten++;
          break;
        } catch (e) {
          // A concurrent write already stored it with the current key, or removed it.
          if (e instanceof KeyNotFoundError) break;
          if (!(e instanceof RevisionConflictError)) throw e;
        }
      }
    }
    const ps = this.providers();
    for (const p of ps) if ('aescbc' in p && ps[0] === p) p.aescbc.keys.splice(1);
    this.state.stage = 'reencrypt_finished';
    this.commit();
    await backend.compact(backend.currentRevision());
    log.info({ rewritten }, 'secrets reencrypted');
  }

  private commit(): void {
    loadEncryptionConfig(this.config);
    this.save();
    this.apply();
  }
}

/** `status` as k3s prints it. */
export function formatStatus(s: EncryptionStatus): string {
  const lines = [
    `Encryption Status: ${s.enabled ? 'Enabled' : 'Disabled'}`,
    `Current Rotation Stage: ${s.stage}`,
    'Server Encryption Hashes: All hashes match',
    '',
    'Active  Key Type  Name',
    '------  --------  ----',
  ];
  const typeName: Record<string, string> = { aescbc: 'AES-CBC', aesgcm: 'AES-GCM', secretbox: 'XSalsa20-POLY1305', identity: 'Identity' };
  for (const k of s.keys) lines.push(` ${k.active ? '*' : ' '}      ${typeName[k.type] ?? k.type}   ${k.name}`);
  return lines.join('\n') + '\n';
}

const ROUTE = /^\/v1-skiff\/encrypt\/([a-z-]+)$/;

/** The admin-only endpoint `skiff secrets-encrypt` calls; true when it answered the request. */
export function handleEncryptRoute(enc: SecretsEncryption, req: IncomingMessage, res: ServerResponse, user: UserInfo | null): boolean {
  const m = ROUTE.exec((req.url ?? '').split('?')[0]);
  if (!m) return false;
  const reply = (code: number, body: unknown) => {
    res.writeHead(code, { 'Content-Type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (!user?.groups.includes('system:masters')) { reply(user ? 403 : 401, { message: 'secrets-encrypt needs an admin (system:masters) credential' }); return true; }
  const op = m[1];
  if ((op === 'status') !== (req.method === 'GET')) { reply(405, { message: `${op}: wrong method ${req.method}` }); return true; }
  enc.run(op).then((s) => reply(200, s), (e: unknown) => reply(400, { message: e instanceof Error ? e.message : String(e) }));
  return true;
}
