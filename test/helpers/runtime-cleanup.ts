// Best-effort CRI cleanup for runtime tests: stops and removes the containers and sandboxes a test
// labelled, through CRI (which also runs CNI DEL, releasing IPs and veths). A teardownRuntime() after
// it does the rest the hard way when containerd is already gone.
import type { CriClient } from '../../src/agent/runtime/cri-client.js';

export async function removeLabelled(cri: CriClient | undefined, label: string, value: string): Promise<void> {
  if (!cri) return;
  try {
    for (const c of await cri.listContainers({ labelSelector: { [label]: value } })) {
      await cri.stopContainer(c.id, 0).catch(() => undefined);
      await cri.removeContainer(c.id).catch(() => undefined);
    }
    for (const s of await cri.listPodSandbox({ labelSelector: { [label]: value } })) {
      await cri.stopPodSandbox(s.id).catch(() => undefined);
      await cri.removePodSandbox(s.id).catch(() => undefined);
    }
  } catch {
    // containerd is gone: the caller's teardown does it the hard way
  }
}
