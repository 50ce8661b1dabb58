// The rolling-upgrade controller (issue 14 item 5): Upgrades and Nodes → queue of plan names →
// reconcile. Each reconcile reads the plan's nodes from the cache, asks plan.ts what phase each is in
// and which to start, carries out the server's share (cordon, drain, handing the node its target in
// annotations, uncordon when done) and writes the plan's status. The node's own agent does the rest
// (src/agent/upgrade-executor.ts: download, checksum, swap, restart, health gate, rollback).
// Every plan carries the finalizer FINALIZER: deleting a plan, even in the middle of a run, first lets
// go of its nodes (letGoPatch), then lets the deletion finish. Nodes naming a plan that is gone (its
// finalizer removed by hand, or a plan older than the finalizer) are let go the same way.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { KObject } from '../../api/object.js';
import { isNotFound, Resources } from '../../client/types.js';
import { runController, type RunningController } from '../../client/controller.js';
import { WorkQueue } from '../../client/workqueue.js';
import type { ControllerContext } from '../context.js';
import { logger } from '../../util/log.js';
import { ANN, FINALIZER, UPGRADES, releaseFileName, type Upgrade, type UpgradeCondition, type UpgradeStatus } from './api.js';
import { display, letGoPatch, planStep, type PlanNode } from './plan.js';
import { findArtifact } from './artifacts.js';

const log = logger('upgrade-controller');

export interface UpgradeControllerOptions {
  /** The release dir (artifacts.ts). */
  releaseDir: string;
  /**
   * A release the release dir lacks is fetched from the other servers (artifacts.ts fetchFromPeers):
   * resolves with why not when none has it. Absent: the local dir only.
   */
  fetchMissing?: (file: string) => Promise<unknown>;
  /** Clock (tests). */
  now?: () => number;
}

type Node = KObject & { spec?: { unschedulable?: boolean }; status?: { conditions?: { type: string; status: string }[] } };
type Pod = KObject & { spec?: { nodeName?: string; volumes?: { emptyDir?: unknown }[] }; status?: { phase?: string } };

const isReady = (n: Node) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const archOf = (n: KObject) => n.metadata.labels?.['kubernetes.io/arch'] ?? 'amd64';

