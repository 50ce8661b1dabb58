// Node.js process metrics (prom-client's defaults) for a registry, with `process_open_fds` counted
// off the event loop. prom-client lists /proc/self/fd with readdirSync at every scrape: a server with
// 5,000 nodes holds over 10,000 sockets, and in a CPU profile of the scale benchmark's steady phase
// (scraped every 5 s) that listing was about 20 ms of each scrape's 30 ms on the server's thread.
// Here it runs on libuv's thread pool (bench/metrics-scrape.ts).
import { readdir } from 'node:fs/promises';
import { Gauge, collectDefaultMetrics, type Registry } from 'prom-client';

const OPEN_FDS = 'process_open_fds';

export function collectProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  if (!registry.getSingleMetric(OPEN_FDS)) return;   // not Linux: prom-client has none either
  registry.removeSingleMetric(OPEN_FDS);
  new Gauge({
    name: OPEN_FDS,
    help: 'Number of open file descriptors.',
    registers: [registry],
    async collect() {
      try {
        // Minus the descriptor the listing itself held open.
        this.set((await readdir('/proc/self/fd')).length - 1);
      } catch {
        // not countable here: the series keeps its last value
      }
    },
  });
}
