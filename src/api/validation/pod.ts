// Pod specs, wherever they appear: in Pods and in the pod templates of workloads. Field paths are
// relative to the caller's prefix (`spec` for a Pod, `spec.template.spec` for a Deployment, ...).
// Rules and messages follow pkg/apis/core/validation (ValidatePodSpec and the functions it calls).
import net from 'node:net';
import type { StatusCause } from '../status.js';
import { child, fe, index, IS_NEGATIVE, key, nonNegative, semanticEqual, isObj } from './field.js';
import { validateAnnotations, validateLabelName, validateLabels } from './meta.js';
import {
  inclusiveRangeError, isConfigMapKey, isDNS1123Label, isDNS1123Subdomain, isQualifiedName,
  isRelaxedEnvVarName, isValidLabelValue, isValidPortName, isValidPortNum,
} from './names.js';
import { quantityNanos, QUANTITY_FORMAT_ERROR } from '../quantity.js';

type Obj = Record<string, any>;
const MAX_INT32 = 2147483647;
const FILE_MODE_ERROR = 'must be a number between 0 and 0777 (octal), both inclusive';
const PROTOCOLS = ['SCTP', 'TCP', 'UDP'];

// ---- volumes -----------------------------------------------------------------------------------

function pathNoBacksteps(p: string, field: string): StatusCause[] {
  return p.split('/').includes('..') ? [fe.invalid(field, p, "must not contain '..'")] : [];
}

function localDescendingPath(p: string, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  if (p.startsWith('/')) out.push(fe.invalid(field, p, 'must be a relative path'));
  out.push(...pathNoBacksteps(p, field));
  return out;
}

function localNonReservedPath(p: string, field: string): StatusCause[] {
  const out = localDescendingPath(p, field);
  if (p.startsWith('..') && !p.startsWith('../')) out.push(fe.invalid(field, p, "must not start with '..'"));
  return out;
}

function fileMode(mode: unknown, field: string): StatusCause[] {
  return typeof mode === 'number' && (mode > 0o777 || mode < 0) ? [fe.invalid(field, mode, FILE_MODE_ERROR)] : [];
}

function keyToPaths(items: unknown, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  (Array.isArray(items) ? items : []).forEach((kp: Obj, i) => {
    const p = index(field, i);
    if (!kp?.key) out.push(fe.required(child(p, 'key')));
    if (!kp?.path) out.push(fe.required(child(p, 'path')));
    out.push(...localNonReservedPath(String(kp?.path ?? ''), child(p, 'path')));
    out.push(...fileMode(kp?.mode, child(p, 'mode')));
  });
  return out;
}

const HOST_PATH_TYPES = ['', 'BlockDevice', 'CharDevice', 'Directory', 'DirectoryOrCreate', 'File', 'FileOrCreate', 'Socket'];

/** Per-source checks for the sources people use; other sources are accepted as given. */
const VOLUME_SOURCE_CHECKS: Record<string, (src: Obj, field: string) => StatusCause[]> = {
  emptyDir: () => [],
  hostPath: (s, f) => {
    if (!s.path) return [fe.required(child(f, 'path'))];
    const out = pathNoBacksteps(s.path, child(f, 'path'));
    if (s.type !== undefined && s.type !== null && !HOST_PATH_TYPES.includes(s.type)) out.push(fe.notSupported(child(f, 'type'), s.type, HOST_PATH_TYPES));
    return out;
  },
  secret: (s, f) => [
    ...(s.secretName ? [] : [fe.required(child(f, 'secretName'))]),
    ...fileMode(s.defaultMode, child(f, 'defaultMode')),
    ...keyToPaths(s.items, child(f, 'items')),
  ],
  nfs: (s, f) => {
    const out: StatusCause[] = [];
    if (!s.server) out.push(fe.required(child(f, 'server')));
    if (!s.path) out.push(fe.required(child(f, 'path')));
    if (!String(s.path ?? '').startsWith('/')) out.push(fe.invalid(child(f, 'path'), s.path ?? '', 'must be an absolute path'));
    return out;
  },
  persistentVolumeClaim: (s, f) => (s.claimName ? [] : [fe.required(child(f, 'claimName'))]),
  downwardAPI: (s, f) => fileMode(s.defaultMode, child(f, 'defaultMode')),
  configMap: (s, f) => [
    ...(s.name ? [] : [fe.required(child(f, 'name'))]),
    ...fileMode(s.defaultMode, child(f, 'defaultMode')),
    ...keyToPaths(s.items, child(f, 'items')),
  ],
  projected: (s, f) => fileMode(s.defaultMode, child(f, 'defaultMode')),
};

/** Every volume source, in the order Kubernetes checks them (the second one found is the one reported). */
const VOLUME_SOURCES = [
  'emptyDir', 'hostPath', 'gitRepo', 'gcePersistentDisk', 'awsElasticBlockStore', 'secret', 'nfs', 'iscsi',
  'glusterfs', 'flocker', 'persistentVolumeClaim', 'rbd', 'cinder', 'cephfs', 'quobyte', 'downwardAPI', 'fc',
  'flexVolume', 'configMap', 'azureFile', 'vsphereVolume', 'photonPersistentDisk', 'portworxVolume', 'azureDisk',
  'storageos', 'projected', 'scaleIO', 'csi', 'ephemeral', 'image',
];

