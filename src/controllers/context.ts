// What every control loop gets: an API client (in-process for the server's own loops), the shared
// informers, an event recorder, and the tunables. Loops talk to the API only through `client`, so any
// of them could move out of process unchanged. A started loop is a `RunningController`
// (client/controller.ts), which is what runController returns.
import type { ApiClient } from '../client/types.js';
import type { InformerFactory } from '../client/informer-factory.js';
import type { EventRecorder } from '../client/events.js';

export interface ControllerTuning {
  /** Node lifecycle: a node whose Lease is not renewed for this long becomes Ready=Unknown (40 s). */
  nodeMonitorGracePeriodMs: number;
  /** Default tolerationSeconds for not-ready / unreachable taints added to pods by admission (300 s). */
  defaultNotReadyTolerationSeconds: number;
  defaultUnreachableTolerationSeconds: number;
  /** How often cluster-wide loops (node lifecycle, cron jobs) look again. */
  resyncMs: number;
}

export const DEFAULT_CONTROLLER_TUNING: ControllerTuning = {
  nodeMonitorGracePeriodMs: 40_000,
  defaultNotReadyTolerationSeconds: 300,
  defaultUnreachableTolerationSeconds: 300,
  resyncMs: 30_000,
};

export interface ControllerContext {
  client: ApiClient;
  informers: InformerFactory;
  events: EventRecorder;
  options: ControllerTuning;
}
