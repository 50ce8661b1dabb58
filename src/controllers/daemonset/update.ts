// The RollingUpdate strategy's step (rollingUpdate in pkg/controller/daemon/update.go): which old
// pods go and which nodes get a new pod now, from the pods on each node. No I/O.
import type { KObject } from '../../api/object.js';
import type { Eligibility } from './nodes.js';
import { isPodAvailable } from '../../api/pod.js';


/**
 * Which old pods to delete and which nodes get a new pod now (rollingUpdate in update.go). Without
 * surge, old pods go while fewer than maxUnavailable daemons are unavailable (unavailable old ones
 * first, as they cost nothing); with surge, new pods start beside at most maxSurge available old ones
 * and an old pod goes as soon as its replacement is available.
 */
export function rollingUpdate(byNode: Map<string, KObject[]>, verdicts: Map<string, Eligibility>, isUpdated: (p: KObject) => boolean,
  maxSurge: number, maxUnavailable: number, minReady: number, t: number): { deletes: string[]; creates: string[] } {
  const deletes: string[] = [];
  const creates: string[] = [];
  const available = (p: KObject) => isPodAvailable(p, minReady, t);
  if (maxSurge === 0) {
    let unavailable = 0;
    const candidates: string[] = [];
    for (const [node, pods] of byNode) {
      if (!verdicts.get(node)?.shouldRun) continue;
      const split = splitPods(pods, isUpdated);
      if (!split) { unavailable++; continue; }
      const { newPod, oldPod } = split;
      if ((!oldPod && !newPod) || (oldPod && newPod)) { unavailable++; continue; }
      if (newPod) { if (!available(newPod)) unavailable++; continue; }
      if (!available(oldPod!)) deletes.push(String(oldPod!.metadata.name));
      else if (unavailable < maxUnavailable) candidates.push(String(oldPod!.metadata.name));
    }
    const room = Math.max(0, Math.min(maxUnavailable - unavailable, candidates.length));
    deletes.push(...candidates.slice(0, room));
    return { deletes, creates };
  }
  let surging = 0;
  const candidates: string[] = [];
  for (const [node, pods] of byNode) {
    const split = splitPods(pods, isUpdated);
    if (!split) continue;
    const { newPod, oldPod } = split;
    if (!oldPod) continue;
    const shouldRun = verdicts.get(node)?.shouldRun === true;
    if (!newPod) {
      if (!available(oldPod)) {
        if (!shouldRun) deletes.push(String(oldPod.metadata.name));
        else creates.push(node);
      } else if (!shouldRun) {
        deletes.push(String(oldPod.metadata.name));
      } else if (surging < maxSurge) {
        candidates.push(node);
      }
      continue;
    }
    if (!available(newPod)) { surging++; continue; }
    deletes.push(String(oldPod.metadata.name));
  }
  const room = Math.max(0, Math.min(maxSurge - surging, candidates.length));
  creates.push(...candidates.slice(0, room));
  return { deletes, creates };
}

/** The one new and one old pod on a node, or undefined when there are more (the manage pass prunes them first). */
function splitPods(pods: KObject[], isUpdated: (p: KObject) => boolean): { newPod?: KObject; oldPod?: KObject } | undefined {
  let newPod: KObject | undefined;
  let oldPod: KObject | undefined;
  for (const p of pods) {
    if (p.metadata.deletionTimestamp) continue;
    if (isUpdated(p)) { if (newPod) return undefined; newPod = p; }
    else { if (oldPod) return undefined; oldPod = p; }
  }
  return { newPod, oldPod };
}
