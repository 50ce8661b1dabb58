// The rolling-upgrade controller (issue 14 item 5): Upgrades and Nodes → queue of plan names →
// reconcile. Each reconcile reads the plan's nodes from the cache, asks plan.ts what phase each is in
// and which to start, carries out the server's share (cordon, drain, handing the node its target in
// annotations, uncordon when done) and writes the plan's status. The node's own agent does the rest
// (src/agent/upgrade-executor.ts: download, checksum, swap, restart, health gate, rollback).
import type { KObject } from '../../api/object.js';
import { isNotFound, Resources } from '../../client/types.js';
import { runController, type RunningController } from '../../client/controller.js';
import { WorkQueue } from '../../client/workqueue.js';
import type { ControllerContext } from '../context.js';
import { logger } from '../../util/log.js';
import { ANN, UPGRADES, type Upgrade, type UpgradeCondition, type UpgradeStatus } from './api.js';
import { display, planStep, type PlanNode } from './plan.js';
import { findArtifact } from './artifacts.js';

const log = logger('upgrade-controller');

export interface UpgradeControllerOptions {
  /** The release dir (artifacts.ts). */
  releaseDir: string;
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
  nodes.addHandlers({ onAdd: enqueueAllPlans, onUpdate: enqueueAllPlans, onDelete: enqueueAllPlans });

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

  return runController({
    name: 'upgrade', queue, informers: [plans, nodes, pods],
    async reconcile(name) {
      const plan = plans.getByName(undefined, name);
      if (!plan || plan.metadata.deletionTimestamp) return;
      const spec = plan.spec ?? ({} as Upgrade['spec']);
      const all = nodes.list();
      const t = now();
      // The plan's artifact for every architecture among its nodes, before any node is touched.
      const artifacts: Record<string, { file: string; sha256: string }> = {};
      let invalid: string | undefined;
      if (!spec.version) invalid = 'spec.version is required';
      for (const arch of new Set(all.map(archOf))) {
        if (invalid) break;
        const a = findArtifact(o.releaseDir, spec.version, arch);
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
            const clear = Object.fromEntries([ANN.plan, ANN.targetVersion, ANN.targetFile, ANN.targetSha256, ANN.healthTimeout, ANN.targetTime, ANN.cordoned].map((k) => [k, null]));
            await patchNode(s.name, { metadata: { annotations: clear }, ...(ann[ANN.cordoned] === 'true' ? { spec: { unschedulable: null } } : {}) });
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
