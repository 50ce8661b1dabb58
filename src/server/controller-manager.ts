// The server's controller manager: one in-process client, one set of shared informers, and every
// control loop started on them. Loops see the API exactly as an external client would (LocalClient
// applies the same REST semantics as HTTP), so any of them could run out of process.
import type { ObjectService } from '../apiserver/objects.js';
import { LocalClient } from '../apiserver/local-client.js';
import { InformerFactory } from '../client/informer-factory.js';
import { eventRecorder } from '../client/events.js';
import { DEFAULT_CONTROLLER_TUNING, type ControllerContext, type ControllerTuning } from '../controllers/context.js';
import type { RunningController } from '../client/controller.js';
import { logger } from '../util/log.js';

const log = logger('controller-manager');

export type ControllerStarter = (ctx: ControllerContext) => RunningController | RunningController[];

export interface ManagerOptions extends Partial<ControllerTuning> {
  /** Loop names to leave out (e.g. 'scheduler' for --disable-scheduler). */
  disabled?: string[];
}

export interface ControllerManager {
  /** True from when every enabled loop has started until stop() (the health checks ask). */
  running(): boolean;
  /** The shared informers that have not synced yet. */
  unsyncedInformers(): string[];
  stop(): Promise<void>;
}

export function startControllerManager(objects: ObjectService, starters: Record<string, ControllerStarter>,
  opts: ManagerOptions = {}): ControllerManager {
  const client = new LocalClient(objects, { user: 'system:kube-controller-manager', groups: ['system:masters'], manager: 'kube-controller-manager' });
  const informers = new InformerFactory(client);
  const { disabled = [], ...timing } = opts;
  const ctx: ControllerContext = {
    client, informers, events: eventRecorder(client, 'skiff-controller-manager'),
    options: { ...DEFAULT_CONTROLLER_TUNING, ...timing },
  };
  const running: RunningController[] = [];
  for (const [name, start] of Object.entries(starters)) {
    if (disabled.includes(name)) { log.info({ controller: name }, 'disabled'); continue; }
    const r = start(ctx);
    running.push(...(Array.isArray(r) ? r : [r]));
  }
  informers.start();
  log.info({ controllers: running.map((r) => r.name) }, 'control loops started');
  let stopping = false;
  return {
    running: () => !stopping,
    unsyncedInformers: () => informers.unsynced(),
    async stop() {
      stopping = true;
      await Promise.all(running.map((r) => r.stop().catch(() => undefined)));
      await informers.stop();
      client.close();
    },
  };
}
