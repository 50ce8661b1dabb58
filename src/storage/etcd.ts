// The Backend contract on etcd 3.4+, natively: etcd's revisions are skiff's revisions (so a
// resourceVersion is an etcd mod_revision, as with kube-apiserver), a write is one etcd txn with a
// compare on the key's version or mod_revision, lists are ranges pinned to one revision across
// pages, changes reach listeners through one etcd watch (with previous values) from the revision the
// backend opened at, and compaction is etcd's own. None of log.ts's SQL machinery applies: etcd already
// orders, batches (raft proposals share WAL fsyncs) and notifies.
//
// Keys live under one prefix (default `/skiff`), so an etcd can be shared with other users; revisions
// of writes outside the prefix leave gaps in skiff's revisions, which nothing relies on being dense.
//
// The client is the `etcd3` package (gRPC underneath): its raw KV/Watch/Maintenance/Cluster clients
// expose every field this needs (txn compares, prev_kv, range revision, compact), and its watch
// manager resumes a broken stream from the last revision it delivered.
import { Etcd3, type IKeyValue, type IOptions, type IResponseHeader, type IEvent, type Watcher } from 'etcd3';
import type { Backend, BackendEvent, KeyValue } from './types.js';
import { KeyExistsError, KeyNotFoundError, RevisionConflictError } from './types.js';
import { DatastoreUnavailableError } from './driver.js';
import { prefixEnd } from './keys.js';
import type { LogStats } from './log.js';

export interface EtcdBackendOptions {
  /** Client URLs (`https://host:2379`, `http://...`). */
  endpoints: string[];
  /** PEM texts for TLS (`--datastore-cafile/-certfile/-keyfile`). */
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
  /** Every skiff key is stored as prefix + key (default `/skiff`). */
  prefix?: string;
  /** Revisions the automatic compactor keeps (default 1000, as log.ts). */
  compactKeep?: number;
  /** How long opening may wait for the cluster (default 10 s). */
  dialTimeoutMs?: number;
  log?: (msg: string, fields?: object) => void;
}

/** How long one request may take before the datastore counts as unavailable. */
const REQUEST_TIMEOUT_MS = 10_000;
/** Keys per range page when loading (bounds one gRPC message). */
const LIST_PAGE = 2000;

const enc = (s: string) => Buffer.from(s, 'utf8');

/** Doubling delays from `first` up to `max` ms (cockatiel's backoff shape, which etcd3 takes). */
function cappedBackoff(first: number, max: number): NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']> {
  const step = (d: number): { duration: number; next(): unknown } => ({ duration: d, next: () => step(Math.min(max, d * 2)) });
  return step(first) as unknown as NonNullable<NonNullable<IOptions['faultHandling']>['watchBackoff']>;
}

/** A pass-through fault policy (cockatiel's interface, which etcd3 takes). */
const NO_RETRY = {
  execute: <T>(fn: (ctx: { signal: AbortSignal }) => PromiseLike<T> | T) => Promise.resolve().then(() => fn({ signal: new AbortController().signal })),
  onSuccess: () => ({ dispose() {} }),
  onFailure: () => ({ dispose() {} }),
} as unknown as NonNullable<NonNullable<IOptions['faultHandling']>['global']>;

/** An etcd or gRPC failure as one line in etcd's words (`etcdserver: ...`), for clients and logs. */
function unavailable(op: string, err: unknown): DatastoreUnavailableError {
  if (err instanceof DatastoreUnavailableError) return err;
  const raw = err instanceof Error ? err.message : String(err);
  const msg = raw.replace(/^\d+ [A-Z_]+: /, '');
  return new DatastoreUnavailableError(`etcd ${op}: ${msg.startsWith('etcdserver') || msg.startsWith('mvcc') ? msg : `etcdserver: ${msg}`}`, err);
}

export class EtcdBackend implements Backend {
  readonly stats: LogStats = { transactions: 0, writes: 0, compactedRows: 0 };
  readonly name = 'etcd';
  /** No local database file (LogBackend's SQLite has one). */
  declare readonly file?: string;
  private client?: Etcd3;
  private readonly prefix: string;
  private readonly prefixBuf: Buffer;
  private readonly rangeEnd: Buffer;
  /** The last revision handed to listeners (or opened at). */
  private applied = 0;
  private compacted = 0;
  private open = false;
  private closing = false;
  private watcher?: Watcher;
  private readonly listeners: ((events: BackendEvent[]) => void)[] = [];
  /** Writes whose revision the watch has not delivered yet, resolved in revision order. */
  private waiting: { revision: number; resolve: () => void }[] = [];
  /** Per-key chains: ops on one key run in the order they were called, as one batch would. */
  private readonly keyChains = new Map<string, Promise<unknown>>();
  private autoCompact?: NodeJS.Timeout;
  private lastHealth?: { at: number; error?: Error };
  private healthProbe?: Promise<void>;
  private watchFailing = false;
  private readonly log: (msg: string, fields?: object) => void;

