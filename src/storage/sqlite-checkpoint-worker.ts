// The SQLite checkpointer's thread (sqlite-checkpointer.ts): its own connection to the database,
// copying the WAL's committed pages into the database file when asked. A PASSIVE checkpoint takes no
// lock a writer needs, so the server's connection goes on committing meanwhile.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

export interface CheckpointWorkerData { file: string }
/** To the worker: run a checkpoint, or close the connection and stop. */
export type ToCheckpointer = 'checkpoint' | 'close';
/** From the worker: a checkpoint's outcome (SQLite's WAL frames and those copied), or a failure. */
export type FromCheckpointer =
  | { op: 'checkpointed'; frames: number; copied: number }
  | { op: 'failed'; message: string }
  | { op: 'closed' };

const port = parentPort!;
const { file } = workerData as CheckpointWorkerData;
const db = new Database(file);
// What the server's connection uses: the checkpoint syncs the WAL before it copies and the database
// file after, so a copied page is on disk before the WAL may be reused.
db.pragma('synchronous = NORMAL');
const send = (m: FromCheckpointer) => port.postMessage(m);
/** Checkpoints per request at most. */
const MAX_ROUNDS = 8;

function checkpoint(): { frames: number; copied: number } {
  const [r] = db.pragma('wal_checkpoint(PASSIVE)') as { log: number; checkpointed: number }[];
  return { frames: r?.log ?? 0, copied: r?.checkpointed ?? 0 };
}

port.on('message', (m: ToCheckpointer) => {
  if (m === 'close') {
    db.close();
    send({ op: 'closed' });
    port.close();
    return;
  }
  try {
    // Again while the server's commits appended frames during the copy: the WAL starts over from its
    // beginning only once a checkpoint has copied all of it, and until then it keeps growing.
    let r = checkpoint();
    for (let i = 1; i < MAX_ROUNDS && r.copied < r.frames; i++) {
      const next = checkpoint();
      const progress = next.copied > r.copied || next.frames !== r.frames;
      r = next;
      if (!progress) break;   // a reader holds an older snapshot: the next request tries again
    }
    send({ op: 'checkpointed', ...r });
  } catch (err) {
    send({ op: 'failed', message: (err as Error).message });
  }
});
