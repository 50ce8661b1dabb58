// PostgreSQL driver (`--datastore-endpoint postgres://user:pass@host:5432/db`, as k3s).
//
// Revisions: the row `meta.revision` is the log's single-writer lock and counter. A batch is planned
// from one snapshot (the revision and its keys' latest rows, read by one statement) and written by
// one statement that bumps the revision only if it still has the planned value: the UPDATE takes
// the row's lock, waits for a concurrent writer of any server, and re-checks. If the revision moved,
// the batch is planned again inside a transaction that holds the lock (SELECT ... FOR UPDATE).
// Revisions are therefore handed out in commit order with no gaps: a reader that has seen revision
// N and later reads `id > N` can never miss a row that commits afterwards with a smaller id. (kine
// takes ids from a sequence instead: they are allocated out of commit order, so its pollers must
// detect and wait out gaps, and its compare-and-swap rests on a unique (name, prev_revision) index
// alone.) A unique index on (name, prev_revision) stays here as a guard.
//
// Notification: every write NOTIFYs channel `skiff_kv` with its revision and writer; every server
// LISTENs on a dedicated connection and catches up on a notification. NOTIFY is delivered at commit,
// in commit order, and lost while the listener is disconnected, so the log layer also polls (a cheap
// read of the meta row) as the fallback.
//
// Keys use the "C" collation so range scans are bytewise, as skiff's key order assumes, and use the
// (name, id) index whatever the database's default locale is (k3s 9256).
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import type { CommitPlan, Driver, DriverState, HistoryRow, LogRow } from './driver.js';
import { DatastoreUnavailableError, redact } from './driver.js';

