// Defaults of pod specs, wherever they appear (pkg/apis/core/v1/defaults.go and the `+default`
// markers of k8s.io/api/core/v1). Every function fills only what is absent, so applying it twice
// changes nothing the second time.

type Obj = Record<string, any>;
export const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
const each = (list: unknown, fn: (o: Obj) => void) => { if (Array.isArray(list)) for (const o of list) if (isObj(o)) fn(o); };

/** Sets `o[key]` when it is absent (or, where Kubernetes treats it so, zero/empty). */
export function setDefault(o: Obj, key: string, value: unknown, emptyIsUnset = true): void {
  const v = o[key];
  if (v === undefined || v === null || (emptyIsUnset && (v === '' || v === 0))) o[key] = value;
}

const FILE_MODE = 0o644; // 420: the default mode of files projected from ConfigMaps, Secrets and the downward API

/** The tag Kubernetes reads from an image reference: none with a digest, "latest" when omitted. */
function imageTag(image: string): string {
  if (image.includes('@')) return '';
  const last = image.slice(image.lastIndexOf('/') + 1);
  const colon = last.indexOf(':');
  return colon < 0 ? 'latest' : last.slice(colon + 1);
}

function defaultHandler(h: unknown): void {
  if (!isObj(h)) return;
  if (isObj(h.httpGet)) {
    setDefault(h.httpGet, 'path', '/');
    setDefault(h.httpGet, 'scheme', 'HTTP');
  }
  if (isObj(h.grpc)) setDefault(h.grpc, 'service', '', false);
}

function defaultProbe(p: unknown): void {
  if (!isObj(p)) return;
  defaultHandler(p);
  setDefault(p, 'timeoutSeconds', 1);
  setDefault(p, 'periodSeconds', 10);
  setDefault(p, 'successThreshold', 1);
  setDefault(p, 'failureThreshold', 3);
}

function defaultFieldRef(ref: unknown): void {
  if (isObj(ref)) setDefault(ref, 'apiVersion', 'v1');
}

export function defaultContainer(c: Obj): void {
  setDefault(c, 'imagePullPolicy', imageTag(String(c.image ?? '')) === 'latest' ? 'Always' : 'IfNotPresent');
  setDefault(c, 'terminationMessagePath', '/dev/termination-log');
  setDefault(c, 'terminationMessagePolicy', 'File');
  // Go always serializes this (non-pointer) struct, so Kubernetes shows `resources: {}`.
  if (!isObj(c.resources)) c.resources = {};
  each(c.ports, (p) => setDefault(p, 'protocol', 'TCP'));
  each(c.env, (e) => defaultFieldRef(e.valueFrom?.fieldRef));
  defaultProbe(c.livenessProbe);
  defaultProbe(c.readinessProbe);
  defaultProbe(c.startupProbe);
  if (isObj(c.lifecycle)) {
    defaultHandler(c.lifecycle.postStart);
    defaultHandler(c.lifecycle.preStop);
  }
}

/** Volume sources that can hold a pod's volume; one with none of them becomes an emptyDir. */
const VOLUME_SOURCES = [
  'hostPath', 'emptyDir', 'gcePersistentDisk', 'awsElasticBlockStore', 'gitRepo', 'secret', 'nfs', 'iscsi', 'glusterfs',
  'persistentVolumeClaim', 'rbd', 'flexVolume', 'cinder', 'cephfs', 'flocker', 'downwardAPI', 'fc', 'azureFile', 'configMap',
  'vsphereVolume', 'quobyte', 'azureDisk', 'photonPersistentDisk', 'projected', 'portworxVolume', 'scaleIO', 'storageos',
  'csi', 'ephemeral', 'image',
];

function defaultVolume(v: Obj): void {
  if (!VOLUME_SOURCES.some((s) => v[s] !== undefined && v[s] !== null)) v.emptyDir = {};
  if (isObj(v.hostPath)) setDefault(v.hostPath, 'type', '', false);
  for (const s of ['secret', 'configMap', 'downwardAPI', 'projected']) if (isObj(v[s])) setDefault(v[s], 'defaultMode', FILE_MODE, false);
  if (isObj(v.downwardAPI)) each(v.downwardAPI.items, (i) => defaultFieldRef(i.fieldRef));
  if (isObj(v.projected)) {
    each(v.projected.sources, (src) => {
      if (isObj(src.serviceAccountToken)) setDefault(src.serviceAccountToken, 'expirationSeconds', 3600, false);
      if (isObj(src.downwardAPI)) each(src.downwardAPI.items, (i) => defaultFieldRef(i.fieldRef));
    });
  }
  const claimSpec = v.ephemeral?.volumeClaimTemplate?.spec;
  if (isObj(claimSpec)) setDefault(claimSpec, 'volumeMode', 'Filesystem', false);
}

export interface PodSpecDefaultOptions {
  /** The spec is a Pod's (not a template's): Kubernetes adds a few Pod-only defaults. */
  isPod?: boolean;
  /** Job templates get no restartPolicy: they must choose Never or OnFailure themselves. */
  noRestartPolicy?: boolean;
}

export function defaultPodSpec(spec: Obj, opts: PodSpecDefaultOptions = {}): void {
  setDefault(spec, 'dnsPolicy', 'ClusterFirst');
  if (!opts.noRestartPolicy) setDefault(spec, 'restartPolicy', 'Always');
  if (!isObj(spec.securityContext)) spec.securityContext = {};
  setDefault(spec, 'terminationGracePeriodSeconds', 30, false);
  setDefault(spec, 'schedulerName', 'default-scheduler');
  each(spec.volumes, defaultVolume);
  for (const list of ['containers', 'initContainers', 'ephemeralContainers']) each(spec[list], defaultContainer);
  if (!opts.isPod) return;
  // Pod-only: requests default to limits, service links are on, host networking exposes container ports.
  for (const list of ['containers', 'initContainers']) {
    each(spec[list], (c) => {
      const limits = c.resources?.limits;
      if (!isObj(limits)) return;
      if (!isObj(c.resources.requests)) c.resources.requests = {};
      for (const [k, v] of Object.entries(limits)) if (!(k in c.resources.requests)) c.resources.requests[k] = v;
    });
  }
  setDefault(spec, 'enableServiceLinks', true, false);
  if (spec.hostNetwork === true) {
    for (const list of ['containers', 'initContainers']) each(spec[list], (c) => each(c.ports, (p) => setDefault(p, 'hostPort', p.containerPort)));
  }
}

/** A pod template inside a workload; Go defaults even an absent template, so one is created. */
export function defaultPodTemplate(owner: Obj, key: string, opts: PodSpecDefaultOptions = {}): void {
  if (!isObj(owner[key])) owner[key] = {};
  const t = owner[key];
  if (!isObj(t.spec)) t.spec = {};
  defaultPodSpec(t.spec, opts);
}
