// Writing a node's output to a client's WebSocket without buffering without bound: when the client
// reads slower than the node writes, the tunnel stream is paused, so its credit stops flowing back
// and the agent stops reading from the runtime (see protocol.ts).
import type { Readable } from 'node:stream';
import WebSocket from 'ws';

const HIGH_WATER_BYTES = 1024 * 1024;
const LOW_WATER_BYTES = 256 * 1024;

export interface Relay {
  /** Sends one binary message; dropped once the WebSocket is closing. */
  send(msg: Buffer): void;
}

export function relayBackpressure(ws: WebSocket, source: Readable): Relay {
  let queued = 0;
  let paused = false;
  return {
    send(msg) {
      if (ws.readyState !== WebSocket.OPEN) return;
      queued += msg.length;
      ws.send(msg, { binary: true }, () => {
        queued -= msg.length;
        if (paused && queued <= LOW_WATER_BYTES) {
          paused = false;
          source.resume();
        }
      });
      if (!paused && queued > HIGH_WATER_BYTES) {
        paused = true;
        source.pause();
      }
    },
  };
}