const CHANNEL = 'skiff_kv';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS kv (
     id BIGINT PRIMARY KEY,
     name TEXT COLLATE "C" NOT NULL,
     created BOOLEAN NOT NULL,
     deleted BOOLEAN NOT NULL,
     create_revision BIGINT NOT NULL,
     prev_revision BIGINT NOT NULL,
     value TEXT NOT NULL
   )`,
  'CREATE INDEX IF NOT EXISTS kv_name_id ON kv (name, id)',
  'CREATE UNIQUE INDEX IF NOT EXISTS kv_name_prev ON kv (name, prev_revision)',
  'CREATE TABLE IF NOT EXISTS meta (k TEXT COLLATE "C" PRIMARY KEY, v BIGINT NOT NULL)',
  `INSERT INTO meta (k, v) VALUES ('revision', 0), ('compacted', 0) ON CONFLICT (k) DO NOTHING`,
];

// Prepared once per connection by name (node-postgres parses a named statement once per client).
const Q = {
  state: { name: 'skiff-state', text: `SELECT k, v FROM meta WHERE k IN ('revision', 'compacted')` },
  // The revision and the keys' latest rows in one statement, hence one snapshot: they agree.
  readForWrite: {
    name: 'skiff-read-for-write',
    text: `SELECT r.v AS base, k.* FROM (SELECT v FROM meta WHERE k = 'revision') r
             LEFT JOIN LATERAL (
               SELECT l.* FROM unnest($1::text[]) AS n(name)
                 CROSS JOIN LATERAL (SELECT * FROM kv WHERE kv.name = n.name ORDER BY id DESC LIMIT 1) l
             ) k ON true`,
  },
  latest: { name: 'skiff-latest', text: 'SELECT * FROM kv WHERE name = $1 ORDER BY id DESC LIMIT 1' },
  // Writes a planned batch only if the revision is still the one the plan was made from: the UPDATE
  // takes the revision row's lock (waiting for a concurrent writer, then re-checking the condition
  // against its result), and the rows are inserted only when it matched. One statement, so one
  // implicit transaction: no lock is held across round trips.
  write: {
    name: 'skiff-write',
    text: `WITH rev AS (UPDATE meta SET v = $9 WHERE k = 'revision' AND v = $8 RETURNING v),
                ins AS (
                  INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value)
                  SELECT * FROM unnest($1::bigint[], $2::text[], $3::boolean[], $4::boolean[], $5::bigint[], $6::bigint[], $7::text[])
                   WHERE EXISTS (SELECT 1 FROM rev)
                  RETURNING 1)
           SELECT (SELECT count(*) FROM rev)::int AS ok, (SELECT count(*) FROM ins)::int AS inserted,
                  pg_notify('${CHANNEL}', $9::text || ' ' || $10::text) AS notified
            WHERE EXISTS (SELECT 1 FROM rev)`,
  },
  probe: {
    name: 'skiff-probe',
    text: `INSERT INTO meta (k, v) VALUES ('health-probe', $1) ON CONFLICT (k) DO UPDATE SET v = excluded.v`,
  },
  listLatest: {
    name: 'skiff-list-latest',
    text: `SELECT * FROM (
             SELECT DISTINCT ON (name) * FROM kv WHERE name >= $1 AND ($2::text IS NULL OR name < $2) ORDER BY name, id DESC
           ) l WHERE NOT deleted ORDER BY name`,
  },
  history: {
    name: 'skiff-history',
    text: `SELECT k.*, p.value AS prev_value, p.create_revision AS prev_create_revision
             FROM kv k LEFT JOIN kv p ON p.id = k.prev_revision AND NOT k.created
            WHERE k.id > $1 AND k.id <= $2 ORDER BY k.id LIMIT $3`,
  },
  compact: {
    name: 'skiff-compact',
    text: `WITH scan AS (SELECT id, deleted, prev_revision FROM kv WHERE id > $1 AND id <= $2 ORDER BY id LIMIT $3),
                del AS (DELETE FROM kv WHERE id IN (SELECT prev_revision FROM scan WHERE prev_revision > 0
                                                    UNION ALL SELECT id FROM scan WHERE deleted) RETURNING 1)
           SELECT (SELECT count(*) FROM del) AS removed, (SELECT count(*) FROM scan) AS scanned, (SELECT max(id) FROM scan) AS last`,
  },
  setCompacted: { name: 'skiff-set-compacted', text: `UPDATE meta SET v = GREATEST(v, $1) WHERE k = 'compacted'` },
  size: { name: 'skiff-size', text: `SELECT pg_total_relation_size('kv') + pg_total_relation_size('meta') AS bytes` },
};

/** Begins a write transaction and takes the log's write lock, in one round trip. */
const BEGIN_LOCKED = `BEGIN; SELECT v FROM meta WHERE k = 'revision' FOR UPDATE`;

interface Row {
  id: string;
  name: string;
  created: boolean;
  deleted: boolean;
  create_revision: string;
  prev_revision: string;
  value: string;
}

interface JoinedRow extends Row {
  prev_value: string | null;
  prev_create_revision: string | null;
}

const rowOf = (r: Row): LogRow => ({
  id: Number(r.id), name: r.name, created: r.created, deleted: r.deleted,
  createRevision: Number(r.create_revision), prevRevision: Number(r.prev_revision), value: r.value,
});

export interface PostgresEndpoint {
  /** The connection string as given, for pg. */
  connectionString: string;
  database: string;
  /** user@host:port/db, for messages (no password). */
  display: string;
}

/** Parses `postgres://` / `postgresql://` endpoints; the database defaults to `kubernetes`, as k3s. */
export function parsePostgresEndpoint(endpoint: string): PostgresEndpoint {
  let u: URL;
  try {
    u = new URL(endpoint);
  } catch {
    throw new Error(`invalid datastore endpoint ${JSON.stringify(redact(endpoint))}: not a URL`);
  }
  if (u.protocol !== 'postgres:' && u.protocol !== 'postgresql:') throw new Error(`invalid datastore endpoint: scheme ${u.protocol} is not postgres`);
  if (!u.hostname) throw new Error(`invalid datastore endpoint ${JSON.stringify(redact(endpoint))}: no host`);
  const database = decodeURIComponent(u.pathname.replace(/^\//, '')) || 'kubernetes';
  u.pathname = `/${encodeURIComponent(database)}`;
  const display = `${decodeURIComponent(u.username) || 'postgres'}@${u.hostname}:${u.port || 5432}/${database}`;
  return { connectionString: u.toString(), database, display };
}

/** SQLSTATE classes that mean "the database is not there right now", not "your request is wrong". */
function unavailable(err: unknown): boolean {
  const code = (err as { code?: string }).code;
  if (!code) return true;                       // socket errors, timeouts, "Connection terminated"
  if (/^E[A-Z]+$/.test(code)) return true;      // ECONNREFUSED, ECONNRESET, ETIMEDOUT...
  return /^(08|53|57|58|XX)/.test(code);        // connection, resources, operator intervention, system
}

function wrap(err: unknown, what: string): Error {
  if (err instanceof DatastoreUnavailableError) return err;
  const message = err instanceof Error ? err.message : String(err);
  if (unavailable(err)) return new DatastoreUnavailableError(`postgres ${what}: ${message || 'connection failed'}`, err);
  return err instanceof Error ? err : new Error(message);
}

export interface PostgresDriverOptions {
  /** Connections in the pool (default 4): one writer at a time, the rest for reads and compaction. */
  maxConnections?: number;
  connectTimeoutMs?: number;
  queryTimeoutMs?: number;
  /** PEM texts from --datastore-cafile/-certfile/-keyfile: TLS to the server, verified against `ca`. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  log?: (msg: string, fields?: object) => void;
}

export class PostgresDriver implements Driver {
  readonly name = 'postgres';
  readonly endpoint: PostgresEndpoint;
  private pool?: pg.Pool;
  private listener?: pg.Client;
  private onChange?: () => void;
  private closed = false;
  private reconnectTimer?: NodeJS.Timeout;
  private listenerDown = false;
  /** Tags this process's NOTIFYs, so its own listener can skip them. */
  private readonly writerId = randomBytes(8).toString('hex');
  private readonly log: (msg: string, fields?: object) => void;

  constructor(endpoint: string, private readonly opts: PostgresDriverOptions = {}) {
    this.endpoint = parsePostgresEndpoint(endpoint);
    this.log = opts.log ?? (() => {});
  }

  private config(database?: string): pg.ClientConfig {
    let connectionString = this.endpoint.connectionString;
    if (database) {
      // The connection string wins over a `database` field in pg: change the path instead.
      const u = new URL(connectionString);
      u.pathname = `/${encodeURIComponent(database)}`;
      connectionString = u.toString();
    }
    const c: pg.ClientConfig = {
      connectionString,
      connectionTimeoutMillis: this.opts.connectTimeoutMs ?? 10_000,
      application_name: 'skiff',
      // A query that hangs (a datastore cut off without a reset) fails instead of stalling the log.
      query_timeout: this.opts.queryTimeoutMs ?? 30_000,
    };
    const tls = this.opts.tls;
    if (tls && (tls.ca || tls.cert)) c.ssl = { ca: tls.ca, cert: tls.cert, key: tls.key };
    return c;
  }

  async open(): Promise<DriverState> {
    await this.ensureDatabase();
    const pool = new pg.Pool({ ...this.config(), max: this.opts.maxConnections ?? 4, idleTimeoutMillis: 30_000 });
    // An idle connection that dies (server restart) must not crash the process; the next query reconnects.
    pool.on('error', (err) => this.log('postgres idle connection lost', { err: err.message }));
    this.pool = pool;
    const client = await pool.connect().catch((err) => { throw this.startError(err); });
    try {
      await client.query('BEGIN');
      // Two servers starting on an empty database must not race on CREATE TABLE.
      await client.query('SELECT pg_advisory_xact_lock(7420591)');
      for (const sql of SCHEMA) await client.query(sql);
      await client.query('COMMIT');
    } catch (err) {
      await client.query('ROLLBACK').catch(() => {});
      client.release(true);
      throw this.startError(err);
    }
    client.release();
    return this.state();
  }

  /** Connects to the `postgres` database to create ours when it does not exist (3D000). */
  private async ensureDatabase(): Promise<void> {
    const probe = new pg.Client(this.config());
    probe.on('error', () => {});
    try {
      await probe.connect();
      await probe.end();
      return;
    } catch (err) {
      await probe.end().catch(() => {});
      if ((err as { code?: string }).code !== '3D000') throw this.startError(err);
    }
    const admin = new pg.Client(this.config('postgres'));
    admin.on('error', () => {});
    try {
      await admin.connect();
      await admin.query(`CREATE DATABASE ${pg.escapeIdentifier(this.endpoint.database)}`).catch((err) => {
        if ((err as { code?: string }).code !== '42P04') throw err;   // created meanwhile by another server
      });
      this.log('postgres database created', { database: this.endpoint.database });
    } catch (err) {
      throw this.startError(err);
    } finally {
      await admin.end().catch(() => {});
    }
  }

  private startError(err: unknown): Error {
    const message = err instanceof Error ? err.message || (err as { code?: string }).code || 'connection failed' : String(err);
    return new Error(`cannot use datastore postgres ${this.endpoint.display}: ${message}`);
  }

  private get p(): pg.Pool {
    if (!this.pool || this.closed) throw new Error('postgres datastore is not open');
    return this.pool;
  }

  private async query<R extends pg.QueryResultRow>(q: { name: string; text: string }, values: unknown[], what: string): Promise<R[]> {
    try {
      return (await this.p.query<R>({ ...q, values })).rows;
    } catch (err) {
      throw wrap(err, what);
    }
  }

  async state(): Promise<DriverState> {
    const rows = await this.query<{ k: string; v: string }>(Q.state, [], 'read');
    const get = (k: string) => Number(rows.find((r) => r.k === k)?.v ?? 0);
    return { revision: get('revision'), compacted: get('compacted') };
  }

  /**
   * A transaction holding the log's write lock (the revision row, FOR UPDATE) on one pooled
   * connection; a connection that failed is discarded, not reused.
   */
  private async transaction<T>(what: string, fn: (c: pg.PoolClient, revision: number) => Promise<T>): Promise<T> {
    let client: pg.PoolClient;
    try {
      client = await this.p.connect();
    } catch (err) {
      throw wrap(err, what);
    }
    let broken: Error | undefined;
    try {
      const res = await client.query(BEGIN_LOCKED) as unknown as pg.QueryResult[];
      const revision = Number(res[1].rows[0].v);
      const out = await fn(client, revision);
      await client.query('COMMIT');
      return out;
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => { broken = e; });
      if (unavailable(err)) broken ??= err as Error;
      throw wrap(err, what);
    } finally {
      client.release(broken);
    }
  }

  /**
   * Optimistic first: read the revision and the keys' rows (one statement), plan, then write only if
   * the revision has not moved (one statement). Two round trips and no lock held between them, which
   * is what keeps one server's group commits fast. When another server committed in between, the
   * batch is planned again under the revision row's lock, which no other writer can pass.
   */
  async commit<T>(keys: string[], plan: (revision: number, latest: Map<string, LogRow>) => CommitPlan<T>): Promise<T> {
    let rows: (Row & { base: string })[];
    try {
      rows = (await this.p.query<Row & { base: string }>({ ...Q.readForWrite, values: [keys] })).rows;
    } catch (err) {
      throw wrap(err, 'write');
    }
    const base = Number(rows[0]?.base ?? 0);
    const latest = new Map<string, LogRow>();
    for (const r of rows) if (r.id !== null) latest.set(r.name, rowOf(r));
    const p = plan(base, latest);
    if (await this.write(this.p, p, base)) return p.result;
    return this.transaction('write', async (c, revision) => {
      const locked = new Map<string, LogRow>();
      for (const r of (await c.query<Row & { base: string }>({ ...Q.readForWrite, values: [keys] })).rows) {
        if (r.id !== null) locked.set(r.name, rowOf(r));
      }
      const again = plan(revision, locked);
      if (!await this.write(c, again, revision)) throw new Error('postgres: revision moved while holding the write lock');
      return again.result;
    });
  }

  /** Writes a plan made from revision `base`; false (nothing written) when the revision has moved. */
  private async write<T>(q: pg.Pool | pg.PoolClient, p: CommitPlan<T>, base: number): Promise<boolean> {
    try {
      if (p.probe) await q.query({ ...Q.probe, values: [Date.now()] });
      if (!p.rows.length) return true;
      const cols: unknown[][] = [[], [], [], [], [], [], []];
      for (const r of p.rows) {
        cols[0].push(r.id); cols[1].push(r.name); cols[2].push(r.created); cols[3].push(r.deleted);
        cols[4].push(r.createRevision); cols[5].push(r.prevRevision); cols[6].push(r.value);
      }
      const res = await q.query<{ ok: number }>({ ...Q.write, values: [...cols, base, p.revision, this.writerId] });
      return res.rows.length === 1 && res.rows[0].ok === 1;
    } catch (err) {
      throw wrap(err, 'write');
    }
  }

  async latest(key: string): Promise<LogRow | undefined> {
    const rows = await this.query<Row>(Q.latest, [key], 'read');
    return rows[0] && rowOf(rows[0]);
  }

  async listLatest(from: string, to: string | undefined): Promise<{ revision: number; rows: LogRow[] }> {
    let client: pg.PoolClient;
    try {
      client = await this.p.connect();
    } catch (err) {
      throw wrap(err, 'read');
    }
    let broken: Error | undefined;
    try {
      // One snapshot for the revision and the rows, so they agree.
      await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
      const state = (await client.query<{ k: string; v: string }>(Q.state)).rows;
      const rows = (await client.query<Row>({ ...Q.listLatest, values: [from, to ?? null] })).rows;
      await client.query('COMMIT');
      return { revision: Number(state.find((r) => r.k === 'revision')?.v ?? 0), rows: rows.map(rowOf) };
    } catch (err) {
      await client.query('ROLLBACK').catch((e: Error) => { broken = e; });
      throw wrap(err, 'read');
    } finally {
      client.release(broken);
    }
  }

  async history(after: number, upTo: number, limit: number): Promise<HistoryRow[]> {
    const rows = await this.query<JoinedRow>(Q.history, [after, upTo, limit], 'read');
    return rows.map((r) => ({
      ...rowOf(r),
      prevValue: r.prev_value ?? undefined,
      prevCreateRevision: r.prev_create_revision === null ? undefined : Number(r.prev_create_revision),
    }));
  }

  compactStep(from: number, to: number, limit: number): Promise<{ upTo: number; removed: number }> {
    // Under the write lock: a writer never reads a key's latest row while compaction removes it.
    return this.transaction('compaction', async (c) => {
      const r = (await c.query<{ removed: string; scanned: string; last: string | null }>({ ...Q.compact, values: [from, to, limit] })).rows[0];
      const upTo = Number(r.scanned) < limit || r.last === null ? to : Number(r.last);
      await c.query({ ...Q.setCompacted, values: [upTo] });
      return { upTo, removed: Number(r.removed) };
    });
  }

  async size(): Promise<number> {
    const rows = await this.query<{ bytes: string }>(Q.size, [], 'read');
    return Number(rows[0].bytes);
  }

  subscribe(onChange: () => void): Promise<void> {
    this.onChange = onChange;
    return this.listen();
  }

  /** LISTEN on a connection of its own; reconnects after a loss and catches up once back. */
  private async listen(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client(this.config());
    this.listener = client;
    const lost = (why: string) => {
      if (this.listener !== client) return;
      this.listener = undefined;
      client.end().catch(() => {});
      if (this.closed) return;
      if (!this.listenerDown) this.log('postgres notification channel lost; polling until it is back', { err: why });
      this.listenerDown = true;
      this.reconnectTimer = setTimeout(() => void this.listen(), 1000);
      this.reconnectTimer.unref();
    };
    client.on('error', (err) => lost(err.message));
    client.on('end', () => lost('connection ended'));
    // Our own commits reach the log layer through the commit path; only other servers' wake it.
    client.on('notification', (n) => { if (!n.payload?.endsWith(` ${this.writerId}`)) this.onChange?.(); });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
      if (this.listenerDown) this.log('postgres notification channel back');
      this.listenerDown = false;
      // Commits made while nobody listened were not announced.
      this.onChange?.();
    } catch (err) {
      lost((err as Error).message);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const l = this.listener;
    this.listener = undefined;
    await l?.end().catch(() => {});
    await this.pool?.end().catch(() => {});
    this.pool = undefined;
  }
}
