// Events as control loops and the kubelet record them (core/v1 Event, what `kubectl describe` shows).
// Repeats of the same reason and message about the same object within a window update one Event's
// count instead of creating another object, as client-go's event correlator does. Writes run one at a
// time in the background: recording an event never blocks, and one that cannot be written is dropped.
import { randomBytes } from 'node:crypto';
import type { KObject } from '../api/object.js';
import { isNotFound, Resources, type ApiClient } from './types.js';
import { rfc3339 } from '../util/time.js';
import { logger } from '../util/log.js';

const log = logger('events');
/** How long repeats fold into one Event (client-go's correlator keeps ten minutes). */
const AGGREGATE_WINDOW_MS = 10 * 60_000;
/** Events remembered for folding; the oldest is forgotten first. */
const CACHE_SIZE = 4096;

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  /** `involved` is the object the event is about; `fieldPath` names a part of it (a pod's container). */
  record(involved: KObject, type: EventType, reason: string, message: string, fieldPath?: string): void;
}

/** A recorder writing as `component` (source.component, reportingComponent), on `host` when given. */
export function eventRecorder(client: ApiClient, component: string, host?: string): EventRecorder {
  const recent = new Map<string, { name: string; namespace: string; count: number; at: number }>();
  const queue: (() => Promise<void>)[] = [];
  let running = false;
  let seq = 0;
  const drain = async () => {
    running = true;
    while (queue.length) {
      const job = queue.shift()!;
      try { await job(); } catch (err) { log.debug({ err: String(err) }, 'event not recorded'); }
    }
    running = false;
  };
  /** Remembers a new Event under `key` now (so repeats recorded before it is written fold into it) and returns its name. */
  const remember = (involved: KObject, key: string, at: number) => {
    const m = involved.metadata;
    // client-go names events <object>.<unix nanos in hex>; the sequence and random tail keep two from one millisecond apart.
    const name = `${m.name}.${(BigInt(at) * 1_000_000n + BigInt(seq++ % 1_000_000)).toString(16)}${randomBytes(2).toString('hex')}`;
    const entry = { name, namespace: m.namespace || 'default', count: 1, at };
    recent.delete(key);
    recent.set(key, entry);
    if (recent.size > CACHE_SIZE) recent.delete(recent.keys().next().value!);
    return entry;
  };
  const create = async (involved: KObject, entry: { name: string; namespace: string; count: number }, type: EventType, reason: string, message: string, fieldPath: string | undefined, ts: string) => {
    const m = involved.metadata;
    await client.create(Resources.events, entry.namespace, {
      apiVersion: 'v1', kind: 'Event',
      metadata: { name: entry.name, namespace: entry.namespace },
      involvedObject: {
        apiVersion: involved.apiVersion, kind: involved.kind, name: m.name, namespace: m.namespace, uid: m.uid,
        ...(m.resourceVersion ? { resourceVersion: m.resourceVersion } : {}), ...(fieldPath ? { fieldPath } : {}),
      },
      reason, message, type, count: entry.count,
      firstTimestamp: ts, lastTimestamp: ts,
      source: { component, ...(host ? { host } : {}) },
      reportingComponent: component, reportingInstance: host ?? '',
    } as KObject);
  };
  return {
    record(involved, type, reason, message, fieldPath) {
      const key = `${involved.metadata.uid}|${fieldPath ?? ''}|${type}|${reason}|${message}`;
      const at = Date.now();
      const ts = rfc3339(at);
      const prev = recent.get(key);
      if (prev && at - prev.at < AGGREGATE_WINDOW_MS) {
        const count = ++prev.count;
        prev.at = at;
        queue.push(async () => {
          try {
            await client.patch(Resources.events, prev.namespace, prev.name, 'merge', { count, lastTimestamp: ts });
          } catch (err) {
            // The Event expired or was deleted: start a new one.
            if (!isNotFound(err)) throw err;
            await create(involved, remember(involved, key, at), type, reason, message, fieldPath, ts);
          }
        });
      } else {
        const entry = remember(involved, key, at);
        queue.push(() => create(involved, { ...entry }, type, reason, message, fieldPath, ts));
      }
      if (!running) void drain();
    },
  };
}
