// The PersistentVolume controller (kube-controller-manager's persistentvolume-binder) with k3s's
// local-path provisioner folded in.
//
// Binding: an unbound claim gets the smallest matching free volume (see volumes/claim-matching.ts);
// the volume's claimRef is written first, then the claim's volumeName, then both statuses, so a crash
// between the steps is finished by the next pass rather than leaving a volume bound twice. Claims of
// a WaitForFirstConsumer class wait until the scheduler has annotated them with the node it chose.
// A volume whose claim is gone is Released; its reclaim policy then decides: Retain keeps it,
// Delete removes it (the directory first, for volumes this controller provisioned).
//
// Provisioning (`rancher.io/local-path`, the class k3s ships as `local-path`): a claim of that class
// with a selected node gets a hostPath volume `<storage path>/pvc-<uid>_<namespace>_<name>` pinned to
// that node (the agent creates the directory when a pod mounts it). Deleting one asks the node's
// agent, through its tunnel, to remove the directory; a node that is away is asked again later.
import type { KObject } from '../api/object.js';
import { isAlreadyExists, isNotFound, Resources } from '../client/types.js';
import type { ControllerContext } from './context.js';
import { runController, type RunningController } from '../client/controller.js';
import { keyOf } from '../client/informer.js';
import { WorkQueue } from '../client/workqueue.js';
import {
  classOf, findVolume, mismatch, NO_PROVISIONER, reservedFor, SELECTED_NODE_ANNOTATION,
  type PersistentVolume, type PersistentVolumeClaim, type StorageClass,
} from './volumes/claim-matching.js';

export const LOCAL_PATH_PROVISIONER = 'rancher.io/local-path';
/** Which node holds a local-path volume's directory (the annotation k3s's provisioner writes). */
export const LOCAL_PATH_NODE_ANNOTATION = 'local.path.provisioner/selected-node';
const PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';
const BOUND_BY_CONTROLLER = 'pv.kubernetes.io/bound-by-controller';
const BIND_COMPLETED = 'pv.kubernetes.io/bind-completed';
const STORAGE_PROVISIONER = 'volume.kubernetes.io/storage-provisioner';
const STORAGE_PROVISIONER_BETA = 'volume.beta.kubernetes.io/storage-provisioner';
const PV = Resources.persistentVolumes;
const PVC = Resources.persistentVolumeClaims;

export interface PersistentVolumeOptions {
  /** Where local-path volumes live on their node (k3s: --default-local-storage-path). */
  localStoragePath: string;
  /** Removes a local-path volume's directory on its node; rejects when the node cannot be reached. */
  removeLocalPath(node: string, path: string): Promise<void>;
}

type Node = KObject & { metadata: { labels?: Record<string, string> } };