function validateVolumeSource(vol: Obj, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  let found = 0;
  for (const name of VOLUME_SOURCES) {
    const src = vol[name];
    if (src === undefined || src === null) continue;
    // Kubernetes misspells this one path in its message; keep its spelling.
    const reported = name === 'downwardAPI' ? 'downwarAPI' : name === 'cephfs' ? 'cephFS' : name;
    if (found > 0) { out.push(fe.forbidden(child(field, reported), 'may not specify more than 1 volume type')); continue; }
    found++;
    out.push(...(VOLUME_SOURCE_CHECKS[name]?.(isObj(src) ? src : {}, child(field, name)) ?? []));
  }
  if (found === 0) out.push(fe.required(field, 'must specify a volume type'));
  return out;
}

/** Validates the volumes and returns the names of the valid ones (mounts may refer only to those). */
function validateVolumes(volumes: unknown, field: string): { names: Set<string>; causes: StatusCause[] } {
  const names = new Set<string>();
  const causes: StatusCause[] = [];
  (Array.isArray(volumes) ? volumes : []).forEach((vol: Obj, i) => {
    const p = index(field, i);
    const el = validateVolumeSource(isObj(vol) ? vol : {}, p);
    const name = String(vol?.name ?? '');
    if (!name) el.push(fe.required(child(p, 'name')));
    else el.push(...isDNS1123Label(name).map((m) => fe.invalid(child(p, 'name'), name, m)));
    if (names.has(name)) el.push(fe.duplicate(child(p, 'name'), name));
    if (el.length === 0) names.add(name); else causes.push(...el);
  });
  return { names, causes };
}

// ---- containers ----------------------------------------------------------------------------------

function validateContainerPorts(ports: unknown, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  const names = new Set<string>();
  (Array.isArray(ports) ? ports : []).forEach((port: Obj, i) => {
    const p = index(field, i);
    if (port?.name) {
      const msgs = isValidPortName(port.name);
      if (msgs.length) out.push(...msgs.map((m) => fe.invalid(child(p, 'name'), port.name, m)));
      else if (names.has(port.name)) out.push(fe.duplicate(child(p, 'name'), port.name));
      else names.add(port.name);
    }
    if (!port?.containerPort) out.push(fe.required(child(p, 'containerPort')));
    else out.push(...isValidPortNum(port.containerPort).map((m) => fe.invalid(child(p, 'containerPort'), port.containerPort, m)));
    if (port?.hostPort) out.push(...isValidPortNum(port.hostPort).map((m) => fe.invalid(child(p, 'hostPort'), port.hostPort, m)));
    if (!port?.protocol) out.push(fe.required(child(p, 'protocol')));
    else if (!PROTOCOLS.includes(port.protocol)) out.push(fe.notSupported(child(p, 'protocol'), port.protocol, PROTOCOLS));
  });
  return out;
}

const ENV_FIELD_PATHS = [
  'metadata.name', 'metadata.namespace', 'metadata.uid', 'spec.nodeName', 'spec.serviceAccountName',
  'status.hostIP', 'status.hostIPs', 'status.podIP', 'status.podIPs',
];
const DOWNWARD_FIELD_LABELS = new Set([
  'metadata.annotations', 'metadata.labels', 'metadata.name', 'metadata.namespace', 'metadata.uid', 'spec.nodeName',
  'spec.restartPolicy', 'spec.serviceAccountName', 'spec.schedulerName', 'status.phase', 'status.hostIP',
  'status.hostIPs', 'status.podIP', 'status.podIPs', 'spec.host',
]);

