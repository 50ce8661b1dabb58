// The storage conformance suite against a real etcd (Debian's etcd-server, started here with its own
// data dir and ports; removed afterwards). One etcd for the file; each test gets its own key prefix,
// and its revisions start after etcd's revision at that moment (etcd's revisions are skiff's).
import { after, before } from 'node:test';
import { Etcd3 } from 'etcd3';
import { EtcdBackend } from '../../src/storage/etcd.js';
import { storageConformance } from '../helpers/storage-conformance.js';
import { startEtcd, type EtcdServer } from '../helpers/datastores.js';

let server: EtcdServer;
let n = 0;
before(async () => { server = await startEtcd(); });
after(async () => {
  await server?.destroy();
  // Workaround, to be found and fixed: after every test has passed and etcd is gone, something of the
  // etcd3/grpc clients keeps this file's process alive, and the runner would wait for it forever.
  // The timer is unref'd: it only fires if something else still holds the event loop.
  setTimeout(() => {
    // What held it, for whoever hunts the cause (printed only when the workaround was needed).
    console.log(`# still alive 5 s after the last test; active resources: ${process.getActiveResourcesInfo().join(', ')}`);
    process.exit(process.exitCode ?? 0);
  }, 5000).unref();
});

storageConformance({
  name: 'etcd',
  shared: true,
  fresh: async () => JSON.stringify({ url: server.url, prefix: `/conformance-${process.pid}-${++n}` }),
  native: {
    base: async () => {
      const c = new Etcd3({ hosts: server.url });
      try {
        return Number((await c.kv.range({ key: Buffer.from('/'), count_only: true })).header.revision);
      } finally {
        c.close();
      }
    },
  },
  open: async (t, where) => {
    const { url, prefix } = JSON.parse(where) as { url: string; prefix: string };
    const b = new EtcdBackend({ endpoints: [url], prefix });
    t.after(() => b.close());
    await b.start();
    return b;
  },
});