export function startPersistentVolumeController(ctx: ControllerContext, opts: PersistentVolumeOptions): RunningController {
  const claims = ctx.informers.informerFor<PersistentVolumeClaim>(PVC);
  const volumes = ctx.informers.informerFor<PersistentVolume>(PV);
  const classes = ctx.informers.informerFor<StorageClass>(Resources.storageClasses);
  const nodes = ctx.informers.informerFor<Node>(Resources.nodes);
  // One queue for both kinds: claims as `claim:<ns>/<name>`, volumes as `volume:<name>`.
  const queue = new WorkQueue<string>();
  const claimKey = (c: KObject) => `claim:${keyOf(c)}`;
  const volumeKey = (v: KObject) => `volume:${v.metadata.name}`;
  const retryPendingClaims = () => { for (const c of claims.list()) if (!c.status?.phase || c.status.phase === 'Pending') queue.add(claimKey(c)); };
  const onVolume = (v: PersistentVolume) => {
    queue.add(volumeKey(v));
    const ref = v.spec?.claimRef;
    if (ref?.name) queue.add(`claim:${ref.namespace}/${ref.name}`);
    else retryPendingClaims();  // a free volume: any waiting claim may take it
  };
  claims.addHandlers({ onAdd: (c) => queue.add(claimKey(c)), onUpdate: (_o, c) => queue.add(claimKey(c)), onDelete: (c) => {
    const name = c.spec?.volumeName;
    if (name) queue.add(`volume:${name}`);
  } });
  volumes.addHandlers({ onAdd: onVolume, onUpdate: (_o, v) => onVolume(v), onDelete: (v) => {
    const ref = v.spec?.claimRef;
    if (ref?.name) queue.add(`claim:${ref.namespace}/${ref.name}`);
  } });
  // A class created after its claims: look at the waiting claims again.
  classes.addHandlers({ onAdd: retryPendingClaims });

  const nodeView = (name: string) => {
    const n = nodes.getByName(undefined, name);
    return n ? { name, labels: n.metadata.labels } : undefined;
  };

  /** The claim as the API has it now: the cache may lag behind a claim just created or deleted. */
  const liveClaim = async (ns: string, name: string) => claims.getByName(ns, name)
    ?? await ctx.client.get<PersistentVolumeClaim>(PVC, ns, name).catch((e) => { if (isNotFound(e)) return undefined; throw e; });

  async function syncClaim(ns: string, name: string): Promise<void> {
    const pvc = claims.getByName(ns, name);
    if (!pvc || pvc.metadata.deletionTimestamp) return;
    if (pvc.status?.phase === 'Bound' || pvc.status?.phase === 'Lost') {
      const pv = pvc.spec?.volumeName ? volumes.getByName(undefined, pvc.spec.volumeName) : undefined;
      if (pv && reservedFor(pv, pvc)) return bind(pv, pvc);  // finishes a bind cut short
      if (pvc.status.phase === 'Bound' && !await volumeExists(pvc.spec?.volumeName)) {
        await ctx.client.patch(PVC, ns, name, 'merge', { status: { phase: 'Lost' } }, { subresource: 'status' });
        ctx.events.record(pvc, 'Warning', 'ClaimLost', 'Bound claim has lost its PersistentVolume. Data on the volume is lost!');
      }
      return;
    }
    if (pvc.spec?.volumeName) {
      // Pre-bound by its author: that volume or none.
      const pv = volumes.getByName(undefined, pvc.spec.volumeName);
      if (!pv) return;
      if (pv.spec?.claimRef && !reservedFor(pv, pvc)) return;
      const why = mismatch(pv, pvc);
      if (why) { ctx.events.record(pvc, 'Warning', 'VolumeMismatch', `Cannot bind to requested volume "${pv.metadata.name}": ${why}`); return; }
      return bind(pv, pvc);
    }
    const className = classOf(pvc);
    const sc = className ? classes.getByName(undefined, className) : undefined;
    const selectedNode = pvc.metadata.annotations?.[SELECTED_NODE_ANNOTATION];
    if (sc?.volumeBindingMode === 'WaitForFirstConsumer' && !selectedNode) {
      ctx.events.record(pvc, 'Normal', 'WaitForFirstConsumer', 'waiting for first consumer to be created before binding');
      return;
    }
    const node = selectedNode ? nodeView(selectedNode) ?? { name: selectedNode, labels: undefined } : undefined;
    const pv = findVolume(pvc, volumes.list(), node);
    if (pv) return bind(pv, pvc);
    if (!sc || sc.provisioner === NO_PROVISIONER) {
      ctx.events.record(pvc, 'Normal', 'FailedBinding', !className ? 'no persistent volumes available for this claim and no storage class is set'
        : !sc ? `storageclass.storage.k8s.io "${className}" not found`
        : 'no persistent volumes available for this claim');
      return;
    }
    if (pvc.metadata.annotations?.[STORAGE_PROVISIONER] !== sc.provisioner) {
      await ctx.client.patch(PVC, ns, name, 'merge', { metadata: { annotations: { [STORAGE_PROVISIONER]: sc.provisioner, [STORAGE_PROVISIONER_BETA]: sc.provisioner } } });
    }
    if (sc.provisioner !== LOCAL_PATH_PROVISIONER) {
      ctx.events.record(pvc, 'Normal', 'ExternalProvisioning',
        `Waiting for a volume to be created either by the external provisioner '${sc.provisioner}' or manually by the system administrator. If volume creation is delayed, please verify that the provisioner is running and correctly registered.`);
      return;
    }
    if (!selectedNode) {
      ctx.events.record(pvc, 'Warning', 'ProvisioningFailed', `failed to provision volume with StorageClass "${className}": configuration error, no node was specified`);
      return;
    }
    await provisionLocalPath(pvc, sc, selectedNode);
  }

  async function provisionLocalPath(pvc: PersistentVolumeClaim, sc: StorageClass, node: string): Promise<void> {
    const { namespace, name, uid } = pvc.metadata;
    const pvName = `pvc-${uid}`;
    const path = `${(sc.parameters?.path ?? opts.localStoragePath).replace(/\/+$/, '')}/${pvName}_${namespace}_${name}`;
    const hostname = nodes.getByName(undefined, node)?.metadata.labels?.['kubernetes.io/hostname'] ?? node;
    const pv: PersistentVolume = {
      apiVersion: 'v1', kind: 'PersistentVolume',
      metadata: { name: pvName, annotations: { [PROVISIONED_BY]: LOCAL_PATH_PROVISIONER, [LOCAL_PATH_NODE_ANNOTATION]: node } },
      spec: {
        capacity: { storage: pvc.spec?.resources?.requests?.storage ?? '0' },
        accessModes: pvc.spec?.accessModes ?? ['ReadWriteOnce'],
        volumeMode: pvc.spec?.volumeMode ?? 'Filesystem',
        storageClassName: classOf(pvc),
        persistentVolumeReclaimPolicy: sc.reclaimPolicy ?? 'Delete',
        claimRef: { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace, name, uid },
        hostPath: { path, type: 'DirectoryOrCreate' },
        nodeAffinity: { required: { nodeSelectorTerms: [{ matchExpressions: [{ key: 'kubernetes.io/hostname', operator: 'In', values: [hostname] }] }] } },
      },
    };
    try {
      await ctx.client.create(PV, undefined, pv);
    } catch (e) {
      if (!isAlreadyExists(e)) throw e;
      return;
    }
    ctx.events.record(pvc, 'Normal', 'ProvisioningSucceeded', `Successfully provisioned volume ${pvName}`);
  }

  async function volumeExists(name: string | undefined): Promise<boolean> {
    if (!name) return false;
    if (volumes.getByName(undefined, name)) return true;
    return ctx.client.get(PV, undefined, name).then(() => true, (e) => { if (isNotFound(e)) return false; throw e; });
  }

  /** Volume first, then claim, then statuses: each step is redone by the next pass if cut short. */
  async function bind(pv: PersistentVolume, pvc: PersistentVolumeClaim): Promise<void> {
    const { namespace, name, uid } = pvc.metadata;
    const pvName = pv.metadata.name!;
    const ref = pv.spec?.claimRef;
    if (!ref || ref.uid !== uid) {
      await ctx.client.patch(PV, undefined, pvName, 'merge', {
        metadata: { resourceVersion: pv.metadata.resourceVersion, annotations: ref ? {} : { [BOUND_BY_CONTROLLER]: 'yes' } },
        spec: { claimRef: { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace, name, uid, resourceVersion: pvc.metadata.resourceVersion } },
      });
    }
    if (pv.status?.phase !== 'Bound') {
      await ctx.client.patch(PV, undefined, pvName, 'merge', { status: { phase: 'Bound' } }, { subresource: 'status' });
    }
    if (pvc.spec?.volumeName !== pvName || pvc.metadata.annotations?.[BIND_COMPLETED] !== 'yes') {
      const annotations: Record<string, string> = { [BIND_COMPLETED]: 'yes' };
      if (!pvc.spec?.volumeName) annotations[BOUND_BY_CONTROLLER] = 'yes';
      await ctx.client.patch(PVC, namespace, name!, 'merge', {
        metadata: { resourceVersion: pvc.metadata.resourceVersion, annotations },
        spec: { volumeName: pvName },
      });
    }
    if (pvc.status?.phase !== 'Bound') {
      await ctx.client.patch(PVC, namespace, name!, 'merge', {
        status: { phase: 'Bound', accessModes: pv.spec?.accessModes ?? [], capacity: pv.spec?.capacity ?? {} },
      }, { subresource: 'status' });
    }
  }

  async function syncVolume(name: string): Promise<void> {
    const pv = volumes.getByName(undefined, name);
    if (!pv || pv.metadata.deletionTimestamp) return;
    const ref = pv.spec?.claimRef;
    const setPhase = async (phase: string, message?: string) => {
      if (pv.status?.phase === phase && (pv.status.message ?? undefined) === message) return;
      await ctx.client.patch(PV, undefined, name, 'merge', { status: { phase, message: message ?? null } }, { subresource: 'status' });
    };
    if (!ref?.name) return setPhase('Available');
    const claim = await liveClaim(ref.namespace ?? '', ref.name);
    if (claim && (!ref.uid || claim.metadata.uid === ref.uid)) {
      // Bound once the claim names it; until then it waits for that claim (the claim's pass binds it).
      return setPhase(claim.spec?.volumeName === name ? 'Bound' : 'Available');
    }
    if (!ref.uid) return setPhase('Available');  // reserved by its author for a claim not made yet
    // Its claim is gone: released, and then reclaimed as its policy says.
    const policy = pv.spec?.persistentVolumeReclaimPolicy ?? 'Retain';
    if (policy === 'Retain') return setPhase('Released');
    if (policy !== 'Delete') return setPhase('Failed', `reclaim policy ${policy} is not supported`);
    if (pv.metadata.annotations?.[PROVISIONED_BY] !== LOCAL_PATH_PROVISIONER) {
      return setPhase('Failed', 'error getting deleter volume plugin for volume: no deletable volume plugin matched');
    }
    await setPhase('Released');
    const node = pv.metadata.annotations[LOCAL_PATH_NODE_ANNOTATION];
    const path = pv.spec?.hostPath?.path;
    if (node && path) {
      try {
        await opts.removeLocalPath(node, path);
      } catch (err) {
        ctx.events.record(pv, 'Warning', 'VolumeFailedDelete', `failed to delete volume ${name}: ${(err as Error).message}`);
        throw err;  // retried with backoff until the node is back
      }
    }
    await ctx.client.delete(PV, undefined, name).catch((e) => { if (!isNotFound(e)) throw e; });
  }

  return runController({
    name: 'persistentvolume', queue, workers: 2, informers: [claims, volumes, classes, nodes],
    async reconcile(key) {
      if (key.startsWith('volume:')) return syncVolume(key.slice('volume:'.length));
      const [ns, name] = key.slice('claim:'.length).split('/') as [string, string];
      return syncClaim(ns, name);
    },
  });
}
