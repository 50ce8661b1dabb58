// The watch cache's ring and its per-value index (src/storage/ring.ts): what an indexed replay
// returns must be exactly what a scan of the ring filtered by the value returns, through evictions,
// for values on the object and on its previous state.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventRing } from '../../src/storage/ring.js';
import type { StoredObject, WatchEvent } from '../../src/storage/types.js';

const extract = (o: Readonly<Record<string, any>>): string => o.spec?.nodeName ?? '';

function event(revision: number, node: string, prevNode?: string): WatchEvent {
  const obj = (n: string) => ({ key: `/core/pods/ns/p${revision % 7}`, obj: { spec: { nodeName: n } }, modRevision: revision }) as unknown as StoredObject;
  return { type: prevNode === undefined ? 'ADDED' : 'MODIFIED', object: obj(node), revision, ...(prevNode === undefined ? {} : { prevObject: obj(prevNode) }) };
}

function scan(ring: EventRing, value: string, after: number): number[] {
  const out: number[] = [];
  for (let i = ring.firstAfter(after); i < ring.size; i++) {
    const e = ring.at(i);
    if (extract(e.object.obj) === value || (e.prevObject && extract(e.prevObject.obj) === value)) out.push(e.revision);
  }
  return out;
}

test('an indexed replay returns what a filtered scan of the ring returns, through evictions', () => {
  const ring = new EventRing(50, 0);
  const nodes = ['a', 'b', 'c', ''];
  let seed = 7;
  const rand = (n: number) => { seed = (seed * 1103515245 + 12345) % 2 ** 31; return seed % n; };
  for (let rev = 1; rev <= 400; rev++) {
    // Built on first use part-way through, then kept up as events arrive and leave.
    if (rev === 30) assert.deepEqual(ring.eventsWith('spec.nodeName', extract, 'a', 0).map((e) => e.revision), scan(ring, 'a', 0));
    const moved = rand(3) === 0;
    ring.push(event(rev, nodes[rand(4)]!, moved ? nodes[rand(4)] : undefined));
    if (rev % 17 === 0) {
      for (const v of [...nodes, 'nobody']) {
        for (const after of [0, rev - 60, rev - 20, rev - 1, rev]) {
          assert.deepEqual(ring.eventsWith('spec.nodeName', extract, v, after).map((e) => e.revision), scan(ring, v, after), `value ${v} after ${after} at ${rev}`);
        }
      }
    }
  }
  assert.equal(ring.size, 50);
  assert.equal(ring.completeAfter, 350);
});