function validateObjectFieldSelector(fs: Obj, field: string): StatusCause[] {
  if (!fs.apiVersion) return [fe.required(child(field, 'apiVersion'))];
  if (!fs.fieldPath) return [fe.required(child(field, 'fieldPath'))];
  if (fs.apiVersion !== 'v1') return [fe.invalid(child(field, 'fieldPath'), fs.fieldPath, `error converting fieldPath: unsupported pod version: ${fs.apiVersion}`)];
  const sub = /^([^[]+)\['(.*)'\]$/.exec(fs.fieldPath);
  if (sub) {
    if (sub[1] === 'metadata.annotations') return isQualifiedName(sub[2].toLowerCase()).map((m) => fe.invalid(field, sub[2].toLowerCase(), m));
    if (sub[1] === 'metadata.labels') return isQualifiedName(sub[2]).map((m) => fe.invalid(field, sub[2], m));
    return [fe.invalid(child(field, 'fieldPath'), fs.fieldPath, `error converting fieldPath: field label does not support subscript: ${fs.fieldPath}`)];
  }
  if (!DOWNWARD_FIELD_LABELS.has(fs.fieldPath)) {
    return [fe.invalid(child(field, 'fieldPath'), fs.fieldPath, `error converting fieldPath: field label not supported: ${fs.fieldPath}`)];
  }
  const path = fs.fieldPath === 'spec.host' ? 'spec.nodeName' : fs.fieldPath;
  return ENV_FIELD_PATHS.includes(path) ? [] : [fe.notSupported(child(field, 'fieldPath'), path, ENV_FIELD_PATHS)];
}

function validateKeySelector(s: Obj, field: string): StatusCause[] {
  const out = isDNS1123Subdomain(String(s.name ?? '')).map((m) => fe.invalid(child(field, 'name'), String(s.name ?? ''), m));
  if (!s.key) out.push(fe.required(child(field, 'key')));
  else out.push(...isConfigMapKey(s.key).map((m) => fe.invalid(child(field, 'key'), s.key, m)));
  return out;
}

function validateEnv(env: unknown, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  (Array.isArray(env) ? env : []).forEach((ev: Obj, i) => {
    const p = index(field, i);
    if (!ev?.name) out.push(fe.required(child(p, 'name')));
    else out.push(...isRelaxedEnvVarName(ev.name).map((m) => fe.invalid(child(p, 'name'), ev.name, m)));
    const from = ev?.valueFrom;
    if (!isObj(from)) return;
    const vf = child(p, 'valueFrom');
    let sources = 0;
    if (isObj(from.fieldRef)) { sources++; out.push(...validateObjectFieldSelector(from.fieldRef, child(vf, 'fieldRef'))); }
    if (isObj(from.resourceFieldRef)) { sources++; if (!from.resourceFieldRef.resource) out.push(fe.required(child(vf, 'resourceFieldRef', 'resource'))); }
    if (isObj(from.configMapKeyRef)) { sources++; out.push(...validateKeySelector(from.configMapKeyRef, child(vf, 'configMapKeyRef'))); }
    if (isObj(from.secretKeyRef)) { sources++; out.push(...validateKeySelector(from.secretKeyRef, child(vf, 'secretKeyRef'))); }
    if (sources === 0) out.push(fe.invalid(vf, '', 'must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`'));
    else if (ev.value) out.push(fe.invalid(vf, '', 'may not be specified when `value` is not empty'));
    else if (sources > 1) out.push(fe.invalid(vf, '', 'may not have more than one field specified at a time'));
  });
  return out;
}

function validateEnvFrom(envFrom: unknown, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  (Array.isArray(envFrom) ? envFrom : []).forEach((ev: Obj, i) => {
    const p = index(field, i);
    if (ev?.prefix) out.push(...isRelaxedEnvVarName(ev.prefix).map((m) => fe.invalid(child(p, 'prefix'), ev.prefix, m)));
    let sources = 0;
    for (const ref of ['configMapRef', 'secretRef']) {
      if (!isObj(ev?.[ref])) continue;
      sources++;
      const name = ev[ref].name;
      if (!name) out.push(fe.required(child(p, ref, 'name')));
      else out.push(...isDNS1123Subdomain(name).map((m) => fe.invalid(child(p, ref, 'name'), name, m)));
    }
    if (sources === 0) out.push(fe.invalid(field, '', 'must specify one of: `configMapRef` or `secretRef`'));
    else if (sources > 1) out.push(fe.invalid(field, '', 'may not have more than one field specified at a time'));
  });
  return out;
}

function validateVolumeMounts(mounts: unknown, volumes: Set<string>, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  const paths = new Set<string>();
  (Array.isArray(mounts) ? mounts : []).forEach((m: Obj, i) => {
    const p = index(field, i);
    const name = String(m?.name ?? '');
    if (!name) out.push(fe.required(child(p, 'name')));
    if (!volumes.has(name)) out.push(fe.notFound(child(p, 'name'), name));
    if (!m?.mountPath) out.push(fe.required(child(p, 'mountPath')));
    if (paths.has(m?.mountPath)) out.push(fe.invalid(child(p, 'mountPath'), m.mountPath, 'must be unique'));
    paths.add(m?.mountPath);
    // Kubernetes reports sub-path problems against the list, not the item.
    if (m?.subPath) out.push(...localDescendingPath(m.subPath, child(field, 'subPath')));
    if (m?.subPathExpr) {
      if (m.subPath) out.push(fe.invalid(child(p, 'subPathExpr'), m.subPathExpr, 'subPathExpr and subPath are mutually exclusive'));
      out.push(...localDescendingPath(m.subPathExpr, child(field, 'subPathExpr')));
    }
  });
  return out;
}

const PULL_POLICIES = ['Always', 'IfNotPresent', 'Never'];
const STANDARD_CONTAINER_RESOURCES = new Set(['cpu', 'memory', 'ephemeral-storage']);

function validateResourceName(name: string, field: string): StatusCause[] {
  const out = isQualifiedName(name).map((m) => fe.invalid(field, name, m));
  if (!name.includes('/') && !STANDARD_CONTAINER_RESOURCES.has(name) && !name.startsWith('hugepages-')) {
    out.push(fe.invalid(field, name, 'must be a standard resource for containers'));
  }
  return out;
}

function validateResources(res: unknown, field: string): StatusCause[] {
  if (!isObj(res)) return [];
  const out: StatusCause[] = [];
  const limits = isObj(res.limits) ? res.limits : {};
  const requests = isObj(res.requests) ? res.requests : {};
  const check = (list: Obj, listField: string) => {
    for (const [name, q] of Object.entries(list)) {
      const p = key(listField, name);
      out.push(...validateResourceName(name, p));
      const v = quantityNanos(q);
      if (v === undefined) out.push(fe.invalid(p, String(q), QUANTITY_FORMAT_ERROR));
      else if (v < 0n) out.push(fe.invalid(p, String(q), IS_NEGATIVE));
    }
  };
  check(limits, child(field, 'limits'));
  check(requests, child(field, 'requests'));
  for (const [name, q] of Object.entries(requests)) {
    if (!(name in limits)) continue;
    const req = quantityNanos(q);
    const lim = quantityNanos(limits[name]);
    if (req !== undefined && lim !== undefined && req > lim) {
      out.push(fe.invalid(child(field, 'requests'), String(q), `must be less than or equal to ${name} limit of ${String(limits[name])}`));
    }
  }
  return out;
}

function validatePortNumOrName(port: unknown, field: string): StatusCause[] {
  if (typeof port === 'number') return isValidPortNum(port).map((m) => fe.invalid(field, port, m));
  if (typeof port === 'string') return isValidPortName(port).map((m) => fe.invalid(field, port, m));
  return [fe.invalid(field, 0, inclusiveRangeError(1, 65535))];
}

/** Probe and lifecycle handlers; `types` lists the handler kinds allowed in this place. */
function validateHandler(h: Obj, types: string[], field: string): StatusCause[] {
  const out: StatusCause[] = [];
  let found = 0;
  for (const t of types) {
    if (!isObj(h[t])) continue;
    if (found++ > 0) { out.push(fe.forbidden(child(field, t), 'may not specify more than 1 handler type')); continue; }
    const p = child(field, t);
    if (t === 'exec' && !(Array.isArray(h.exec.command) && h.exec.command.length)) out.push(fe.required(child(p, 'command')));
    if (t === 'httpGet') {
      if (!h.httpGet.path) out.push(fe.required(child(p, 'path')));
      out.push(...validatePortNumOrName(h.httpGet.port, child(p, 'port')));
      if (!['HTTP', 'HTTPS'].includes(h.httpGet.scheme)) out.push(fe.notSupported(child(p, 'scheme'), h.httpGet.scheme ?? '', ['HTTP', 'HTTPS']));
    }
    if (t === 'tcpSocket') out.push(...validatePortNumOrName(h.tcpSocket.port, child(p, 'port')));
    if (t === 'grpc') out.push(...validatePortNumOrName(h.grpc.port ?? 0, child(p, 'port')));
  }
  if (found === 0) out.push(fe.required(field, 'must specify a handler type'));
  return out;
}

const PROBE_HANDLERS = ['exec', 'httpGet', 'tcpSocket', 'grpc'];
const LIFECYCLE_HANDLERS = ['exec', 'httpGet', 'tcpSocket', 'sleep'];

function validateProbe(probe: unknown, kind: 'liveness' | 'readiness' | 'startup', field: string): StatusCause[] {
  if (!isObj(probe)) return [];
  const out = validateHandler(probe, PROBE_HANDLERS, field);
  for (const f of ['initialDelaySeconds', 'timeoutSeconds', 'periodSeconds', 'successThreshold', 'failureThreshold']) {
    out.push(...nonNegative(probe[f], child(field, f)));
  }
  if (typeof probe.terminationGracePeriodSeconds === 'number' && probe.terminationGracePeriodSeconds <= 0) {
    out.push(fe.invalid(child(field, 'terminationGracePeriodSeconds'), probe.terminationGracePeriodSeconds, 'must be greater than 0'));
  }
  if (kind !== 'readiness' && probe.successThreshold !== undefined && probe.successThreshold !== 1) {
    out.push(fe.invalid(child(field, 'successThreshold'), probe.successThreshold, 'must be 1'));
  }
  if (kind === 'readiness' && probe.terminationGracePeriodSeconds !== undefined) {
    out.push(fe.invalid(child(field, 'terminationGracePeriodSeconds'), probe.terminationGracePeriodSeconds, 'must not be set for readinessProbes'));
  }
  return out;
}

function validateLifecycle(lc: unknown, field: string): StatusCause[] {
  if (!isObj(lc)) return [];
  const out: StatusCause[] = [];
  for (const hook of ['postStart', 'preStop']) {
    if (isObj(lc[hook])) out.push(...validateHandler(lc[hook], LIFECYCLE_HANDLERS, child(field, hook)));
  }
  return out;
}

function validateContainerCommon(c: Obj, volumes: Set<string>, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  if (!c.name) out.push(fe.required(child(field, 'name')));
  else out.push(...isDNS1123Label(c.name).map((m) => fe.invalid(child(field, 'name'), c.name, m)));
  if (!c.image) out.push(fe.required(child(field, 'image')));
  const tmp = c.terminationMessagePolicy;
  if (!tmp) out.push(fe.required(child(field, 'terminationMessagePolicy')));
  else if (tmp !== 'File' && tmp !== 'FallbackToLogsOnError') out.push(fe.notSupported(child(field, 'terminationMessagePolicy'), tmp, ['File', 'FallbackToLogsOnError']));
  out.push(...validateContainerPorts(c.ports, child(field, 'ports')));
  out.push(...validateEnv(c.env, child(field, 'env')));
  out.push(...validateEnvFrom(c.envFrom, child(field, 'envFrom')));
  out.push(...validateVolumeMounts(c.volumeMounts, volumes, child(field, 'volumeMounts')));
  if (!c.imagePullPolicy) out.push(fe.required(child(field, 'imagePullPolicy')));
  else if (!PULL_POLICIES.includes(c.imagePullPolicy)) out.push(fe.notSupported(child(field, 'imagePullPolicy'), c.imagePullPolicy, PULL_POLICIES));
  out.push(...validateResources(c.resources, child(field, 'resources')));
  return out;
}

function hostPortConflicts(containers: Obj[], field: string): StatusCause[] {
  const out: StatusCause[] = [];
  const seen = new Set<string>();
  containers.forEach((c, ci) => (Array.isArray(c.ports) ? c.ports : []).forEach((port: Obj, pi: number) => {
    if (!port?.hostPort) return;
    const k = `${port.protocol ?? ''}/${port.hostIP ?? ''}/${port.hostPort}`;
    if (seen.has(k)) out.push(fe.duplicate(child(index(child(index(field, ci), 'ports'), pi), 'hostPort'), k));
    seen.add(k);
  }));
  return out;
}

function validateContainers(containers: Obj[], volumes: Set<string>, field: string): StatusCause[] {
  if (containers.length === 0) return [fe.required(field)];
  const out: StatusCause[] = [];
  const names = new Set<string>();
  containers.forEach((c, i) => {
    const p = index(field, i);
    out.push(...validateContainerCommon(c, volumes, p));
    if (names.has(c.name)) out.push(fe.duplicate(child(p, 'name'), c.name)); else names.add(c.name);
    out.push(...validateLifecycle(c.lifecycle, child(p, 'lifecycle')));
    out.push(...validateProbe(c.livenessProbe, 'liveness', child(p, 'livenessProbe')));
    out.push(...validateProbe(c.readinessProbe, 'readiness', child(p, 'readinessProbe')));
    out.push(...validateProbe(c.startupProbe, 'startup', child(p, 'startupProbe')));
    if (c.restartPolicy !== undefined) out.push(fe.forbidden(child(p, 'restartPolicy'), 'may not be set for non-init containers'));
  });
  out.push(...hostPortConflicts(containers, field));
  return out;
}

function validateInitContainers(inits: Obj[], regular: Obj[], volumes: Set<string>, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  const names = new Set(regular.map((c) => c.name));
  inits.forEach((c, i) => {
    const p = index(field, i);
    out.push(...validateContainerCommon(c, volumes, p));
    const sidecar = c.restartPolicy === 'Always';
    if (c.restartPolicy !== undefined && !sidecar) out.push(fe.notSupported(child(p, 'restartPolicy'), c.restartPolicy, ['Always']));
    if (names.has(c.name)) out.push(fe.duplicate(child(p, 'name'), c.name)); else if (c.name) names.add(c.name);
    out.push(...hostPortConflicts([c], field));
    if (sidecar) {
      out.push(...validateLifecycle(c.lifecycle, child(p, 'lifecycle')));
      out.push(...validateProbe(c.livenessProbe, 'liveness', child(p, 'livenessProbe')));
      out.push(...validateProbe(c.readinessProbe, 'readiness', child(p, 'readinessProbe')));
      out.push(...validateProbe(c.startupProbe, 'startup', child(p, 'startupProbe')));
    } else {
      for (const f of ['lifecycle', 'livenessProbe', 'readinessProbe', 'startupProbe']) {
        if (c[f] !== undefined) out.push(fe.forbidden(child(p, f), 'may not be set for init containers without restartPolicy=Always'));
      }
    }
  });
  return out;
}

/**
 * Fields of a container an ephemeral container may not set (in the Container struct's order, as
 * Kubernetes reports them): nothing that makes the pod depend on it or changes its resources.
 */
const EPHEMERAL_FORBIDDEN = ['ports', 'resources', 'resizePolicy', 'restartPolicy', 'livenessProbe', 'readinessProbe', 'startupProbe', 'lifecycle'];
const EPHEMERAL_FORBIDDEN_DETAIL = 'cannot be set for an Ephemeral Container';

const isZero = (v: unknown): boolean =>
  v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0) || (isObj(v) && Object.values(v).every(isZero));

