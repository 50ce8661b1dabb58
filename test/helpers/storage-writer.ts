// Child process for the durability test: creates keys forever, many in flight at once, and prints
// each key on stdout the moment its create is acknowledged. The test kills it with SIGKILL.
import { SqliteBackend } from '../../src/storage/sqlite.js';

const backend = new SqliteBackend(process.argv[2]);
await backend.start();
// Many writers and sizeable values make each group commit take a while, so the kill usually lands
// inside one: the moment an early acknowledgement would show up as a lost key.
const padding = 'x'.repeat(2048);
let next = 0;
async function writer(): Promise<never> {
  for (;;) {
    const key = `/core/configmaps/default/k${next++}`;
    await backend.create(key, JSON.stringify({ metadata: { name: key }, data: { padding } }));
    process.stdout.write(key + '\n');
  }
}
await Promise.all(Array.from({ length: 64 }, writer));
