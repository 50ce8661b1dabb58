// MySQL 8 / MariaDB 10.11 driver (`--datastore-endpoint mysql://user:pass@tcp(host:3306)/db`, k3s's
// Go-DSN syntax; `mysql://user:pass@host:3306/db` works too).
//
// Revisions are kept as in postgres.ts: `meta.revision` is the single-writer lock and counter. A
// batch is planned from one snapshot (revision and the keys' latest rows, one statement), then
// written in a transaction whose first statement bumps the revision only if it still has the
// planned value (the UPDATE takes the row lock, waiting for any other server's writer), sent with
// the rows as one multi-statement query and then committed (two round trips); when it has moved,
// the transaction is rolled back and the batch planned again under `SELECT ... FOR UPDATE`. Revisions are gapless and in
// commit order. There is no push channel: other servers' commits are found by polling the meta
// row every 250 ms (the log layer's catch-up).
//
// Keys are `utf8mb4_bin`, so range scans are bytewise as skiff's key order assumes.
import mysql from 'mysql2/promise';
import type { CommitPlan, Driver, DriverState, HistoryRow, LogRow } from './driver.js';
import { DatastoreUnavailableError, redact } from './driver.js';

const SCHEMA = [
  `CREATE TABLE IF NOT EXISTS kv (
     id BIGINT NOT NULL PRIMARY KEY,
     name VARCHAR(630) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
     created TINYINT NOT NULL,
     deleted TINYINT NOT NULL,
     create_revision BIGINT NOT NULL,
     prev_revision BIGINT NOT NULL,
     value LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
     KEY kv_name_id (name, id),
     UNIQUE KEY kv_name_prev (name, prev_revision)
   ) ENGINE=InnoDB`,
  `CREATE TABLE IF NOT EXISTS meta (k VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL PRIMARY KEY, v BIGINT NOT NULL) ENGINE=InnoDB`,
  `INSERT IGNORE INTO meta (k, v) VALUES ('revision', 0), ('compacted', 0)`,
];

const LATEST_OF = `SELECT k.* FROM kv k JOIN (SELECT MAX(id) AS id FROM kv WHERE name IN (?) GROUP BY name) m ON k.id = m.id`;

interface Row {
  id: number | string;
  name: string;
  created: number;
  deleted: number;
  create_revision: number | string;
  prev_revision: number | string;
  value: string;
}

const rowOf = (r: Row): LogRow => ({
  id: Number(r.id), name: r.name, created: Number(r.created) === 1, deleted: Number(r.deleted) === 1,
  createRevision: Number(r.create_revision), prevRevision: Number(r.prev_revision), value: r.value,
});

export interface MysqlEndpoint {
  host: string;
  port: number;
  user: string;
  password: string;
  database: string;
  display: string;
}

/** Parses `mysql://user:pass@tcp(host:port)/db` (Go DSN, as k3s) or `mysql://user:pass@host:port/db`. */
export function parseMysqlEndpoint(endpoint: string): MysqlEndpoint {
  const bad = (why: string) => new Error(`invalid datastore endpoint ${JSON.stringify(redact(endpoint))}: ${why}`);
  const m = /^mysql:\/\/(?:([^:@/]*)(?::([^@]*))?@)?(?:tcp\(([^)]*)\)|([^/?]*))(?:\/([^?]*))?(?:\?.*)?$/.exec(endpoint);
  if (!m) throw bad('expected mysql://user:pass@tcp(host:3306)/db');
  const addr = m[3] ?? m[4] ?? '';
  const hp = /^(\[[^\]]+\]|[^:()[\]\s]+)(?::(\d+))?$/.exec(addr);
  if (!hp) throw bad('no host');
  const user = decodeURIComponent(m[1] ?? '') || 'root';
  const database = decodeURIComponent(m[5] ?? '') || 'kubernetes';
  const host = hp[1].replace(/^\[|\]$/g, '');
  const port = Number(hp[2] ?? 3306);
  return { host, port, user, password: decodeURIComponent(m[2] ?? ''), database, display: `${user}@${host}:${port}/${database}` };
}

function unavailable(err: unknown): boolean {
  const e = err as { code?: string; errno?: number; fatal?: boolean };
  if (e.fatal) return true;
  if (!e.code) return true;
  return /^(E[A-Z]+|PROTOCOL_|ER_CON_COUNT|ER_SERVER_SHUTDOWN|ER_LOCK_WAIT_TIMEOUT|ER_QUERY_INTERRUPTED)/.test(e.code);
}

function wrap(err: unknown, what: string): Error {
  if (err instanceof DatastoreUnavailableError) return err;
  const message = err instanceof Error ? err.message || (err as { code?: string }).code || 'connection failed' : String(err);
  if (unavailable(err)) return new DatastoreUnavailableError(`mysql ${what}: ${message}`, err);
  return err instanceof Error ? err : new Error(message);
}

export class MysqlDriver implements Driver {
  readonly name = 'mysql';
  readonly endpoint: MysqlEndpoint;
  private pool?: mysql.Pool;
  private closed = false;

