// A control-loop test environment: the real in-process API (test/helpers/local-api.ts) plus the
// ControllerContext loops are started with (shared informers, event recorder, short timings).
// Everything started through it is stopped when the test ends, pass or fail.
import type { TestContext } from 'node:test';
import { startLocalApi, type LocalApi } from './local-api.js';
import { InformerFactory } from '../../src/client/informer-factory.js';
import { eventRecorder } from '../../src/client/events.js';
import { DEFAULT_CONTROLLER_TUNING, type ControllerContext, type ControllerTuning } from '../../src/controllers/context.js';
import type { RunningController } from '../../src/client/controller.js';

export interface ControllerEnv {
  api: LocalApi;
  ctx: ControllerContext;
  /** Starts a loop (and the informers it asked for) and stops it when the test ends. */
  run(start: (ctx: ControllerContext) => RunningController): Promise<RunningController>;
}

export async function startControllerEnv(t: TestContext, options: Partial<ControllerTuning> = {},
  apiOpts: Parameters<typeof startLocalApi>[1] = {}): Promise<ControllerEnv> {
  const api = await startLocalApi(t, apiOpts);
  const informers = new InformerFactory(api.client);
  const ctx: ControllerContext = {
    client: api.client, informers, events: eventRecorder(api.client, 'test-controller'),
    options: { ...DEFAULT_CONTROLLER_TUNING, ...options },
  };
  t.after(() => informers.stop());
  return {
    api, ctx,
    async run(start) {
      const c = start(ctx);
      t.after(() => c.stop());
      informers.start();
      await informers.waitForSync(10_000);
      return c;
    },
  };
}

/** Polls until `fn` returns a truthy value (or throws after `timeoutMs`), for converging loops. */
export async function eventually<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) { last = e; }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
