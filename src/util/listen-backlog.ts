// How many finished TCP handshakes a listening socket may hold before the server accepts them.
//
// Node passes 511 to listen(2). When 5,000 nodes reconnect at once after a server restart, that
// queue overflows: the kernel drops the clients' final ACKs (TcpExtListenOverflows), and each client
// waits out SYN retransmissions (1, 2, 4, … s) before it is let in, which delayed Lease renewals by
// up to 111 s in bench/scale.ts. Go's net package, and so kube-apiserver, asks for the kernel's own
// ceiling instead: net.core.somaxconn (4096 on current kernels). This does the same.
import { readFileSync } from 'node:fs';

const FALLBACK = 4096;

export function listenBacklog(): number {
  try {
    const n = Number.parseInt(readFileSync('/proc/sys/net/core/somaxconn', 'utf8').trim(), 10);
    return Number.isFinite(n) && n > 0 ? n : FALLBACK;
  } catch {
    return FALLBACK;
  }
}
