// A fixed-capacity ring of one resource's recent watch events, oldest first. It knows the revision
// after which it is complete (`completeAfter`), which is what decides between replaying a watch and
// answering "too old resource version".
import type { WatchEvent } from './types.js';

export class EventRing {
  private readonly buf: WatchEvent[] = [];
  private head = 0;

  /** @param completeAfter every event of this resource with a revision above this is in the ring */
  constructor(readonly capacity: number, public completeAfter: number) {}

  get size(): number {
    return this.buf.length;
  }

  push(e: WatchEvent): void {
    if (this.buf.length < this.capacity) {
      this.buf.push(e);
      return;
    }
    this.completeAfter = this.buf[this.head].revision;
    this.buf[this.head] = e;
    this.head = (this.head + 1) % this.capacity;
  }

  at(i: number): WatchEvent {
    return this.buf[(this.head + i) % this.buf.length];
  }

  /** Index of the first event with revision > `revision` (size when none). */
  firstAfter(revision: number): number {
    let lo = 0;
    let hi = this.buf.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.at(mid).revision <= revision) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}
