// The storage conformance suite against a real PostgreSQL (Debian's, started here with its own data
// dir, port and socket dir; removed afterwards). One database per test, with a non-bytewise default collation.
import { after, before } from 'node:test';
import pg from 'pg';
import { LogBackend } from '../../src/storage/log.js';
import { PostgresDriver } from '../../src/storage/postgres.js';
import { storageConformance } from '../helpers/storage-conformance.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres-server.js';

let server: PostgresServer;
let n = 0;
before(async () => { server = await startPostgres(); });
after(async () => { await server?.destroy(); });

/**
 * A database whose default collation is ICU en-US (where 'B' < 'a-b' < 'a_b' is not byte order), so
 * the suite proves the key column's "C" collation rather than a C-locale cluster's default.
 */
async function freshDatabase(): Promise<string> {
  const name = `conformance_${process.pid}_${++n}`;
  const admin = new pg.Client({ connectionString: server.url('postgres') });
  await admin.connect();
  try {
    await admin.query(`CREATE DATABASE ${name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'`);
  } finally {
    await admin.end();
  }
  return server.url(name);
}

storageConformance({
  name: 'postgres',
  shared: true,
  fresh: freshDatabase,
  open: async (t, url, opts) => {
    // As the server runs it: LISTEN/NOTIFY, with a 1 s poll as the fallback.
    const b = new LogBackend(new PostgresDriver(url), { pollIntervalMs: 1000, ...opts });
    t.after(() => b.close());
    await b.start();
    return b;
  },
});