export function startUpgradeController(ctx: ControllerContext, o: UpgradeControllerOptions): RunningController {
  const now = o.now ?? Date.now;
  const plans = ctx.informers.informerFor<Upgrade>(UPGRADES);
  const nodes = ctx.informers.informerFor<Node>(Resources.nodes);
  const pods = ctx.informers.informerFor<Pod>(Resources.pods);
  const queue = new WorkQueue<string>();
  const enqueuePlan = (p: KObject) => queue.add(p.metadata.name!);
  plans.addHandlers({ onAdd: enqueuePlan, onUpdate: (_o, p) => enqueuePlan(p) });
  // Any node change may move a plan on (a node back Ready, an agent's report).
  const enqueueAllPlans = () => { for (const p of plans.list()) queue.add(p.metadata.name!); };
  // A node naming a plan that is gone is queued under that name too: its reconcile lets go of it.
  const enqueueFor = (n: KObject) => {
    enqueueAllPlans();
    const held = n.metadata.annotations?.[ANN.plan];
    if (held && !plans.getByName(undefined, held)) queue.add(held);
  };
  nodes.addHandlers({ onAdd: enqueueFor, onUpdate: (_o, n) => enqueueFor(n), onDelete: enqueueAllPlans });

  const patchNode = (name: string, body: unknown) => ctx.client.patch(Resources.nodes, undefined, name, 'merge', body);

  /** Cordon/drain as asked, then the target: true once the node has its target. */
  async function startNode(plan: Upgrade, node: Node, artifact: { file: string; sha256: string }): Promise<boolean> {
    const name = node.metadata.name!;
    const spec = plan.spec;
    const ann = node.metadata.annotations ?? {};
    if (ann[ANN.plan] !== plan.metadata.name) {
      await patchNode(name, { metadata: { annotations: { [ANN.plan]: plan.metadata.name } } });
      log.info({ plan: plan.metadata.name, node: name, version: spec.version }, 'starting node');
    }
    if ((spec.cordon || spec.drain) && !ann[ANN.cordoned]) {
      // Only a node this plan made unschedulable is made schedulable again afterwards.
      const already = node.spec?.unschedulable === true;
      await patchNode(name, { metadata: { annotations: { [ANN.cordoned]: already ? 'already' : 'true' } }, spec: { unschedulable: true } });
    }
    if (spec.drain && !(await drained(name, plan))) return false;
    await patchNode(name, { metadata: { annotations: {
      [ANN.targetVersion]: spec.version, [ANN.targetFile]: artifact.file, [ANN.targetSha256]: artifact.sha256,
      [ANN.healthTimeout]: String(spec.healthTimeoutSeconds ?? 180), [ANN.targetTime]: new Date(now()).toISOString(),
    } } });
    return true;
  }

  /** Evicts the node's pods as `kubectl drain` (DaemonSet pods and mirror pods stay); true when none is left. */
  async function drained(node: string, plan: Upgrade): Promise<boolean> {
    const d = plan.spec.drain ?? {};
    const left: string[] = [];
    for (const p of pods.list()) {
      if (p.spec?.nodeName !== node || p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed') continue;
      const owner = p.metadata.ownerReferences?.find((r) => r.controller);
      if (owner?.kind === 'DaemonSet' && d.ignoreDaemonSets !== false) continue;
      if (p.metadata.annotations?.['kubernetes.io/config.mirror']) continue;
      if (!owner && !d.force) throw new Error(`drain of ${node}: pod ${p.metadata.namespace}/${p.metadata.name} has no controller (set spec.drain.force to delete it)`);
      if (p.spec?.volumes?.some((v) => v.emptyDir) && !d.deleteEmptydirData) throw new Error(`drain of ${node}: pod ${p.metadata.namespace}/${p.metadata.name} uses emptyDir (set spec.drain.deleteEmptydirData)`);
      left.push(`${p.metadata.namespace}/${p.metadata.name}`);
      if (!p.metadata.deletionTimestamp) {
        await ctx.client.evict(p.metadata.namespace!, p.metadata.name!, d.gracePeriodSeconds !== undefined ? { gracePeriodSeconds: d.gracePeriodSeconds } : {})
          .catch((e) => { if (!isNotFound(e)) log.info({ node, pod: p.metadata.name, err: e instanceof Error ? e.message : String(e) }, 'eviction refused; retrying'); });
      }
    }
    return left.length === 0;
  }

  /** Every node plan `name` holds is let go (the plan deleted or gone). */
  async function letGoAll(name: string, why: string): Promise<void> {
    for (const n of nodes.list()) {
      const patch = letGoPatch(name, n.metadata.annotations ?? {});
      if (!patch) continue;
      await patchNode(n.metadata.name!, patch).catch((e) => { if (!isNotFound(e)) throw e; });
      log.info({ plan: name, node: n.metadata.name, why, uncordoned: n.metadata.annotations?.[ANN.cordoned] === 'true' }, 'node let go');
    }
  }

  // JSON patches with a test: a concurrent change of the list fails the patch, and the key is retried.
  async function addFinalizer(plan: Upgrade): Promise<void> {
    const f = plan.metadata.finalizers;
    await ctx.client.patch(UPGRADES, undefined, plan.metadata.name!, 'json', f
      ? [{ op: 'test', path: '/metadata/finalizers', value: f }, { op: 'add', path: '/metadata/finalizers/-', value: FINALIZER }]
      // No list to test: the resourceVersion stands in for it (another writer's new list fails this).
      : [{ op: 'test', path: '/metadata/resourceVersion', value: plan.metadata.resourceVersion }, { op: 'add', path: '/metadata/finalizers', value: [FINALIZER] }]);
  }
  async function removeFinalizer(plan: Upgrade): Promise<void> {
    const f = plan.metadata.finalizers ?? [];
    const i = f.indexOf(FINALIZER);
    await ctx.client.patch(UPGRADES, undefined, plan.metadata.name!, 'json', [
      { op: 'test', path: `/metadata/finalizers/${i}`, value: FINALIZER }, { op: 'remove', path: `/metadata/finalizers/${i}` },
    ]).catch((e) => { if (!isNotFound(e)) throw e; });
    log.info({ plan: plan.metadata.name }, 'plan deleted: its nodes let go');
  }

  return runController({
    name: 'upgrade', queue, informers: [plans, nodes, pods],
    async reconcile(name) {
      const plan = plans.getByName(undefined, name);
      if (!plan || plan.metadata.deletionTimestamp) {
        await letGoAll(name, plan ? 'plan deleted' : 'plan gone');
        if (plan?.metadata.finalizers?.includes(FINALIZER)) await removeFinalizer(plan);
        return;
      }
      if (!plan.metadata.finalizers?.includes(FINALIZER)) await addFinalizer(plan);
      const spec = plan.spec ?? ({} as Upgrade['spec']);
      const all = nodes.list();
      const t = now();
      // The plan's artifact for every architecture among its nodes, before any node is touched.
      const artifacts: Record<string, { file: string; sha256: string }> = {};
      let invalid: string | undefined;
      if (!spec.version) invalid = 'spec.version is required';
      for (const arch of new Set(all.map(archOf))) {
        if (invalid) break;
        let a = findArtifact(o.releaseDir, spec.version, arch);
        if (typeof a === 'string' && o.fetchMissing && !existsSync(join(o.releaseDir, releaseFileName(spec.version, arch)))) {
          // HA: uploaded to another server; fetched here before any node is started.
          const why = await o.fetchMissing(releaseFileName(spec.version, arch));
          const again = findArtifact(o.releaseDir, spec.version, arch);
          a = typeof again === 'string' && typeof why === 'string' ? `${again}; ${why}` : again;
        }
        if (typeof a === 'string') invalid = a; else artifacts[arch] = { file: a.file, sha256: a.sha256 };
      }
      const planNodes: PlanNode[] = all.map((n) => ({ name: n.metadata.name!, labels: n.metadata.labels ?? {}, annotations: n.metadata.annotations ?? {}, ready: isReady(n) }));
      const others = new Set(plans.list().map((p) => p.metadata.name!).filter((n) => n !== name));
      const step = planStep(name, spec, planNodes, t, invalid, others);

      let requeue = step.recheckMs;
      if (step.state !== 'Invalid') {
        for (const s of step.nodes) {
          const node = all.find((n) => n.metadata.name === s.name)!;
          const ann = node.metadata.annotations ?? {};
          if (s.phase === 'Upgraded' && ann[ANN.plan] === name) {
            // Done: the plan lets go of the node (uncordoned if it was the one that cordoned it).
            await patchNode(s.name, letGoPatch(name, ann));
            log.info({ plan: name, node: s.name, version: spec.version }, 'node upgraded');
          } else if (step.start.includes(s.name) || s.phase === 'Cordoning' || s.phase === 'Draining') {
            if (!(await startNode(plan, node, artifacts[archOf(node)]!))) requeue = Math.min(requeue ?? 2000, 2000);
          }
        }
      }
      await writeStatus(plan, step, artifacts, t);
      return requeue !== undefined ? { requeueAfterMs: requeue } : undefined;
    },
  });

  async function writeStatus(plan: Upgrade, step: ReturnType<typeof planStep>, artifacts: UpgradeStatus['artifacts'], t: number): Promise<void> {
    const old = plan.status ?? {};
    const cond = (type: string, on: boolean, reason: string, message: string): UpgradeCondition => {
      const prev = old.conditions?.find((c) => c.type === type);
      const status = on ? 'True' : 'False';
      return { type, status, reason, message, lastTransitionTime: prev && prev.status === status ? prev.lastTransitionTime : new Date(t).toISOString() };
    };
    const s = step.state;
    const healthGate = s === 'Paused' && step.nodes.some((n) => n.phase === 'Failed');
    const status: UpgradeStatus = {
      observedGeneration: plan.metadata.generation,
      artifacts,
      nodes: step.nodes,
      conditions: [
        cond('Valid', s !== 'Invalid', s === 'Invalid' ? 'VersionNotFound' : 'ArtifactFound', s === 'Invalid' ? step.message : `release ${plan.spec.version} found`),
        cond('Paused', s === 'Paused', healthGate ? 'NodeRolledBack' : s === 'Paused' ? 'SpecPaused' : 'NotPaused', s === 'Paused' ? step.message : ''),
        cond('Complete', s === 'Complete', s === 'Complete' ? 'AllNodesUpgraded' : 'InProgress', s === 'Complete' ? step.message : step.message),
      ],
      display: display(step, plan.spec.version),
    };
    if (canonical(status) === canonical(old)) return;
    if (s !== old.display?.state) log.info({ plan: plan.metadata.name, state: s, message: step.message }, 'plan state');
    await ctx.client.patch(UPGRADES, undefined, plan.metadata.name!, 'merge', { status }, { subresource: 'status' }).catch((e) => { if (!isNotFound(e)) throw e; });
  }
}

/** JSON with sorted keys: the stored status may list keys in another order than this one builds them. */
function canonical(v: unknown): string {
  return JSON.stringify(v, (_k, x) => (x && typeof x === 'object' && !Array.isArray(x) ? Object.fromEntries(Object.keys(x).sort().map((k) => [k, x[k]])) : x));
}
