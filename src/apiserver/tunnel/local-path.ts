// The server's side of reclaiming a local-path volume: the directory lives on one node, so that
// node's agent removes it, asked through its tunnel (k3s's provisioner runs a helper pod there
// instead; the tunnel needs no image and works on an air-gapped node).
import type { TunnelServer } from './registry.js';

/** Resolves once the agent has removed `path`; rejects when it cannot be reached or refuses. */
export async function removeLocalPath(tunnels: TunnelServer, node: string, path: string): Promise<void> {
  const stream = await tunnels.open(node, { op: 'remove-local-path', path });
  await new Promise<void>((resolve, reject) => {
    stream.once('error', reject);
    stream.once('end', resolve);
    stream.resume();
  });
}
