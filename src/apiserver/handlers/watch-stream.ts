// A watch response's events, written in order and, when they come faster than the client reads,
// encoded only as its socket takes them.
//
// A watch can owe its client a great deal at once: the current state when it starts without a
// resourceVersion or with sendInitialEvents (50,000 pods are about 250 MB of JSON), or a long replay
// from the watch cache's ring when it resumes. Written at once, all of it sat encoded in the
// socket's buffer, and a watcher with 16 MB unread was dropped as too slow, so such a watch could
// never complete: its client listed and watched again, and again. Now a backlog is a queue of the
// stored objects themselves (shared with the cache and its rings, so a reference each), encoded a
// chunk at a time after the socket took the chunk before, as lists are (`sendListBody`). With no
// backlog, an event is written at once, as before.
import type { ServerResponse } from 'node:http';
import type { StoredObject } from '../../storage/types.js';
import { drained, LIST_CHUNK_CHARS } from '../http.js';

/**
 * Events (past the initial state) a watcher may owe before it is dropped as too slow: its client
 * lists and watches again. Four rings' worth at the default watch cache size, what a watch resuming
 * right after a restart may be replayed. A queued event holds a reference to an object the cache
 * mostly holds anyway; one that leaves the cache meanwhile is kept alive by the queue.
 */
export const MAX_QUEUED_EVENTS = 40_000;

interface Queued { type: string; o: StoredObject }

export interface WatchStreamOptions {
  /** Encodes one event line. Called in order, once per event, only when the line is about to be written. */
  encode: (type: string, o: StoredObject) => string;
  /** Called (once) when the client has fallen too far behind; the caller closes the watch. */
  tooSlow: () => void;
  maxQueued?: number;
}

export class WatchStream {
  private initial: readonly StoredObject[] = [];
  private next = 0;
  private queue: (Queued | string)[] = [];
  private head = 0;
  private pumping = false;
  private ending = false;
  private failed = false;
  private readonly maxQueued: number;

  constructor(private readonly res: ServerResponse, private readonly opts: WatchStreamOptions) {
    this.maxQueued = opts.maxQueued ?? MAX_QUEUED_EVENTS;
  }

  /** The current state, as ADDED events, before anything else sent after this. */
  initialEvents(items: readonly StoredObject[]): void {
    if (items.length === 0) return;
    this.initial = items;
    this.next = 0;
    this.pump();
  }

  event(type: string, o: StoredObject): void {
    if (this.idle()) this.writeNow(this.opts.encode(type, o));
    else this.enqueue({ type, o });
  }

  /** A line encoded already (a bookmark, an error), in order with the events. */
  line(text: string): void {
    if (this.idle()) this.writeNow(text);
    else this.enqueue(text);
  }

  /** Ends the response once everything owed is written. */
  end(): void {
    this.ending = true;
    if (this.idle()) this.res.end();
  }

  /** Events not yet encoded (the initial state's included). */
  get owed(): number {
    return this.initial.length - this.next + this.queue.length - this.head;
  }

  private idle(): boolean {
    return !this.pumping && this.owed === 0;
  }

  private writeNow(text: string): void {
    if (this.failed || this.res.destroyed) return;
    // The socket is full: what follows waits, and is encoded when the socket drains.
    if (!this.res.write(text)) this.pump();
  }

  private enqueue(e: Queued | string): void {
    if (this.failed) return;
    this.queue.push(e);
    if (this.queue.length - this.head > this.maxQueued) {
      this.failed = true;
      this.clear();
      this.opts.tooSlow();
    }
  }

  /** Forgets what was owed (all written, or the watcher dropped). */
  private clear(): void {
    this.initial = [];
    this.next = 0;
    this.queue = [];
    this.head = 0;
  }

  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void this.run();
  }

  private async run(): Promise<void> {
    const { res } = this;
    try {
      for (;;) {
        if (res.writableNeedDrain) await drained(res);
        if (res.destroyed || this.failed) return;
        let chunk = '';
        while (chunk.length < LIST_CHUNK_CHARS) {
          if (this.next < this.initial.length) {
            chunk += this.opts.encode('ADDED', this.initial[this.next++]!);
          } else if (this.head < this.queue.length) {
            const e = this.queue[this.head++]!;
            chunk += typeof e === 'string' ? e : this.opts.encode(e.type, e.o);
          } else {
            break;
          }
        }
        if (chunk === '') break;
        res.write(chunk);
      }
      this.clear();
      if (this.ending) res.end();
    } catch (err) {
      // An event that cannot be encoded: the stream cannot go on without a gap the client would not see.
      this.failed = true;
      res.destroy(err instanceof Error ? err : new Error(String(err)));
    } finally {
      this.pumping = false;
    }
  }
}
