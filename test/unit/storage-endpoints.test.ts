import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backendFor, SqliteBackend, type LogBackend } from '../../src/storage/index.js';
import { parsePostgresEndpoint } from '../../src/storage/postgres.js';
import { parseMysqlEndpoint } from '../../src/storage/mysql.js';
import { eventLastWrite } from '../../src/storage/event-ttl.js';
import { tempDir } from '../helpers/storage-temp.js';

test('postgres endpoints: k3s syntax, both schemes, database defaults to kubernetes, password never displayed', () => {
  const a = parsePostgresEndpoint('postgres://u:s3cret@db.example:6543/k8s?sslmode=disable');
  assert.equal(a.database, 'k8s');
  assert.equal(a.display, 'u@db.example:6543/k8s');
  const b = parsePostgresEndpoint('postgresql://u:p@10.0.0.1');
  assert.equal(b.database, 'kubernetes');
  assert.equal(b.display, 'u@10.0.0.1:5432/kubernetes');
  assert.throws(() => parsePostgresEndpoint('postgres://'), /invalid datastore endpoint/);
  assert.throws(() => parsePostgresEndpoint('postgres://u:hunter2@/db'), (e: Error) => /invalid datastore endpoint/.test(e.message) && !e.message.includes('hunter2'));
});

test('mysql endpoints: Go DSN tcp(host:port) as k3s, and plain host:port', () => {
  assert.deepEqual(parseMysqlEndpoint('mysql://root:pw@tcp(192.168.1.5:3307)/k3s'),
    { host: '192.168.1.5', port: 3307, user: 'root', password: 'pw', database: 'k3s', display: 'root@192.168.1.5:3307/k3s' });
  const b = parseMysqlEndpoint('mysql://skiff:p%40ss@db:3306/');
  assert.deepEqual([b.host, b.port, b.password, b.database], ['db', 3306, 'p@ss', 'kubernetes']);
  assert.equal(parseMysqlEndpoint('mysql://u@tcp([::1]:3306)/x').host, '::1');
  assert.throws(() => parseMysqlEndpoint('mysql://u:topsecret@tcp('), (e: Error) => /invalid datastore endpoint/.test(e.message) && !e.message.includes('topsecret'));
});

test('backendFor picks the driver by scheme and names what it cannot use', async (t) => {
  const dir = tempDir(t);
  assert.ok(await backendFor(dir, undefined) instanceof SqliteBackend);
  assert.ok(await backendFor(dir, 'sqlite') instanceof SqliteBackend);
  assert.equal(((await backendFor(dir, 'postgres://u:p@h/db')) as LogBackend).driver.name, 'postgres');
  assert.equal(((await backendFor(dir, 'mysql://u:p@tcp(h:3306)/db')) as LogBackend).driver.name, 'mysql');
  assert.equal((await backendFor(dir, 'https://10.0.0.1:2379,https://10.0.0.2:2379')).constructor.name, 'EtcdBackend');
  await assert.rejects(backendFor(dir, 'https://10.0.0.1:2379/v3'), /invalid etcd datastore endpoint .*a path or query is not allowed/);
  await assert.rejects(backendFor(dir, 'https://10.0.0.1:2379,http://b:2379'), /same scheme/);
  await assert.rejects(backendFor(dir, 'http://u:pw@h:2379'), (e: Error) => /credentials in the URL/.test(e.message) && !e.message.includes('pw'));
  await assert.rejects(backendFor(dir, 'http://h:2379', { tls: { caFile: '/nonexistent/ca.crt' } }), /--datastore-cafile \/nonexistent\/ca.crt: no such file/);
  await assert.rejects(backendFor(dir, 'https://h:2379', { tls: { certFile: '/etc/hostname' } }), /go together/);
  await assert.rejects(backendFor(dir, 'redis://u:pw@h'), (e: Error) => /invalid datastore endpoint "redis:\/\/u:\*\*\*@h"/.test(e.message));
});

test('an Event\'s last write is its newest timestamp', () => {
  assert.equal(eventLastWrite({ metadata: { creationTimestamp: '2026-01-01T00:00:00Z' }, lastTimestamp: '2026-01-01T01:00:00Z' }), Date.parse('2026-01-01T01:00:00Z'));
  assert.equal(eventLastWrite({ metadata: {}, eventTime: '2026-01-01T00:00:00.123456Z', series: { lastObservedTime: '2026-01-02T00:00:00.000000Z' } }), Date.parse('2026-01-02T00:00:00Z'));
  assert.equal(eventLastWrite({ metadata: {} }), undefined);
});
