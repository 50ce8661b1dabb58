// One reconcile of one Deployment (sync.go in Kubernetes): find or create the new ReplicaSet and keep
// revisions in order, scale ReplicaSets (recording ScalingReplicaSet events), spread a scaling over
// the active ReplicaSets, delete history beyond revisionHistoryLimit, and write the status.
// `d` is a private copy kept current with every write, so later writes in the same sync compare-and-swap
// against what this sync last wrote.
import type { ApiClient } from '../../client/types.js';
import { isAlreadyExists, isNotFound, Resources } from '../../client/types.js';
import type { EventRecorder } from '../../client/events.js';
import { controllerOf, controllerRef } from '../../api/object.js';
import { canonicalJson, computeHash, equalIgnoreHash, POD_TEMPLATE_HASH_LABEL } from './hash.js';
import { progressCheckDelayMs, rolloutStatus } from './progress.js';
import {
  DESIRED_REPLICAS_ANNOTATION, maxRevision, replicaSetsToCleanUp, REVISION_ANNOTATION, setNewReplicaSetAnnotations, setReplicasAnnotations,
} from './revisions.js';
import { byCreation } from '../../api/pod.js';
import {
  bySizeNewer, bySizeOlder, filterActive, findActiveOrLatest, isRollingUpdate, isSaturated, maxSurge, newRSNewReplicas,
  proportion, replicaCount, specReplicas, type Obj,
} from './sizes.js';
import { calculateStatus, getCondition, hasProgressDeadline, newCondition, REASON, setCondition } from './status.js';

export interface SyncDeps {
  client: ApiClient;
  events: EventRecorder;
  /** The cached ReplicaSet by name, to tell our own earlier creation from a hash collision. */
  cachedReplicaSet(namespace: string, name: string): Obj | undefined;
}

export class DeploymentSync {
  constructor(private readonly deps: SyncDeps, public d: Obj, public readonly rsList: Obj[]) {}

  private get ns(): string {
    return this.d.metadata.namespace!;
  }

  /**
   * The new ReplicaSet (whose template is the Deployment's), created when `create` and missing, with
   * its revision raised above every old one; and the old ReplicaSets.
   */
  async getAllReplicaSetsAndSyncRevision(create: boolean): Promise<{ newRS?: Obj; oldRSs: Obj[] }> {
    const sorted = [...this.rsList].sort(byCreation);
    const existing = sorted.find((rs) => equalIgnoreHash(rs.spec?.template, this.d.spec.template));
    const oldRSs = sorted.filter((rs) => rs !== existing);
    const newRS = await this.getNewReplicaSet(existing, oldRSs, create);
    return { newRS, oldRSs };
  }

