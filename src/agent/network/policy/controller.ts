// NetworkPolicy enforcement in every agent (k3s embeds kube-router's netpol controller for this):
// informers for Pods, Namespaces and NetworkPolicies cluster-wide → a work queue → one reconcile per
// batch, written as one nftables transaction. A pod that comes, goes or changes labels is reconciled
// alone (set elements change); a policy or namespace-label change recomputes the whole table in
// memory, and the diff still writes only what differs.
//
// A new pod's isolation is in the kernel before its first container starts: the pod worker calls
// `admit(pod, ips)` right after CNI gave the sandbox its address, and that resolves once a
// transaction holding the pod has committed (see docs/network-policy.md).
//
// Nothing is programmed before the three informers have synced (a restarted agent would otherwise
// take rules away for policies it has not heard of yet); rules stay in the kernel while the agent is
// down, and the next start reads them back and writes only the difference.
import { writeFileSync } from 'node:fs';
import type { KObject } from '../../../api/object.js';
import { Informer } from '../../../client/informer.js';
import { Resources, type ApiClient, type ResourceRef } from '../../../client/types.js';
import { WorkQueue } from '../../../client/workqueue.js';
import { retryUntilDone, runBatchWorker } from '../../../client/batch-worker.js';
import { logger } from '../../../util/log.js';
import type { TableFragment } from '../proxy/nft-rules.js';
import { buildPolicyModel, namespaceLabels, nodeDnsPeer, podInfo, SetIndex, type PodInfo, type PolicyModel } from './model.js';
import { dispatchFragment, podFragment, policyFragment, staticFragment } from './nft-rules.js';
import { PolicyTableWriter, type PolicyWriterOptions } from './writer.js';
import { recordPolicyTable } from './cleanup.js';

const log = logger('network-policy');
type Obj = KObject & Record<string, any>;

export const NETWORK_POLICIES: ResourceRef = Object.freeze({ group: 'networking.k8s.io', version: 'v1', resource: 'networkpolicies' });

const ALL = '*';
const POD = 'pod/';
const STATIC_OWNER = '';
const DISPATCH_OWNER = '~dispatch';
const DNS_OWNER = '~dns';
const policyOwner = (k: string) => `policy/${k}`;
const podOwner = (k: string) => `pod/${k}`;

export interface NetworkPolicyOptions extends PolicyWriterOptions {
  client: ApiClient;
  nodeName: string;
  /** The node-local DNS server's address (pod bridge gateway): stands in for the kube-dns pods. */
  dnsAddress?: string;
  /** This node's pod CIDR on skiff's bridge: its addresses that are no admitted pod's receive nothing. */
  podCidr?: string;
  /** The agent's data dir: records where the table is, for `skiff killall`. */
  dataDir?: string;
}

export interface RunningNetworkPolicy {
  /** Resolves once the table matches the API for the first time. */
  ready: Promise<void>;
  /**
   * Resolves once the pod (with these IPs, which its status may not show yet) has its rules in the
   * kernel. The pod worker waits for it before starting containers.
   */
  admit(pod: Record<string, any>, ips: string[]): Promise<void>;
  /** Figures of the last batch (benchmark). */
  lastBatch(): { keys: number; full: boolean; ms: number; lines: number; nftMs: number };
  stop(): Promise<void>;
}

/** Bridged pod-to-pod traffic on one node must pass the IPv4 hooks, or same-node policies see nothing. */
function ensureBridgeNetfilter(): void {
  try { writeFileSync('/proc/sys/net/bridge/bridge-nf-call-iptables', '1'); } catch (err) {
    log.warn({ err: (err as Error).message }, 'could not set bridge-nf-call-iptables; policies will not see traffic between pods of one node');
  }
}