function validateEphemeralContainers(ephemeral: Obj[], containers: Obj[], inits: Obj[], volumes: Set<string>, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  const others = new Set([...containers, ...inits].map((c) => c.name));
  const all = new Set(others);
  ephemeral.forEach((c, i) => {
    const p = index(field, i);
    out.push(...validateContainerCommon(c, volumes, p));
    if (typeof c.image === 'string' && c.image.trim() !== c.image) out.push(fe.invalid(child(p, 'image'), c.image, 'must not have leading or trailing whitespace'));
    // Names are unique across every kind of container (attach and logs select by name).
    if (all.has(c.name)) out.push(fe.duplicate(child(p, 'name'), c.name)); else all.add(c.name);
    if (c.targetContainerName && !others.has(c.targetContainerName)) out.push(fe.notFound(child(p, 'targetContainerName'), c.targetContainerName));
    for (const f of EPHEMERAL_FORBIDDEN) if (!isZero(c[f])) out.push(fe.forbidden(child(p, f), EPHEMERAL_FORBIDDEN_DETAIL));
    // subPath mounts are bind mounts that outlive the container until the pod goes.
    (Array.isArray(c.volumeMounts) ? c.volumeMounts : []).forEach((m: Obj, j: number) => {
      if (m?.subPath) out.push(fe.forbidden(child(index(child(p, 'volumeMounts'), j), 'subPath'), EPHEMERAL_FORBIDDEN_DETAIL));
      if (m?.subPathExpr) out.push(fe.forbidden(child(index(child(p, 'volumeMounts'), j), 'subPathExpr'), EPHEMERAL_FORBIDDEN_DETAIL));
    });
  });
  return out;
}