  constructor(endpoint: string, private readonly opts: { log?: (msg: string, fields?: object) => void; tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer } } = {}) {
    this.endpoint = parseMysqlEndpoint(endpoint);
  }

  private connOpts(withDb: boolean): mysql.ConnectionOptions {
    const e = this.endpoint;
    return {
      host: e.host, port: e.port, user: e.user, password: e.password, database: withDb ? e.database : undefined,
      connectTimeout: 10_000, supportBigNumbers: true, bigNumberStrings: true, charset: 'utf8mb4',
      // --datastore-cafile/-certfile/-keyfile: TLS to the server.
      ...(this.opts.tls && (this.opts.tls.ca || this.opts.tls.cert) ? { ssl: { ca: this.opts.tls.ca, cert: this.opts.tls.cert, key: this.opts.tls.key } } : {}),
    };
  }

  async open(): Promise<DriverState> {
    const e = this.endpoint;
    try {
      const admin = await mysql.createConnection(this.connOpts(false));
      try {
        await admin.query(`CREATE DATABASE IF NOT EXISTS \`${e.database.replace(/`/g, '``')}\` CHARACTER SET utf8mb4`);
      } finally {
        await admin.end().catch(() => {});
      }
      this.pool = mysql.createPool({ ...this.connOpts(true), connectionLimit: 4, enableKeepAlive: true, multipleStatements: true });
      // A connection lost while idle must not crash the process; the next query reconnects.
      (this.pool as unknown as { on(ev: string, f: (err: Error) => void): void }).on?.('error', (err: Error) => this.opts.log?.('mysql connection lost', { err: err.message }));
      for (const sql of SCHEMA) await this.pool.query(sql);
    } catch (err) {
      const message = err instanceof Error ? err.message || (err as { code?: string }).code : String(err);
      throw new Error(`cannot use datastore mysql ${e.display}: ${message}`);
    }
    return this.state();
  }

  private get p(): mysql.Pool {
    if (!this.pool || this.closed) throw new Error('mysql datastore is not open');
    return this.pool;
  }

  private async rows<R>(sql: string, values: unknown[], what: string): Promise<R[]> {
    try {
      const [rows] = await this.p.query(sql, values);
      return rows as R[];
    } catch (err) {
      throw wrap(err, what);
    }
  }

  async state(): Promise<DriverState> {
    const rows = await this.rows<{ k: string; v: string }>(`SELECT k, v FROM meta WHERE k IN ('revision', 'compacted')`, [], 'read');
    const get = (k: string) => Number(rows.find((r) => r.k === k)?.v ?? 0);
    return { revision: get('revision'), compacted: get('compacted') };
  }

  /** The revision and the keys' latest rows from one statement (one consistent read). */
  private async readForWrite(q: mysql.Pool | mysql.PoolConnection, keys: string[], lock: boolean): Promise<{ base: number; latest: Map<string, LogRow> }> {
    const sql = `SELECT r.v AS base, k.* FROM (SELECT v FROM meta WHERE k = 'revision'${lock ? ' FOR UPDATE' : ''}) r
                   LEFT JOIN (${LATEST_OF}) k ON 1 = 1`;
    const [rows] = await q.query(sql, [keys.length ? keys : ['']]);
    const list = rows as (Row & { base: string })[];
    const latest = new Map<string, LogRow>();
    for (const r of list) if (r.id !== null) latest.set(r.name, rowOf(r));
    return { base: Number(list[0]?.base ?? 0), latest };
  }

  async commit<T>(keys: string[], plan: (revision: number, latest: Map<string, LogRow>) => CommitPlan<T>): Promise<T> {
    let first: { base: number; latest: Map<string, LogRow> };
    try {
      first = await this.readForWrite(this.p, keys, false);
    } catch (err) {
      throw wrap(err, 'write');
    }
    const p = plan(first.base, first.latest);
    const done = await this.inTransaction(async (c) => (await this.write(c, p, first.base)) ? p.result : undefined);
    if (done !== undefined || (!p.rows.length && !p.probe)) return p.result;
    // Another server moved the revision: plan again under the lock.
    return (await this.inTransaction(async (c) => {
      const { base, latest } = await this.readForWrite(c, keys, true);
      const again = plan(base, latest);
      if (!await this.write(c, again, base)) throw new Error('mysql: revision moved while holding the write lock');
      return again.result;
    }))!;
  }

  /** Runs `fn` in a transaction; commits when it returns something, rolls back on undefined or error. */
  private async inTransaction<R>(fn: (c: mysql.PoolConnection) => Promise<R | undefined>): Promise<R | undefined> {
    let c: mysql.PoolConnection;
    try {
      c = await this.p.getConnection();
    } catch (err) {
      throw wrap(err, 'write');
    }
    let broken = false;
    try {
      await c.beginTransaction();
      const out = await fn(c);
      if (out === undefined) await c.rollback();
      else await c.commit();
      return out;
    } catch (err) {
      await c.rollback().catch(() => { broken = true; });
      if (unavailable(err)) broken = true;
      throw wrap(err, 'write');
    } finally {
      if (broken) c.destroy(); else c.release();
    }
  }

  /** Writes a plan made from revision `base` inside a transaction; false when the revision moved. */
  private async write<T>(c: mysql.PoolConnection, p: CommitPlan<T>, base: number): Promise<boolean> {
    if (p.probe) await c.query(`INSERT INTO meta (k, v) VALUES ('health-probe', ?) ON DUPLICATE KEY UPDATE v = VALUES(v)`, [Date.now()]);
    if (!p.rows.length) return true;
    const [res] = await c.query(`UPDATE meta SET v = ? WHERE k = 'revision' AND v = ?`, [p.revision, base]);
    if ((res as mysql.ResultSetHeader).affectedRows !== 1) return false;
    await c.query('INSERT INTO kv (id, name, created, deleted, create_revision, prev_revision, value) VALUES ?', [
      p.rows.map((r) => [r.id, r.name, r.created ? 1 : 0, r.deleted ? 1 : 0, r.createRevision, r.prevRevision, r.value]),
    ]);
    return true;
  }

  async latest(key: string): Promise<LogRow | undefined> {
    const rows = await this.rows<Row>('SELECT * FROM kv WHERE name = ? ORDER BY id DESC LIMIT 1', [key], 'read');
    return rows[0] && rowOf(rows[0]);
  }

  async listLatest(from: string, to: string | undefined): Promise<{ revision: number; rows: LogRow[] }> {
    let c: mysql.PoolConnection;
    try {
      c = await this.p.getConnection();
    } catch (err) {
      throw wrap(err, 'read');
    }
    try {
      // One snapshot for the revision and the rows, so they agree.
      await c.query('START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY');
      const [state] = await c.query(`SELECT v FROM meta WHERE k = 'revision'`);
      const [rows] = await c.query(
        `SELECT k.* FROM kv k JOIN (SELECT MAX(id) AS id FROM kv WHERE name >= ? AND (? IS NULL OR name < ?) GROUP BY name) m
           ON k.id = m.id WHERE k.deleted = 0 ORDER BY k.name`, [from, to ?? null, to ?? null]);
      await c.query('COMMIT');
      return { revision: Number((state as { v: string }[])[0]?.v ?? 0), rows: (rows as Row[]).map(rowOf) };
    } catch (err) {
      await c.query('ROLLBACK').catch(() => {});
      throw wrap(err, 'read');
    } finally {
      c.release();
    }
  }

  async history(after: number, upTo: number, limit: number): Promise<HistoryRow[]> {
    const rows = await this.rows<Row & { prev_value: string | null; prev_create_revision: string | null }>(
      `SELECT k.*, p.value AS prev_value, p.create_revision AS prev_create_revision
         FROM kv k LEFT JOIN kv p ON p.id = k.prev_revision AND k.created = 0
        WHERE k.id > ? AND k.id <= ? ORDER BY k.id LIMIT ?`, [after, Math.min(upTo, Number.MAX_SAFE_INTEGER), limit], 'read');
    return rows.map((r) => ({
      ...rowOf(r),
      prevValue: r.prev_value ?? undefined,
      prevCreateRevision: r.prev_create_revision === null ? undefined : Number(r.prev_create_revision),
    }));
  }

  async compactStep(from: number, to: number, limit: number): Promise<{ upTo: number; removed: number }> {
    // Under the write lock: a writer never reads a key's latest row while compaction removes it.
    const out = await this.inTransaction(async (c) => {
      await c.query(`SELECT v FROM meta WHERE k = 'revision' FOR UPDATE`);
      const [scan] = await c.query('SELECT id, deleted, prev_revision FROM kv WHERE id > ? AND id <= ? ORDER BY id LIMIT ?', [from, to, limit]);
      const rows = scan as { id: string; deleted: number; prev_revision: string }[];
      const ids = rows.flatMap((r) => [...(Number(r.prev_revision) > 0 ? [r.prev_revision] : []), ...(Number(r.deleted) ? [r.id] : [])]);
      let removed = 0;
      if (ids.length) {
        const [res] = await c.query('DELETE FROM kv WHERE id IN (?)', [ids]);
        removed = (res as mysql.ResultSetHeader).affectedRows;
      }
      const upTo = rows.length < limit ? to : Number(rows[rows.length - 1].id);
      await c.query(`UPDATE meta SET v = GREATEST(v, ?) WHERE k = 'compacted'`, [upTo]);
      return { upTo, removed };
    });
    return out!;
  }

  async size(): Promise<number> {
    const rows = await this.rows<{ bytes: string | null }>(
      `SELECT SUM(data_length + index_length) AS bytes FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name IN ('kv', 'meta')`, [], 'read');
    return Number(rows[0]?.bytes ?? 0);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.pool?.end().catch(() => {});
    this.pool = undefined;
  }
}
