// The storage conformance suite on SQLite (the embedded default).
import { join } from 'node:path';
import { LogBackend } from '../../src/storage/log.js';
import { SqliteDriver } from '../../src/storage/sqlite.js';
import { storageConformance } from '../helpers/storage-conformance.js';
import { tempDir } from '../helpers/storage-temp.js';

storageConformance({
  name: 'sqlite',
  // One file shared by two backends works too (BEGIN IMMEDIATE serialises writers, polling finds
  // the other's rows), but skiff runs one server per SQLite file, so the suite does not ask for it.
  shared: false,
  fresh: async (t) => join(tempDir(t), 'state.db'),
  open: async (t, file, opts) => {
    const b = new LogBackend(new SqliteDriver(file), opts);
    t.after(() => b.close());
    await b.start();
    return b;
  },
});
