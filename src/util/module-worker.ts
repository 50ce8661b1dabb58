// Starting a worker thread on one of skiff's own modules, built or from source.
import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * A worker running the module beside `from` named `name` (without extension): the built JavaScript
 * in a release; run from source (tests under tsx), a worker cannot load TypeScript by itself, so it
 * registers tsx's loader first.
 */
export function startModuleWorker(from: string, name: string, opts: WorkerOptions = {}): Worker {
  const fromSource = from.endsWith('.ts');
  const url = new URL(`./${name}${fromSource ? '.ts' : '.js'}`, from);
  if (!fromSource) return new Worker(url, opts);
  const boot = `import('tsx/esm/api').then((m) => m.register()).then(() => import(${JSON.stringify(url.href)}))`;
  return new Worker(boot, { ...opts, eval: true });
}
