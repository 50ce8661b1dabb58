// The storage conformance suite against a real MariaDB (Debian's mariadbd, started here with its
// own data dir, port and socket; removed afterwards). One database per test, created by the driver.
import { after, before } from 'node:test';
import { LogBackend } from '../../src/storage/log.js';
import { MysqlDriver } from '../../src/storage/mysql.js';
import { storageConformance } from '../helpers/storage-conformance.js';
import { startMariadb, type MariadbServer } from '../helpers/mariadb-server.js';

let server: MariadbServer;
let n = 0;
before(async () => { server = await startMariadb(); });
after(async () => { await server?.destroy(); });

storageConformance({
  name: 'mariadb',
  shared: true,
  fresh: async () => server.url(`conformance_${process.pid}_${++n}`),
  open: async (t, url, opts) => {
    const b = new LogBackend(new MysqlDriver(url), { pollIntervalMs: 250, ...opts });
    t.after(() => b.close());
    await b.start();
    return b;
  },
});
