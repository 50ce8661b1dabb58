// Events as control loops and the kubelet record them (core/v1 Event, what `kubectl describe` shows).
// As client-go's event correlator, in its order:
// - a spam filter: each source may record 25 events about one object at once, then one per 5 minutes;
// - aggregation: after 10 different messages with the same reason about one object within 10 minutes,
//   the rest fold into one "(combined from similar events)" Event (a ReplicaSet creating 1,000 pods
//   makes 11 Events, not 1,000);
// - counting: repeats of the same reason and message update one Event's count.
// Writes run one at a time in the background, from a queue of at most 1,000 (client-go's
// broadcaster drops events beyond it): recording never blocks, and an event that cannot be written
// is dropped. A pod burst once left tens of thousands of queued writes holding their objects.
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
/** Different messages per reason and object before the rest are combined (client-go: 10). */
const AGGREGATE_MAX_MESSAGES = 10;
export const COMBINED_PREFIX = '(combined from similar events): ';
/** The spam filter's bucket per source and object: this many at once, then one per refill period (client-go: 25, 5 min). */
const SPAM_BURST = 25;
const SPAM_REFILL_MS = 5 * 60_000;
/** Events waiting to be written; more are dropped (client-go's maxQueuedEvents). */
const MAX_QUEUED = 1000;

/** A map that forgets its oldest entry beyond CACHE_SIZE. */
function remembered<V>(m: Map<string, V>, key: string, v: V): V {
  m.delete(key);
  m.set(key, v);
  if (m.size > CACHE_SIZE) m.delete(m.keys().next().value!);
  return v;
}

export type EventType = 'Normal' | 'Warning';

export interface EventRecorder {
  /** `involved` is the object the event is about; `fieldPath` names a part of it (a pod's container). */
  record(involved: KObject, type: EventType, reason: string, message: string, fieldPath?: string): void;
}

/** A recorder writing as `component` (source.component, reportingComponent), on `host` when given. */
export function eventRecorder(client: ApiClient, component: string, host?: string): EventRecorder {
  const recent = new Map<string, { name: string; namespace: string; count: number; at: number }>();
  const buckets = new Map<string, { tokens: number; at: number }>();
  const similar = new Map<string, { messages: Set<string>; at: number }>();
  const queue: (() => Promise<void>)[] = [];
  let dropped = 0;
  /** Whether the spam filter lets one more event about this object through (a token bucket). */
  const allowed = (objectKey: string, at: number): boolean => {
    const b = buckets.get(objectKey);
    const tokens = b ? Math.min(SPAM_BURST, b.tokens + (at - b.at) / SPAM_REFILL_MS) : SPAM_BURST;
    if (tokens < 1) { buckets.set(objectKey, { tokens, at }); return false; }
    remembered(buckets, objectKey, { tokens: tokens - 1, at });
    return true;
  };
  /** The message and fold key to record under: the event's own, or the combined one past the limit. */
  const aggregate = (aggregateKey: string, message: string, at: number): { message: string; combined: boolean } => {
    let r = similar.get(aggregateKey);
    if (!r || at - r.at >= AGGREGATE_WINDOW_MS) r = { messages: new Set(), at };
    r.at = at;
    remembered(similar, aggregateKey, r);
    r.messages.add(message);
    if (r.messages.size < AGGREGATE_MAX_MESSAGES) return { message, combined: false };
    r.messages.delete(message);   // the set stays at the limit, as client-go's
    return { message: COMBINED_PREFIX + message, combined: true };
  };
  const enqueue = (job: () => Promise<void>) => {
    if (queue.length >= MAX_QUEUED) {
      if (dropped++ % 1000 === 0) log.warn({ component, dropped }, 'event queue full: dropping events');
      return;
    }
    queue.push(job);
    if (!running) void drain();
  };
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
    return remembered(recent, key, { name, namespace: m.namespace || 'default', count: 1, at });
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
    record(involved, type, reason, given, fieldPath) {
      const m = involved.metadata;
      const at = Date.now();
      const objectKey = `${involved.apiVersion}|${involved.kind}|${m.namespace ?? ''}|${m.name}|${m.uid}`;
      if (!allowed(objectKey, at)) return;
      const { message, combined } = aggregate(`${objectKey}|${type}|${reason}`, given, at);
      // A combined Event is one per reason and object, whatever the message or part of the object.
      const key = combined ? `${objectKey}|${type}|${reason}|combined` : `${m.uid}|${fieldPath ?? ''}|${type}|${reason}|${message}`;
      const ts = rfc3339(at);
      const prev = recent.get(key);
      if (prev && at - prev.at < AGGREGATE_WINDOW_MS) {
        const count = ++prev.count;
        prev.at = at;
        enqueue(async () => {
          try {
            await client.patch(Resources.events, prev.namespace, prev.name, 'merge', { count, lastTimestamp: ts, ...(combined ? { message } : {}) });
          } catch (err) {
            // The Event expired or was deleted: start a new one.
            if (!isNotFound(err)) throw err;
            await create(involved, remember(involved, key, at), type, reason, message, combined ? undefined : fieldPath, ts);
          }
        });
      } else {
        const entry = remember(involved, key, at);
        enqueue(() => create(involved, { ...entry }, type, reason, message, combined ? undefined : fieldPath, ts));
      }
    },
  };
}