  constructor(private readonly opts: EtcdBackendOptions) {
    this.prefix = opts.prefix ?? '/skiff';
    this.prefixBuf = enc(this.prefix);
    this.rangeEnd = enc(prefixEnd(this.prefix + '/')!);
    this.log = opts.log ?? (() => {});
  }

  /** The etcd client (for membership and maintenance calls of the embedded cluster). */
  etcd(): Etcd3 {
    if (!this.client) throw new Error('etcd datastore is not open');
    return this.client;
  }

  async start(): Promise<void> {
    const { endpoints, ca, cert, key } = this.opts;
    const options: IOptions = {
      hosts: endpoints,
      dialTimeout: this.opts.dialTimeoutMs ?? 10_000,
      // No client-side retries (etcd3 retries three times by default): a txn is not idempotent (a
      // retried create whose first answer was lost reports "exists"), and an outage must turn into
      // a prompt 503 that the API client retries. The per-host circuit breaker stays.
      // The watch reconnects within 2 s of etcd's return (etcd3's default backoff grows to 30 s, and
      // writes wait for their event to come back through the watch).
      faultHandling: { global: NO_RETRY, watchBackoff: cappedBackoff(100, 2000) },
      grpcOptions: {
        // A page of 2,000 large objects exceeds gRPC's 4 MiB default.
        'grpc.max_receive_message_length': 512 * 1024 * 1024,
        // kube-apiserver's etcd keepalive: a silently dead connection (a partition) is noticed and the
        // watch moves on, instead of waiting for TCP to give up.
        'grpc.keepalive_time_ms': 30_000,
        'grpc.keepalive_timeout_ms': 10_000,
        'grpc.keepalive_permit_without_calls': 1,
      },
      // Unary calls only: a deadline on the watch stream would cut it every few seconds.
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + REQUEST_TIMEOUT_MS }),
      ...(ca || cert ? { credentials: { rootCertificate: ca ?? Buffer.alloc(0), privateKey: key, certChain: cert } } : {}),
    };
    if (ca === undefined && cert) delete (options.credentials as { rootCertificate?: Buffer }).rootCertificate;
    const client = new Etcd3(options);
    this.client = client;
    try {
      const res = await client.kv.range({ key: this.prefixBuf, range_end: this.rangeEnd, count_only: true }, { deadline: Date.now() + (this.opts.dialTimeoutMs ?? 10_000) });
      this.applied = Number(res.header.revision);
      this.compacted = await this.findCompacted(this.applied);
    } catch (err) {
      client.close();
      this.client = undefined;
      throw new Error(`cannot reach etcd at ${endpoints.join(',')}: ${unavailable('open', err).message.replace(/^etcd open: /, '')}`);
    }
    this.open = true;
    await this.startWatch();
    this.log('etcd datastore opened', { revision: this.applied, compacted: this.compacted, endpoints });
  }

  /**
   * etcd tells no one its compaction mark but refuses ranges below it: the smallest revision a range
   * still answers at is the mark (binary search, about log2(revision) small requests).
   */
  private async findCompacted(revision: number, low = 1): Promise<number> {
    const ok = async (r: number) => {
      try {
        await this.client!.kv.range({ key: this.prefixBuf, count_only: true, revision: r });
        return true;
      } catch (err) {
        if (/compacted/.test(String(err))) return false;
        throw err;
      }
    };
    if (await ok(low)) return low <= 1 ? 0 : low;
    let lo = low;          // fails
    let hi = revision;     // answers
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await ok(mid)) hi = mid; else lo = mid;
    }
    return hi;
  }

  /** One watch over the prefix from the revision after `applied`, feeding listeners in order. */
  private async startWatch(): Promise<void> {
    const w = await this.client!.watch().prefix(this.prefix + '/').startRevision(String(this.applied + 1)).withPreviousKV().create();
    this.watcher = w;
    w.on('data', (res) => this.onWatch(res.events ?? [], res.header));
    w.on('disconnected', (err: Error) => {
      if (this.closing) return;
      if (!this.watchFailing) this.log('etcd watch disconnected; resuming', { err: String(err) });
      this.watchFailing = true;
    });
    w.on('connected', () => {
      if (this.watchFailing) this.log('etcd watch resumed', { from: this.applied + 1 });
      this.watchFailing = false;
    });
    w.on('error', (err: Error) => {
      // The watch was cancelled (its start revision was compacted while the stream was down): the
      // changes in between are gone from etcd; carry on from now so new ones still flow.
      if (this.closing) return;
      this.log('etcd watch cancelled; restarting from the current revision', { err: String(err), applied: this.applied });
      void this.restartWatch();
    });
  }

  private async restartWatch(): Promise<void> {
    const old = this.watcher;
    this.watcher = undefined;
    await old?.cancel().catch(() => {});
    while (!this.closing) {
      try {
        const res = await this.client!.kv.range({ key: this.prefixBuf, count_only: true });
        const compacted = await this.findCompacted(Number(res.header.revision), Math.max(1, this.compacted));
        this.compacted = Math.max(this.compacted, compacted);
        if (this.applied < this.compacted) {
          this.log('etcd changes lost to compaction while the watch was down', { from: this.applied, to: this.compacted });
          this.applied = this.compacted;
          this.release();
        }
        await this.startWatch();
        return;
      } catch (err) {
        this.log('etcd watch restart failed; retrying', { err: String(err) });
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
  }

  private onWatch(events: IEvent[], header: IResponseHeader): void {
    const out: BackendEvent[] = [];
    for (const e of events) {
      const rev = Number(e.kv.mod_revision);
      if (rev <= this.applied) continue;
      const ev = this.eventOf(e);
      if (ev) out.push(ev);
    }
    if (out.length) {
      this.applied = Math.max(this.applied, out[out.length - 1].kv.modRevision);
      for (const listener of this.listeners) {
        try {
          listener(out);
        } catch (err) {
          this.log('commit listener failed', { err: String(err) });
        }
      }
    }
    void header;
    this.release();
  }

  /** Resolves writes whose revision listeners have now seen. */
  private release(): void {
    if (!this.waiting.length) return;
    const still: typeof this.waiting = [];
    for (const w of this.waiting) (w.revision <= this.applied ? w.resolve() : still.push(w));
    this.waiting = still;
  }

  private visible(revision: number): Promise<void> {
    if (revision <= this.applied) return Promise.resolve();
    return new Promise((resolve) => this.waiting.push({ revision, resolve }));
  }

  private kvOf(kv: IKeyValue): KeyValue {
    return {
      key: kv.key.toString('utf8').slice(this.prefix.length),
      value: kv.value.toString('utf8'),
      createRevision: Number(kv.create_revision),
      modRevision: Number(kv.mod_revision),
    };
  }

  private eventOf(e: IEvent): BackendEvent | undefined {
    const prev = e.prev_kv ? this.kvOf(e.prev_kv) : undefined;
    if (e.type === 'Delete') {
      // etcd's delete event carries only the key and revision: the last value comes from prev_kv.
      const rev = Number(e.kv.mod_revision);
      const key = e.kv.key.toString('utf8').slice(this.prefix.length);
      const kv = prev ? { ...prev, modRevision: rev } : { key, value: '{}', createRevision: rev, modRevision: rev };
      return { type: 'delete', kv, prev };
    }
    const kv = this.kvOf(e.kv);
    if (kv.createRevision === kv.modRevision) return { type: 'create', kv };
    return { type: 'update', kv, prev };
  }

  currentRevision(): number {
    return this.applied;
  }

  compactedRevision(): number {
    return this.compacted;
  }

  private assertOpen(): Etcd3 {
    if (this.closing || !this.open || !this.client) throw new Error('etcd datastore is not open');
    return this.client;
  }

  async listLatest(prefix: string): Promise<{ revision: number; kvs: KeyValue[] }> {
    const kvs: KeyValue[] = [];
    const revision = await this.eachLatest(prefix, (kv) => kvs.push(kv));
    return { revision, kvs };
  }

  async eachLatest(prefix: string, each: (kv: KeyValue) => void): Promise<number> {
    const client = this.assertOpen();
    const end = prefix === '' ? this.rangeEnd : enc(this.prefix + prefixEnd(prefix)!);
    let from = enc(this.prefix + prefix);
    let revision: number | undefined;
    for (;;) {
      let res;
      try {
        // Later pages read at the first page's revision: one consistent state.
        res = await client.kv.range({ key: from, range_end: end, limit: LIST_PAGE, ...(revision ? { revision } : {}) });
      } catch (err) {
        throw unavailable('range', err);
      }
      revision ??= Number(res.header.revision);
      for (const kv of res.kvs) each(this.kvOf(kv));
      if (!res.more || !res.kvs.length) break;
      from = Buffer.concat([res.kvs[res.kvs.length - 1].key, Buffer.from([0])]);
    }
    return Math.max(revision, 0);
  }

  /**
   * Changes of skiff's keys with revision > `afterRevision` still in etcd's history, at most `limit`.
   * Read with a watch over the whole keyspace up to the current revision: every etcd revision is some
   * key's change, so the stream reaches that revision and the read knows it is complete.
   */
  async history(afterRevision: number, limit: number): Promise<BackendEvent[]> {
    const client = this.assertOpen();
    let upTo: number;
    try {
      upTo = Number((await client.kv.range({ key: this.prefixBuf, count_only: true })).header.revision);
    } catch (err) {
      throw unavailable('range', err);
    }
    const from = Math.max(afterRevision, this.compacted, 1) + 1;
    // Revision 1 is etcd's empty start, the only revision that is no key's change.
    if (from > upTo || limit <= 0) return [];
    const out: BackendEvent[] = [];
    const w = await client.watch().inRange({ start: Buffer.from([0]), end: Buffer.from([0]) }).startRevision(String(from)).withPreviousKV().create();
    try {
      await new Promise<void>((resolve, reject) => {
        // History only prefills the watch cache's rings: a slow read ends with what it has.
        const timer = setTimeout(() => {
          this.log('etcd history read timed out; using what arrived', { from, upTo, events: out.length });
          resolve();
        }, REQUEST_TIMEOUT_MS);
        w.on('data', (res) => {
          for (const e of res.events ?? []) {
            const rev = Number(e.kv.mod_revision);
            if (rev > upTo || out.length >= limit) { clearTimeout(timer); resolve(); return; }
            const key = e.kv.key.toString('utf8');
            if (key.startsWith(this.prefix + '/')) {
              const ev = this.eventOf(e);
              if (ev) out.push(ev);
            }
            if (rev >= upTo && e === res.events[res.events.length - 1]) { clearTimeout(timer); resolve(); return; }
          }
          if (out.length >= limit) { clearTimeout(timer); resolve(); }
        });
        w.on('error', (err) => { clearTimeout(timer); reject(unavailable('watch', err)); });
      });
    } finally {
      await w.cancel().catch(() => {});
    }
    return out.slice(0, limit);
  }

  async get(key: string): Promise<KeyValue | undefined> {
    const client = this.assertOpen();
    try {
      const res = await client.kv.range({ key: enc(this.prefix + key) });
      return res.kvs[0] ? this.kvOf(res.kvs[0]) : undefined;
    } catch (err) {
      throw unavailable('range', err);
    }
  }

  /** Runs `fn` after every earlier op on `key` has settled. */
  private onKey<T>(key: string, fn: () => Promise<T>): Promise<T> {
    if (this.closing || !this.open) return Promise.reject(new Error('etcd datastore is not open'));
    const prev = this.keyChains.get(key) ?? Promise.resolve();
    const run = prev.catch(() => {}).then(fn);
    const tail = run.catch(() => {});
    this.keyChains.set(key, tail);
    void tail.then(() => { if (this.keyChains.get(key) === tail) this.keyChains.delete(key); });
    return run;
  }

  /** One txn: `compare` on the key; on success `op`, else read the key to say why. */
  private async txn(key: string, compare: object, op: object): Promise<{ ok: true; revision: number; prev?: KeyValue } | { ok: false; current?: KeyValue }> {
    const client = this.assertOpen();
    const k = enc(this.prefix + key);
    let res;
    try {
      res = await client.kv.txn({
        compare: [{ key: k, ...compare }],
        success: [op],
        failure: [{ request_range: { key: k } }],
      });
    } catch (err) {
      this.lastHealth = { at: Date.now(), error: unavailable('txn', err) };
      throw this.lastHealth.error;
    }
    this.lastHealth = { at: Date.now() };
    if (!res.succeeded) {
      const kv = res.responses[0]?.response_range?.kvs?.[0];
      return { ok: false, current: kv ? this.kvOf(kv) : undefined };
    }
    const r = res.responses[0];
    const prevKv = r?.response_put?.prev_kv ?? r?.response_delete_range?.prev_kvs?.[0];
    this.stats.transactions++;
    this.stats.writes++;
    return { ok: true, revision: Number(res.header.revision), prev: prevKv ? this.kvOf(prevKv) : undefined };
  }

  create(key: string, value: string): Promise<KeyValue> {
    return this.onKey(key, async () => {
      const r = await this.txn(key, { target: 'Version', result: 'Equal', version: 0 }, { request_put: { key: enc(this.prefix + key), value: enc(value) } });
      if (!r.ok) throw new KeyExistsError(key);
      await this.visible(r.revision);
      return { key, value, createRevision: r.revision, modRevision: r.revision };
    });
  }

  update(key: string, value: string, expectedModRevision: number): Promise<KeyValue> {
    return this.onKey(key, async () => {
      const r = await this.txn(key, { target: 'Mod', result: 'Equal', mod_revision: expectedModRevision },
        { request_put: { key: enc(this.prefix + key), value: enc(value), prev_kv: true } });
      if (!r.ok) throw r.current ? new RevisionConflictError(key, r.current) : new KeyNotFoundError(key);
      await this.visible(r.revision);
      return { key, value, createRevision: r.prev?.createRevision ?? r.revision, modRevision: r.revision };
    });
  }

  delete(key: string, expectedModRevision?: number): Promise<KeyValue> {
    return this.onKey(key, async () => {
      const compare = expectedModRevision === undefined
        ? { target: 'Version', result: 'Greater', version: 0 }
        : { target: 'Mod', result: 'Equal', mod_revision: expectedModRevision };
      const r = await this.txn(key, compare, { request_delete_range: { key: enc(this.prefix + key), prev_kv: true } });
      if (!r.ok) throw r.current ? new RevisionConflictError(key, r.current) : new KeyNotFoundError(key);
      if (!r.prev) throw new KeyNotFoundError(key);
      await this.visible(r.revision);
      return { ...r.prev, modRevision: r.revision };
    });
  }

  onCommit(listener: (events: BackendEvent[]) => void): void {
    this.listeners.push(listener);
  }

  /** etcd's own compaction of its history at `revision` (at most the newest revision seen). */
  async compact(revision: number): Promise<void> {
    const client = this.assertOpen();
    const target = Math.min(revision, this.applied);
    if (target <= this.compacted) return;
    try {
      await client.kv.compact({ revision: target, physical: true });
      this.compacted = target;
      this.log('etcd compacted', { revision: target });
    } catch (err) {
      if (/compacted/.test(String(err))) {
        // Another server compacted at or beyond this revision already.
        this.compacted = await this.findCompacted(this.applied, Math.max(1, this.compacted)).catch(() => this.compacted);
        return;
      }
      throw unavailable('compact', err);
    }
  }

  startAutoCompact(intervalMs = 5 * 60_000, keepRevisions = this.opts.compactKeep ?? 1000): void {
    this.stopAutoCompact();
    this.autoCompact = setInterval(() => {
      const target = this.applied - keepRevisions;
      if (target > this.compacted) {
        this.compact(target).catch((err) => this.log('etcd compaction failed', { err: String(err) }));
      } else if (this.open && !this.closing) {
        // Another server may have compacted: keep the mark (410 answers) current.
        this.findCompacted(this.applied, Math.max(1, this.compacted)).then((c) => { this.compacted = Math.max(this.compacted, c); }, () => {});
      }
    }, intervalMs);
    this.autoCompact.unref();
  }

  stopAutoCompact(): void {
    if (this.autoCompact) clearInterval(this.autoCompact);
    this.autoCompact = undefined;
  }

  async dbSize(): Promise<number> {
    const client = this.assertOpen();
    try {
      return Number((await client.maintenance.status()).dbSize);
    } catch (err) {
      throw unavailable('status', err);
    }
  }

  /**
   * A linearizable read of one key (kube-apiserver's etcd check): answers only with a quorum, so it
   * also says writes can commit. A write or read within `maxAgeMs` answers instead.
   */
  async checkHealth(maxAgeMs = 1000): Promise<void> {
    const client = this.assertOpen();
    const last = this.lastHealth;
    if (last && Date.now() - last.at < maxAgeMs) {
      if (last.error) throw last.error;
      return;
    }
    this.healthProbe ??= client.kv.range({ key: enc(this.prefix + '-health'), count_only: true }).then(
      () => { this.lastHealth = { at: Date.now() }; },
      (err) => { this.lastHealth = { at: Date.now(), error: unavailable('health', err) }; throw this.lastHealth.error; },
    ).finally(() => { this.healthProbe = undefined; });
    return this.healthProbe;
  }

  async close(): Promise<void> {
    if (!this.open || this.closing) return;
    this.closing = true;
    this.stopAutoCompact();
    // Writes in flight finish; one whose event the watch has not brought back (etcd unreachable) is
    // not waited for beyond a few seconds.
    await Promise.race([Promise.all([...this.keyChains.values()]), new Promise((r) => setTimeout(r, 5000).unref())]).catch(() => {});
    await this.watcher?.cancel().catch(() => {});
    this.open = false;
    this.client?.close();
    this.client = undefined;
    for (const w of this.waiting) w.resolve();
    this.waiting = [];
  }
}
