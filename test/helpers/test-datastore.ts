// The datastore switch for end-to-end servers (issue 13): with SKIFF_TEST_DATASTORE set, every server
// that startServer (cluster.ts) starts runs on that backend instead of SQLite, so the API-semantics
// suites can be run unchanged on each one (scripts/test-datastores.sh).
//   postgres, mariadb   one database process per test process, started at the first server and
//                       stopped when the file ends; every server gets a database of its own (skiff
//                       creates a missing database), named after this process and a counter;
//   etcd                one etcd per server (skiff has no key-prefix flag, so two servers on one etcd
//                       would share their objects), stopped with the server;
//   embedded-etcd       the server the test gets runs --cluster-init, and two more servers join it
//                       (own ports and data dirs); they are disposed with it. The test talks to the first.
// A server whose test chose a datastore or cluster role itself (--datastore-endpoint, --cluster-init,
// --server) is left alone. Unset (or `sqlite`): nothing here runs.
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPostgres, startMariadb, startEtcd, freePort, type PostgresServer, type MariadbServer, type EtcdServer } from './datastores.js';

export const TEST_DATASTORES = ['postgres', 'mariadb', 'etcd', 'embedded-etcd'] as const;
export type TestDatastore = typeof TEST_DATASTORES[number];

/** The backend chosen by SKIFF_TEST_DATASTORE; undefined for SQLite. An unknown name is an error, not SQLite. */
export function testDatastore(): TestDatastore | undefined {
  const v = process.env.SKIFF_TEST_DATASTORE ?? '';
  if (v === '' || v === 'sqlite') return undefined;
  if (!(TEST_DATASTORES as readonly string[]).includes(v)) {
    throw new Error(`SKIFF_TEST_DATASTORE=${v}: expected one of ${TEST_DATASTORES.join(', ')} (or unset for SQLite)`);
  }
  return v as TestDatastore;
}

const OWN_CHOICE = ['--datastore-endpoint', '--cluster-init', '--server'];

/** True when the server's flags already pick its datastore or cluster role: the switch leaves it alone. */
export function choosesOwnDatastore(args: readonly string[]): boolean {
  return args.some((a) => OWN_CHOICE.some((f) => a === f || a.startsWith(`${f}=`)));
}

/** What the switch adds to one server: flags, and what to stop after the server stopped. */
export interface DatastorePlan {
  args: string[];
  dispose?: () => Promise<void>;
}

let postgres: Promise<PostgresServer> | undefined;
let mariadb: Promise<MariadbServer> | undefined;
const etcds = new Set<EtcdServer>();
let counter = 0;
// A data dir started again (startServer with `dataDir`) must find its objects: same flags as before.
const plans = new Map<string, DatastorePlan>();

/** Flags for a server on `dataDir` on `kind` (not for embedded-etcd's own flags: see embeddedEtcdArgs). */
export async function planDatastore(kind: Exclude<TestDatastore, 'embedded-etcd'>, dataDir: string): Promise<DatastorePlan> {
  const known = plans.get(dataDir);
  if (known) return known;
  const db = `skiff_t${process.pid}_${++counter}`;
  let plan: DatastorePlan;
  if (kind === 'postgres') {
    postgres ??= startPostgres().catch((err) => { postgres = undefined; throw err; });
    plan = { args: ['--datastore-endpoint', (await postgres).url(db)] };
  } else if (kind === 'mariadb') {
    mariadb ??= startMariadb().catch((err) => { mariadb = undefined; throw err; });
    plan = { args: ['--datastore-endpoint', (await mariadb).url(db)] };
  } else {
    const etcd = await startEtcd();
    etcds.add(etcd);
    plan = {
      args: ['--datastore-endpoint', etcd.url],
      dispose: async () => { etcds.delete(etcd); plans.delete(dataDir); await etcd.destroy(); },
    };
  }
  plans.set(dataDir, plan);
  return plan;
}

/** Embedded etcd flags for one server on loopback: free client and peer ports. */
export async function embeddedEtcdArgs(): Promise<string[]> {
  return ['--etcd-client-port', String(await freePort()), '--etcd-peer-port', String(await freePort()), '--node-ip', '127.0.0.1'];
}

/** The flags of a server that joins another: the test's own flags minus any --token (the joiner gets the cluster's). */
export function joinerArgs(args: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === '--token') { i++; continue; }
    if (args[i]!.startsWith('--token=')) continue;
    out.push(args[i]!);
  }
  return out;
}

/** Stops the shared database processes (after every server is gone); a later server starts them again. */
export async function stopTestDatastores(): Promise<void> {
  const [pg, maria] = [postgres, mariadb];
  postgres = undefined;
  mariadb = undefined;
  plans.clear();
  await Promise.all([
    pg?.then((s) => s.destroy(), () => {}),
    maria?.then((s) => s.destroy(), () => {}),
    ...[...etcds].map((e) => e.destroy()),
  ]);
  etcds.clear();
}

// Last resort when the runner exits without its after hooks: kill what the switch started, hard and
// synchronously, from the pid files in this process's own datastore dirs, and remove those dirs.
process.on('exit', () => {
  if ((process.env.SKIFF_TEST_DATASTORE ?? '') === '' && etcds.size === 0) return;
  for (const e of etcds) e.proc.child?.kill('SIGKILL');
  const tmp = tmpdir();
  let names: string[] = [];
  try { names = readdirSync(tmp); } catch { return; }
  for (const name of names) {
    const dir = join(tmp, name);
    let pidFile: string | undefined;
    if (name.startsWith(`skiff-pg-${process.pid}-`)) pidFile = join(dir, 'data', 'postmaster.pid');
    else if (name.startsWith(`skiff-maria-${process.pid}-`)) pidFile = join(dir, 'mysqld.pid');
    else if (!name.startsWith(`skiff-etcd-${process.pid}-`)) continue;
    if (pidFile && existsSync(pidFile)) {
      const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
      if (pid > 0) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
    }
    rmSync(dir, { recursive: true, force: true });
  }
});