export function startNetworkPolicy(o: NetworkPolicyOptions): RunningNetworkPolicy {
  const writer = new PolicyTableWriter(o);
  const pods = new Informer<Obj>({ client: o.client, resource: Resources.pods });
  const namespaces = new Informer<Obj>({ client: o.client, resource: Resources.namespaces });
  const policies = new Informer<Obj>({ client: o.client, resource: NETWORK_POLICIES });
  const queue = new WorkQueue<string>();
  /** Local pods admitted before their status shows the IP: key → uid, IPs and the worker's copy. */
  const admitted = new Map<string, { uid: string; ips: string[]; pod: Record<string, any> }>();
  const waiters = new Map<string, (() => void)[]>();
  let index = new SetIndex();
  let models: PolicyModel[] = [];
  let last = { keys: 0, full: false, ms: 0, lines: 0, nftMs: 0 };

  pods.addHandlers({
    onAdd: (p) => queue.add(POD + key(p)),
    onUpdate: (_old, p) => queue.add(POD + key(p)),
    onDelete: (p) => {
      if (admitted.get(key(p))?.uid === p.metadata.uid) admitted.delete(key(p));
      queue.add(POD + key(p));
    },
  });
  namespaces.addHandlers({
    onAdd: () => queue.add(ALL),
    onUpdate: (a, b) => { if (JSON.stringify(a.metadata.labels ?? {}) !== JSON.stringify(b.metadata.labels ?? {})) queue.add(ALL); },
    onDelete: () => queue.add(ALL),
  });
  policies.addHandlers({ onAdd: () => queue.add(ALL), onUpdate: () => queue.add(ALL), onDelete: () => queue.add(ALL) });

  const nsLabels = (ns: string) => namespaceLabels(namespaces.get(ns), ns);

  const currentPod = (k: string): PodInfo | undefined => {
    const fromApi = pods.get(k);
    const a = admitted.get(k);
    if (a && (!fromApi || fromApi.metadata.uid !== a.uid)) return podInfo(a.pod, o.nodeName, a.ips);
    if (!fromApi) return undefined;
    const info = podInfo(fromApi, o.nodeName, a?.ips);
    // The status has caught up (a new sandbox's address may differ from the one the status still shows).
    if (a && a.ips.every((ip) => fromApi.status?.podIP === ip || (fromApi.status?.podIPs ?? []).some((x: any) => x?.ip === ip))) admitted.delete(k);
    return info;
  };

  const podFrag = (k: string): TableFragment | undefined => {
    const info = currentPod(k);
    if (!info) return undefined;
    const f = podFragment(info, index, nsLabels);
    return f.elements.size ? f : undefined;
  };

  /** Every owner's fragment, from scratch. */
  const everything = (): Map<string, TableFragment> => {
    index = new SetIndex();
    models = policies.list().map((np) => buildPolicyModel(np, index));
    const out = new Map<string, TableFragment>();
    out.set(STATIC_OWNER, staticFragment(o.podCidr));
    out.set(DISPATCH_OWNER, dispatchFragment(models));
    for (const m of models) out.set(policyOwner(m.key), policyFragment(m));
    for (const k of new Set([...pods.keys(), ...admitted.keys()])) {
      const f = podFrag(k);
      if (f) out.set(podOwner(k), f);
    }
    if (o.dnsAddress) {
      const f = podFragment(nodeDnsPeer(o.dnsAddress), index, nsLabels);
      if (f.elements.size) out.set(DNS_OWNER, f);
    }
    return out;
  };

  /**
   * Takes the admissions a batch answers: those waiting when it starts computing (a full batch covers
   * every pod; otherwise the batch's pods). One that arrives meanwhile waits for the next batch, since
   * its IP may have come after the pod's fragment was computed.
   */
  const takeWaiters = (keys: string[], full: boolean): Map<string, (() => void)[]> => {
    const out = new Map<string, (() => void)[]>();
    for (const k of full ? [...waiters.keys()] : keys.filter((x) => x.startsWith(POD)).map((x) => x.slice(POD.length))) {
      const list = waiters.get(k);
      if (list) { out.set(k, list); waiters.delete(k); }
    }
    return out;
  };

  // One transaction per batch: all of it applies or none (then every key is retried).
  const applyBatch = async (keys: string[]): Promise<string[]> => {
    const t0 = performance.now();
    const full = keys.includes(ALL);
    const answered = takeWaiters(keys, full);
    let ok = true;
    try {
      let changes: Map<string, TableFragment | undefined>;
      if (full) {
        const all = everything();
        changes = new Map<string, TableFragment | undefined>(all);
        for (const owner of writer.ownerKeys()) if (!all.has(owner)) changes.set(owner, undefined);
      } else {
        changes = new Map();
        for (const k of keys) changes.set(podOwner(k.slice(POD.length)), podFrag(k.slice(POD.length)));
      }
      await writer.apply(changes);
    } catch (err) {
      ok = false;
      log.warn({ err: (err as Error).message, keys: keys.length }, 'network policy batch failed; retrying');
    }
    for (const [k, list] of answered) {
      if (ok) for (const w of list) w();
      else waiters.set(k, [...list, ...(waiters.get(k) ?? [])]);   // the retry answers them
    }
    last = { keys: keys.length, full, ms: Math.round(performance.now() - t0), lines: writer.lastStats.lines, nftMs: writer.lastStats.ms };
    log.debug({ ...last, ok }, 'network policy batch');
    return ok ? [] : keys;
  };

  let loopDone: Promise<void> | undefined;
  pods.start();
  namespaces.start();
  policies.start();
  const ready = (async () => {
    ensureBridgeNetfilter();
    if (o.dataDir) recordPolicyTable(o.dataDir, writer.table);
    await Promise.all([pods.waitForSync(), namespaces.waitForSync(), policies.waitForSync()]);
    const initialized = await retryUntilDone(async () => {
      const t0 = performance.now();
      await writer.init(everything());
      last = { keys: 0, full: true, ms: Math.round(performance.now() - t0), lines: writer.lastStats.lines, nftMs: writer.lastStats.ms };
    }, () => queue.isShutDown(), (err, attempt) => log.warn({ err: (err as Error).message, attempt }, 'network policy table not reconciled; retrying'));
    if (!initialized) return;
    log.info({ policies: models.length, sets: index.sets.size }, 'network policy enforcement ready');
    loopDone = runBatchWorker(queue, applyBatch,
      (err, keys) => log.warn({ err: (err as Error).message, keys: keys.length }, 'network policy batch failed; retrying'));
  })();
  ready.catch((err: unknown) => log.error({ err: (err as Error).message }, 'network policy enforcement did not start'));

  return {
    ready,
    admit(pod, ips) {
      if (pod.spec?.hostNetwork) return Promise.resolve();
      const k = `${pod.metadata?.namespace}/${pod.metadata?.name}`;
      admitted.set(k, { uid: String(pod.metadata.uid), ips, pod });
      return new Promise<void>((resolve) => {
        const list = waiters.get(k) ?? [];
        list.push(resolve);
        waiters.set(k, list);
        queue.add(POD + k);
      });
    },
    lastBatch: () => last,
    async stop() {
      queue.shutDown();
      await Promise.all([pods.stop(), namespaces.stop(), policies.stop()]);
      await ready.catch(() => undefined);
      await loopDone;
      writer.close();
    },
  };
}

function key(o: KObject): string {
  return `${o.metadata.namespace}/${o.metadata.name}`;
}
