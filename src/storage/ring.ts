// A fixed-capacity ring of one resource's recent watch events, oldest first. It knows the revision
// after which it is complete (`completeAfter`), which is what decides between replaying a watch and
// answering "too old resource version".
//
// A watch of one index value (every kubelet's `spec.nodeName=<self>` pod watch) replays from an
// index of the ring's events by that value instead of scanning the whole ring: after a server
// restart 5,000 nodes resume their pod watches at once, and scanning a 10,000-event ring for each
// took six seconds of the server's one thread.
import type { WatchEvent } from './types.js';

type Extract = (obj: Readonly<Record<string, any>>) => string | undefined;

interface RingIndex {
  extract: Extract;
  /** Sequence numbers (see `pushed`) of the events whose object or previous object has the value, ascending. */
  byValue: Map<string, number[]>;
}

export class EventRing {
  private readonly buf: WatchEvent[] = [];
  private head = 0;
  /** Events ever pushed: the event at position i has sequence number pushed - size + i. */
  private pushed = 0;
  private readonly indexes = new Map<string, RingIndex>();

  /** @param completeAfter every event of this resource with a revision above this is in the ring */
  constructor(readonly capacity: number, public completeAfter: number) {}

  get size(): number {
    return this.buf.length;
  }

  push(e: WatchEvent): void {
    if (this.buf.length < this.capacity) {
      this.buf.push(e);
    } else {
      this.completeAfter = this.buf[this.head].revision;
      this.buf[this.head] = e;
      this.head = (this.head + 1) % this.capacity;
    }
    const seq = this.pushed++;
    if (this.indexes.size === 0) return;
    for (const ix of this.indexes.values()) addToIndex(ix, e, seq);
    // Once per ring's worth of events, entries of events that left the ring go (values too).
    if (seq % this.capacity === 0) this.sweep();
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

  /**
   * The events after `revision` whose object or previous object has `value` under the index `name`
   * (built from the ring on first use, then kept as events arrive), oldest first.
   */
  eventsWith(name: string, extract: Extract, value: string, revision: number): WatchEvent[] {
    let ix = this.indexes.get(name);
    if (!ix) {
      this.indexes.set(name, ix = { extract, byValue: new Map() });
      const first = this.pushed - this.buf.length;
      for (let i = 0; i < this.buf.length; i++) addToIndex(ix, this.at(i), first + i);
    }
    const seqs = ix.byValue.get(value);
    if (!seqs) return [];
    const first = this.pushed - this.buf.length;
    const start = first + this.firstAfter(revision);
    let lo = 0;
    let hi = seqs.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (seqs[mid]! < start) lo = mid + 1;
      else hi = mid;
    }
    const out: WatchEvent[] = [];
    for (let k = lo; k < seqs.length; k++) out.push(this.at(seqs[k]! - first));
    return out;
  }

  private sweep(): void {
    const first = this.pushed - this.buf.length;
    for (const ix of this.indexes.values()) {
      for (const [value, seqs] of ix.byValue) {
        let n = 0;
        while (n < seqs.length && seqs[n]! < first) n++;
        if (n === seqs.length) ix.byValue.delete(value);
        else if (n > 0) seqs.splice(0, n);
      }
    }
  }
}

function addToIndex(ix: RingIndex, e: WatchEvent, seq: number): void {
  const add = (v: string | undefined) => {
    if (v === undefined) return;
    const seqs = ix.byValue.get(v);
    if (seqs) seqs.push(seq);
    else ix.byValue.set(v, [seq]);
  };
  const a = ix.extract(e.object.obj);
  add(a);
  if (e.prevObject !== undefined) {
    const b = ix.extract(e.prevObject.obj);
    if (b !== a) add(b);
  }
}
