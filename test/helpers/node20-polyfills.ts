// @kubernetes/client-node 2.x depends on undici 8, which declares Node >= 22.19 and touches three
// Node 22 features while loading or fetching. skiff targets Node 20, so the client-node suites fill
// them in before the library loads (see client-node.ts). Only what undici needs at load time or on
// plain HTTPS requests is provided; zstd responses stay unsupported (the API server never sends them).
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const zlib = require('node:zlib') as Record<string, unknown>;
const workerThreads = require('node:worker_threads') as Record<string, unknown>;

if (typeof zlib.createZstdDecompress !== 'function') {
  zlib.createZstdDecompress = () => { throw new Error('zstd decompression needs Node >= 22.15'); };
}
if (typeof workerThreads.markAsUncloneable !== 'function') {
  // Only marks objects as not transferable between workers; nothing here posts them to a worker.
  workerThreads.markAsUncloneable = () => {};
}
const P = Promise as unknown as { withResolvers?: unknown };
if (typeof P.withResolvers !== 'function') {
  P.withResolvers = function withResolvers<T>() {
    let resolve!: (v: T) => void;
    let reject!: (e: unknown) => void;
    const promise = new Promise<T>((a, b) => { resolve = a; reject = b; });
    return { promise, resolve, reject };
  };
}