/**
 * A write through `pods/ephemeralcontainers`: ephemeral containers may be added, never changed or
 * removed (they run once and their status is their record). The rest of the spec is the old one.
 */
export function validateEphemeralContainersUpdate(pod: Obj, old: Obj): StatusCause[] {
  if (old.metadata?.annotations?.['kubernetes.io/config.mirror'] !== undefined) {
    return [fe.forbidden('', 'static pods do not support ephemeral containers')];
  }
  const out = validatePodSpec(pod.spec, 'spec', { isPod: true });
  const byName = new Map<string, Obj>();
  for (const c of Array.isArray(pod.spec?.ephemeralContainers) ? pod.spec.ephemeralContainers : []) if (isObj(c)) byName.set(c.name, c);
  for (const c of Array.isArray(old.spec?.ephemeralContainers) ? old.spec.ephemeralContainers : []) {
    const now = byName.get(c.name);
    if (!now) out.push(fe.forbidden('spec.ephemeralContainers', `existing ephemeral containers ${JSON.stringify(c.name)} may not be removed\n`));
    else if (!semanticEqual(now, c)) out.push(fe.forbidden('spec.ephemeralContainers', `existing ephemeral containers ${JSON.stringify(c.name)} may not be changed\n`));
  }
  return out;
}

// ---- the pod spec --------------------------------------------------------------------------------