  private async getNewReplicaSet(existing: Obj | undefined, oldRSs: Obj[], create: boolean): Promise<Obj | undefined> {
    const d = this.d;
    const newRevision = maxRevision(oldRSs) + 1;
    if (existing) {
      const copy = structuredClone(existing);
      const annotationsChanged = setNewReplicaSetAnnotations(d, copy, newRevision, true, maxSurge(d));
      const minReady = d.spec.minReadySeconds ?? 0;
      if (annotationsChanged || (copy.spec.minReadySeconds ?? 0) !== minReady) {
        copy.spec.minReadySeconds = minReady;
        // The next sync (the ReplicaSet's update event brings it) carries on from the updated set.
        return this.deps.client.update<Obj>(Resources.replicaSets, this.ns, copy);
      }
      await this.setDeploymentRevision(copy.metadata.annotations?.[REVISION_ANNOTATION]);
      if (hasProgressDeadline(d) && !getCondition(d.status, 'Progressing')) {
        const status = structuredClone(d.status ?? {});
        setCondition(status, newCondition('Progressing', 'True', REASON.foundNewRS, `Found new replica set "${copy.metadata.name}"`));
        await this.writeStatus(status);
      }
      return copy;
    }
    if (!create) return undefined;

    const template = structuredClone(d.spec.template);
    const hash = computeHash(template, d.status?.collisionCount);
    template.metadata = { ...(template.metadata ?? {}), labels: { ...(template.metadata?.labels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash } };
    const selector = structuredClone(d.spec.selector ?? {});
    selector.matchLabels = { ...(selector.matchLabels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash };
    const rs: Obj = {
      apiVersion: 'apps/v1', kind: 'ReplicaSet',
      metadata: {
        name: `${d.metadata.name}-${hash}`, namespace: this.ns,
        labels: { ...template.metadata.labels },
        ownerReferences: [controllerRef(d, 'apps/v1', 'Deployment')],
      },
      spec: { replicas: 0, selector, template, ...(d.spec.minReadySeconds ? { minReadySeconds: d.spec.minReadySeconds } : {}) },
    };
    rs.spec.replicas = newRSNewReplicas(d, [...oldRSs, rs], rs);
    setNewReplicaSetAnnotations(d, rs, newRevision, false, maxSurge(d));

    let created: Obj;
    let alreadyExisted = false;
    try {
      created = await this.deps.client.create<Obj>(Resources.replicaSets, this.ns, rs);
    } catch (e) {
      if (!isAlreadyExists(e)) {
        const msg = `Failed to create new replica set "${rs.metadata.name}": ${e instanceof Error ? e.message : String(e)}`;
        this.deps.events.record(d, 'Warning', 'FailedCreate', msg);
        if (hasProgressDeadline(d)) {
          const status = structuredClone(d.status ?? {});
          setCondition(status, newCondition('Progressing', 'False', REASON.failedRSCreate, msg));
          await this.writeStatus(status).catch(() => undefined);
        }
        throw e;
      }
      // Ours from an earlier sync whose result the cache had not shown yet: carry on with it.
      const other = this.deps.cachedReplicaSet(this.ns, rs.metadata.name!) ??
        await this.deps.client.get<Obj>(Resources.replicaSets, this.ns, rs.metadata.name!);
      if (other && controllerOf(other)?.uid === d.metadata.uid && equalIgnoreHash(d.spec.template, other.spec?.template)) {
        created = structuredClone(other);
        alreadyExisted = true;
      } else {
        // A different template hashed to the same name: count the collision, which changes the next hash.
        const status = structuredClone(d.status ?? {});
        status.collisionCount = (status.collisionCount ?? 0) + 1;
        await this.writeStatus(status);
        throw e;
      }
    }
    if (!alreadyExisted && specReplicas(rs) > 0) {
      this.deps.events.record(d, 'Normal', 'ScalingReplicaSet', `Scaled up replica set ${created.metadata.name} from 0 to ${specReplicas(rs)}`);
    }
    await this.setDeploymentRevision(String(newRevision));
    if (!alreadyExisted && hasProgressDeadline(d)) {
      const status = structuredClone(d.status ?? {});
      setCondition(status, newCondition('Progressing', 'True', REASON.newReplicaSet, `Created new replica set "${created.metadata.name}"`));
      await this.writeStatus(status);
    }
    return created;
  }

  /**
   * The Deployment's own revision annotation follows its new ReplicaSet's. Kubernetes writes it with
   * the status; skiff's status subresource (rightly) keeps metadata, so it is a metadata patch here.
   */
  private async setDeploymentRevision(revision: string | undefined): Promise<void> {
    if (revision === undefined || this.d.metadata.annotations?.[REVISION_ANNOTATION] === revision) return;
    this.d = structuredClone(await this.deps.client.patch<Obj>(Resources.deployments, this.ns, this.d.metadata.name!, 'merge', {
      metadata: { resourceVersion: this.d.metadata.resourceVersion, annotations: { [REVISION_ANNOTATION]: revision } },
    }));
  }

  async writeStatus(status: Record<string, any>): Promise<void> {
    this.d = structuredClone(await this.deps.client.updateStatus<Obj>(Resources.deployments, this.ns, { ...this.d, status }));
  }

  async scaleReplicaSetAndRecordEvent(rs: Obj, replicas: number): Promise<{ scaled: boolean; rs: Obj }> {
    if (specReplicas(rs) === replicas) return { scaled: false, rs };
    return this.scaleReplicaSet(rs, replicas, specReplicas(rs) < replicas ? 'up' : 'down');
  }

  private async scaleReplicaSet(rs: Obj, replicas: number, op: string): Promise<{ scaled: boolean; rs: Obj }> {
    const sizeChanged = specReplicas(rs) !== replicas;
    const copy = structuredClone(rs);
    const annotationsChanged = setReplicasAnnotations(copy, specReplicas(this.d), specReplicas(this.d) + maxSurge(this.d));
    if (!sizeChanged && !annotationsChanged) return { scaled: false, rs };
    copy.spec.replicas = replicas;
    const updated = await this.deps.client.update<Obj>(Resources.replicaSets, this.ns, copy);
    if (sizeChanged) {
      this.deps.events.record(this.d, 'Normal', 'ScalingReplicaSet', `Scaled ${op} replica set ${rs.metadata.name} from ${specReplicas(rs)} to ${replicas}`);
    }
    return { scaled: sizeChanged, rs: structuredClone(updated) };
  }

  /** A change of spec.replicas alone (no new template): some active ReplicaSet was sized for another count. */
  async isScalingEvent(): Promise<boolean> {
    const { newRS, oldRSs } = await this.getAllReplicaSetsAndSyncRevision(false);
    for (const rs of filterActive([...oldRSs, newRS])) {
      const desired = rs.metadata.annotations?.[DESIRED_REPLICAS_ANNOTATION];
      if (desired !== undefined && Number(desired) !== specReplicas(this.d)) return true;
    }
    return false;
  }

  /** Scaling (or a paused Deployment): resize without rolling, then report status. */
  async sync(): Promise<void> {
    const { newRS, oldRSs } = await this.getAllReplicaSetsAndSyncRevision(false);
    await this.scale(newRS, oldRSs);
    if (this.d.spec.paused) await this.cleanupDeployment(oldRSs);
    await this.syncDeploymentStatus([...oldRSs, newRS], newRS);
  }

  /**
   * Sizes ReplicaSets for spec.replicas: all to the single active (or newest) one; old ones to zero
   * once the new one is saturated; otherwise, mid-rollout, in proportion to their sizes, the rounding
   * leftover going to the largest.
   */
  private async scale(newRS: Obj | undefined, oldRSs: Obj[]): Promise<void> {
    const d = this.d;
    const single = findActiveOrLatest(newRS, oldRSs);
    if (single) {
      if (specReplicas(single) !== specReplicas(d)) await this.scaleReplicaSetAndRecordEvent(single, specReplicas(d));
      return;
    }
    if (isSaturated(d, newRS)) {
      for (const old of filterActive(oldRSs)) await this.scaleReplicaSetAndRecordEvent(old, 0);
      return;
    }
    if (!isRollingUpdate(d)) return;
    const active = filterActive([...oldRSs, newRS]);
    const allowed = specReplicas(d) > 0 ? specReplicas(d) + maxSurge(d) : 0;
    const toAdd = allowed - replicaCount(active);
    let op = '';
    if (toAdd > 0) { active.sort(bySizeNewer); op = 'up'; }
    else if (toAdd < 0) { active.sort(bySizeOlder); op = 'down'; }
    let added = 0;
    const sizes = new Map<Obj, number>();
    for (const rs of active) {
      const share = toAdd !== 0 ? proportion(rs, d, toAdd, added) : 0;
      sizes.set(rs, specReplicas(rs) + share);
      added += share;
    }
    if (active.length > 0) {
      const first = active[0];
      sizes.set(first, Math.max(0, sizes.get(first)! + toAdd - added));
    }
    for (const rs of active) await this.scaleReplicaSet(rs, sizes.get(rs)!, op);
  }

  /** Deletes old ReplicaSets beyond revisionHistoryLimit (fully scaled down ones only). */
  async cleanupDeployment(oldRSs: Obj[]): Promise<void> {
    for (const rs of replicaSetsToCleanUp(this.d, oldRSs)) {
      try {
        await this.deps.client.delete(Resources.replicaSets, this.ns, rs.metadata.name!, { preconditions: { uid: rs.metadata.uid } });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }

  async syncDeploymentStatus(allRSs: (Obj | undefined)[], newRS: Obj | undefined): Promise<void> {
    const status = calculateStatus(allRSs, newRS, this.d);
    if (!sameStatus(status, this.d.status)) await this.writeStatus(status);
  }

  /** Status with the Progressing condition; returns when to look again for a possible timeout. */
  async syncRolloutStatus(allRSs: (Obj | undefined)[], newRS: Obj | undefined): Promise<number | undefined> {
    const status = rolloutStatus(allRSs, newRS, this.d);
    if (!sameStatus(status, this.d.status)) await this.writeStatus(status);
    return progressCheckDelayMs(this.d, status);
  }

  /** Paused and resumed show as the Progressing condition, so a pause never counts against the deadline. */
  async checkPausedConditions(): Promise<void> {
    const d = this.d;
    if (!hasProgressDeadline(d)) return;
    const cond = getCondition(d.status, 'Progressing');
    if (cond?.reason === REASON.timedOut) return;
    const pausedShown = cond?.reason === REASON.paused;
    const status = structuredClone(d.status ?? {});
    if (d.spec.paused && !pausedShown) {
      setCondition(status, newCondition('Progressing', 'Unknown', REASON.paused, 'Deployment is paused'));
    } else if (!d.spec.paused && pausedShown) {
      setCondition(status, newCondition('Progressing', 'Unknown', REASON.resumed, 'Deployment is resumed'));
    } else {
      return;
    }
    await this.writeStatus(status);
  }
}

/** Equal as stored: key order, and values JSON would drop, make no difference. */
function sameStatus(a: unknown, b: unknown): boolean {
  return canonicalJson(a) === canonicalJson(b ?? {});
}
