// The datastore holds every Secret: state.db, its WAL and shared-memory files are owner-only
// (issue 11: they were 0644).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync, existsSync } from 'node:fs';
import { dbFile, openBackend } from '../helpers/storage-temp.js';

test('state.db, -wal and -shm are mode 0600', async (t) => {
  const file = dbFile(t);
  const b = await openBackend(t, file);
  await b.create('/core/configmaps/default/a', '{"v":1}');
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    assert.ok(existsSync(f), `${f} exists`);
    assert.equal(statSync(f).mode & 0o777, 0o600, f);
  }
});