const RESTART_POLICIES = ['Always', 'OnFailure', 'Never'];
const DNS_POLICIES = ['ClusterFirstWithHostNet', 'ClusterFirst', 'Default', 'None'];
const TAINT_EFFECTS = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

export function validateTaintEffect(effect: unknown, allowEmpty: boolean, field: string): StatusCause[] {
  if (!allowEmpty && !effect) return [fe.required(field)];
  return TAINT_EFFECTS.includes(effect as string) ? [] : [fe.notSupported(field, String(effect ?? ''), TAINT_EFFECTS)];
}

export function validateTolerations(tolerations: unknown, field: string): StatusCause[] {
  const out: StatusCause[] = [];
  (Array.isArray(tolerations) ? tolerations : []).forEach((t: Obj, i) => {
    const p = index(field, i);
    const op = t?.operator ?? '';
    if (t?.key) out.push(...validateLabelName(t.key, child(p, 'key')));
    if (!t?.key && op !== 'Exists') {
      out.push(fe.invalid(child(p, 'operator'), op, 'operator must be Exists when `key` is empty, which means "match all values and all keys"'));
    }
    if (t?.tolerationSeconds !== undefined && t?.tolerationSeconds !== null && t?.effect !== 'NoExecute') {
      out.push(fe.invalid(child(p, 'effect'), t?.effect ?? '', "effect must be 'NoExecute' when `tolerationSeconds` is set"));
    }
    if (op === 'Equal' || op === '') {
      const errs = isValidLabelValue(String(t?.value ?? ''));
      if (errs.length) out.push(fe.invalid(child(p, 'operator'), String(t?.value ?? ''), errs.join(';')));
    } else if (op === 'Exists') {
      if (t?.value) out.push(fe.invalid(child(p, 'operator'), t.value, "value must be empty when `operator` is 'Exists'"));
    } else {
      out.push(fe.notSupported(child(p, 'operator'), op, ['Equal', 'Exists']));
    }
    if (t?.effect) out.push(...validateTaintEffect(t.effect, true, child(p, 'effect')));
  });
  return out;
}

