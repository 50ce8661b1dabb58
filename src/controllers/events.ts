// Events as control loops record them (core/v1 Event, what `kubectl describe` shows). Repeats of the
// same reason and message on the same object within a short window update one Event's count instead of
// creating a new object, as client-go's event correlator does; writing events never blocks a loop.
import { randomBytes } from 'node:crypto';
import type { ApiClient } from '../client/types.js';
import { Resources } from '../client/types.js';
import type { KObject } from '../api/object.js';
import { logger } from '../util/log.js';

const log = logger('events');
const AGGREGATE_WINDOW_MS = 10 * 60_000;

export interface EventRecorder {
  /** `type` Normal or Warning; `involved` is the object the event is about. */
  record(involved: KObject, type: 'Normal' | 'Warning', reason: string, message: string): void;
}

export function eventRecorder(client: ApiClient, component: string, host?: string): EventRecorder {
  const recent = new Map<string, { name: string; namespace: string; count: number; at: number }>();
  const queue: (() => Promise<void>)[] = [];
  let running = false;
  const drain = async () => {
    running = true;
    while (queue.length) {
      const job = queue.shift()!;
      try { await job(); } catch (err) { log.debug({ err: String(err) }, 'event write failed'); }
    }
    running = false;
  };
  return {
    record(involved, type, reason, message) {
      const m = involved.metadata;
      const namespace = m.namespace || 'default';
      const key = `${m.uid}|${type}|${reason}|${message}`;
      const now = Date.now();
      const ts = new Date(now).toISOString().replace(/\.\d+Z$/, 'Z');
      const prev = recent.get(key);
      if (recent.size > 4096) recent.clear();
      if (prev && now - prev.at < AGGREGATE_WINDOW_MS) {
        prev.count++;
        prev.at = now;
        const count = prev.count;
        queue.push(async () => {
          await client.patch(Resources.events, prev.namespace, prev.name, 'merge', { count, lastTimestamp: ts });
        });
      } else {
        const name = `${m.name}.${randomBytes(8).toString('hex')}`;
        recent.set(key, { name, namespace, count: 1, at: now });
        queue.push(async () => {
          await client.create(Resources.events, namespace, {
            apiVersion: 'v1', kind: 'Event',
            metadata: { name, namespace },
            involvedObject: { apiVersion: involved.apiVersion, kind: involved.kind, name: m.name, namespace: m.namespace, uid: m.uid, resourceVersion: m.resourceVersion },
            reason, message, type, count: 1,
            firstTimestamp: ts, lastTimestamp: ts,
            source: { component, ...(host ? { host } : {}) },
            reportingComponent: component, reportingInstance: host ?? '',
          } as KObject);
        });
      }
      if (!running) void drain();
    },
  };
}