function nameFormat(value: unknown, check: (v: string) => string[], field: string): StatusCause[] {
  return typeof value === 'string' && value ? check(value).map((m) => fe.invalid(field, value, m)) : [];
}

export interface PodSpecOptions {
  /** The spec belongs to a Pod (not a template): hostNetwork ports must be explicit. */
  isPod?: boolean;
}

export function validatePodSpec(spec: unknown, field: string, opts: PodSpecOptions = {}): StatusCause[] {
  const s: Obj = isObj(spec) ? spec : {};
  const out: StatusCause[] = [];
  if (s.terminationGracePeriodSeconds === undefined || s.terminationGracePeriodSeconds === null) {
    out.push(fe.required(child(field, 'terminationGracePeriodSeconds')));
  } else {
    out.push(...nonNegative(s.terminationGracePeriodSeconds, child(field, 'terminationGracePeriodSeconds')));
  }
  const { names: volumes, causes } = validateVolumes(s.volumes, child(field, 'volumes'));
  out.push(...causes);
  const containers: Obj[] = (Array.isArray(s.containers) ? s.containers : []).map((c: unknown) => (isObj(c) ? c : {}));
  const inits: Obj[] = (Array.isArray(s.initContainers) ? s.initContainers : []).map((c: unknown) => (isObj(c) ? c : {}));
  out.push(...validateContainers(containers, volumes, child(field, 'containers')));
  out.push(...validateInitContainers(inits, containers, volumes, child(field, 'initContainers')));
  const ephemeral: Obj[] = (Array.isArray(s.ephemeralContainers) ? s.ephemeralContainers : []).map((c: unknown) => (isObj(c) ? c : {}));
  out.push(...validateEphemeralContainers(ephemeral, containers, inits, volumes, child(field, 'ephemeralContainers')));
  if (s.hostNetwork === true) {
    containers.forEach((c, i) => (Array.isArray(c.ports) ? c.ports : []).forEach((port: Obj, j: number) => {
      const hp = port?.hostPort ?? 0;
      if ((opts.isPod || hp !== 0) && hp !== port?.containerPort) {
        out.push(fe.invalid(child(index(child(index(child(field, 'containers'), i), 'ports'), j), 'hostPort'), hp, 'must match `containerPort` when `hostNetwork` is true'));
      }
    }));
  }
  if (!s.restartPolicy) out.push(fe.required(child(field, 'restartPolicy')));
  else if (!RESTART_POLICIES.includes(s.restartPolicy)) out.push(fe.notSupported(child(field, 'restartPolicy'), s.restartPolicy, RESTART_POLICIES));
  if (!s.dnsPolicy) out.push(fe.required(child(field, 'dnsPolicy')));
  else if (!DNS_POLICIES.includes(s.dnsPolicy)) out.push(fe.notSupported(child(field, 'dnsPolicy'), s.dnsPolicy, DNS_POLICIES));
  out.push(...validateLabels(s.nodeSelector, child(field, 'nodeSelector')));
  (Array.isArray(s.imagePullSecrets) ? s.imagePullSecrets : []).forEach((ref: Obj, i: number) => {
    if (isObj(ref) && Object.keys(ref).some((k) => k !== 'name')) out.push(fe.invalid(index(child(field, 'imagePullSecrets'), i), null, 'only name may be set'));
  });
  if (s.dnsPolicy === 'None') {
    if (!isObj(s.dnsConfig)) out.push(fe.required(child(field, 'dnsConfig'), 'must provide `dnsConfig` when `dnsPolicy` is None'));
    else if (!(Array.isArray(s.dnsConfig.nameservers) && s.dnsConfig.nameservers.length)) out.push(fe.required(child(field, 'dnsConfig', 'nameservers'), 'must provide at least one DNS nameserver when `dnsPolicy` is None'));
  }
  if (isObj(s.dnsConfig) && Array.isArray(s.dnsConfig.nameservers)) {
    s.dnsConfig.nameservers.forEach((ns: unknown, i: number) => {
      if (!net.isIP(String(ns))) out.push(fe.invalid(index(child(field, 'dnsConfig', 'nameservers'), i), String(ns), 'must be a valid IP address, (e.g. 10.9.8.7 or 2001:db8::ffff)'));
    });
  }
  out.push(...nameFormat(s.serviceAccountName, isDNS1123Subdomain, child(field, 'serviceAccountName')));
  out.push(...nameFormat(s.nodeName, isDNS1123Subdomain, child(field, 'nodeName')));
  if (typeof s.activeDeadlineSeconds === 'number' && (s.activeDeadlineSeconds < 1 || s.activeDeadlineSeconds > MAX_INT32)) {
    out.push(fe.invalid(child(field, 'activeDeadlineSeconds'), s.activeDeadlineSeconds, inclusiveRangeError(1, MAX_INT32)));
  }
  out.push(...nameFormat(s.hostname, isDNS1123Label, child(field, 'hostname')));
  out.push(...nameFormat(s.subdomain, isDNS1123Label, child(field, 'subdomain')));
  out.push(...validateTolerations(s.tolerations, child(field, 'tolerations')));
  out.push(...nameFormat(s.priorityClassName, isDNS1123Subdomain, child(field, 'priorityClassName')));
  return out;
}

/** A pod template: its metadata's labels and annotations, then its spec. */
export function validatePodTemplateSpec(template: unknown, field: string): StatusCause[] {
  const t: Obj = isObj(template) ? template : {};
  const meta: Obj = isObj(t.metadata) ? t.metadata : {};
  const out = [
    ...validateLabels(meta.labels, child(field, 'labels')),
    ...validateAnnotations(meta.annotations, child(field, 'annotations')),
    ...validatePodSpec(t.spec, child(field, 'spec')),
  ];
  if (Array.isArray(t.spec?.ephemeralContainers) && t.spec.ephemeralContainers.length) {
    out.push(fe.forbidden(child(field, 'spec', 'ephemeralContainers'), 'ephemeral containers not allowed in pod template'));
  }
  return out;
}

// ---- Pods ----------------------------------------------------------------------------------------

/** Pod-only checks on top of the spec (a Pod, unlike a template, is about to run). */
export function validatePodCreateSpec(pod: Obj): StatusCause[] {
  const spec: Obj = isObj(pod.spec) ? pod.spec : {};
  const out = validatePodSpec(spec, 'spec', { isPod: true });
  for (const list of ['containers', 'initContainers']) {
    (Array.isArray(spec[list]) ? spec[list] : []).forEach((c: Obj, i: number) => {
      if (typeof c?.image === 'string' && c.image.trim() !== c.image) {
        out.push(fe.invalid(child(index(child('spec', list), i), 'image'), c.image, 'must not have leading or trailing whitespace'));
      }
    });
  }
  return out;
}

const UPDATABLE_POD_FIELDS = [
  '`spec.containers[*].image`',
  '`spec.initContainers[*].image`',
  '`spec.activeDeadlineSeconds`',
  '`spec.tolerations` (only additions to existing tolerations)',
  '`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)',
];

/** What a Pod update may change: images, a shorter deadline, more tolerations, fewer scheduling gates. */
export function validatePodSpecUpdate(spec: Obj, old: Obj): StatusCause[] {
  const out: StatusCause[] = [];
  for (const list of ['containers', 'initContainers']) {
    const now = Array.isArray(spec[list]) ? spec[list] : [];
    const before = Array.isArray(old[list]) ? old[list] : [];
    if (now.length !== before.length) return [...out, fe.forbidden(child('spec', list), 'pod updates may not add or remove containers')];
  }
  const ads = spec.activeDeadlineSeconds;
  if (typeof ads === 'number') {
    if (ads < 0 || ads > MAX_INT32) return [...out, fe.invalid('spec.activeDeadlineSeconds', ads, inclusiveRangeError(0, MAX_INT32))];
    if (typeof old.activeDeadlineSeconds === 'number' && old.activeDeadlineSeconds < ads) {
      return [...out, fe.invalid('spec.activeDeadlineSeconds', ads, 'must be less than or equal to previous value')];
    }
  } else if (typeof old.activeDeadlineSeconds === 'number') {
    out.push(fe.invalid('spec.activeDeadlineSeconds', null, 'must not update from a positive integer to nil value'));
  }
  const oldTolerations: Obj[] = Array.isArray(old.tolerations) ? old.tolerations : [];
  const newTolerations: Obj[] = Array.isArray(spec.tolerations) ? spec.tolerations : [];
  for (const t of oldTolerations) {
    // tolerationSeconds is the one field of an existing toleration that may change.
    if (!newTolerations.some((n) => semanticEqual({ ...n, tolerationSeconds: undefined }, { ...t, tolerationSeconds: undefined }))) {
      out.push(fe.forbidden('spec.tolerations', 'existing toleration can not be modified except its tolerationSeconds'));
      break;
    }
  }
  // Compare what is left once the updatable fields are taken from the old spec.
  const munged: Obj = structuredClone(spec);
  for (const list of ['containers', 'initContainers']) {
    (munged[list] ?? []).forEach((c: Obj, i: number) => { c.image = old[list][i]?.image; });
  }
  munged.activeDeadlineSeconds = old.activeDeadlineSeconds;
  munged.tolerations = old.tolerations;
  munged.schedulingGates = old.schedulingGates;
  if (typeof old.terminationGracePeriodSeconds === 'number' && old.terminationGracePeriodSeconds < 0 && munged.terminationGracePeriodSeconds === 1) {
    munged.terminationGracePeriodSeconds = old.terminationGracePeriodSeconds;
  }
  if (!semanticEqual(munged, old)) {
    out.push(fe.forbidden('spec', `pod updates may not change fields other than ${UPDATABLE_POD_FIELDS.join(',')}`));
  }
  return out;
}
