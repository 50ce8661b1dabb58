// What the managed-fields bookkeeping costs one write (issue 15): `updateManagedFields` for a pod
// status update (or, with `--kind lease`, a kubelet's Lease renewal), the old object as the watch
// cache holds it (parsed, frozen, shared). The pod's managed fields are made by the same code:
// created by a controller, bound, its status reported. `--objects N` cycles through N stored
// objects of the same content, as a server with N nodes renews N Leases with equal managed fields.
// Prints µs per update, best and median of ten rounds of 5,000, and a summary line.
//   node --import tsx bench/managed-fields.ts [--rounds 10] [--updates 5000] [--kind pod|lease] [--objects 1]
import { loadSchemaSet } from '../src/api/schema.js';
import { updateManagedFields } from '../src/apiserver/patch/index.js';
import { storedFromKv } from '../src/storage/stored.js';

interface Options { rounds: number; updates: number; kind: 'pod' | 'lease'; objects: number }

function parseArgs(argv: string[]): Options {
  const o: Options = { rounds: 10, updates: 5000, kind: 'pod', objects: 1 };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') {
      console.log('usage: node --import tsx bench/managed-fields.ts [--rounds 10] [--updates 5000] [--kind pod|lease] [--objects 1]');
      process.exit(0);
    }
    const v = argv[++i];
    if (flag === '--kind') {
      if (v !== 'pod' && v !== 'lease') throw new Error(`--kind: expected pod or lease, got ${v}`);
      o.kind = v;
      continue;
    }
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`${flag}: expected a positive integer, got ${v}`);
    if (flag === '--rounds') o.rounds = n;
    else if (flag === '--updates') o.updates = n;
    else if (flag === '--objects') o.objects = n;
    else throw new Error(`unknown option ${flag}`);
  }
  return o;
}

const schemas = loadSchemaSet();
const podSchema = schemas.forKind('', 'v1', 'Pod');
const leaseSchema = schemas.forKind('coordination.k8s.io', 'v1', 'Lease');
const at = (s: number) => `2026-12-05T22:00:${String(s % 60).padStart(2, '0')}Z`;
type Pod = Record<string, any>;

function write(old: Pod | undefined, next: Pod, manager: string, subresource: string | undefined, time: string, schema = podSchema, apiVersion = 'v1'): Pod {
  next.metadata.managedFields = updateManagedFields(old as never, next as never, { manager, apiVersion, subresource, time, schema, schemas });
  return next;
}

/** A ReplicaSet's pod as the cache holds it once Running: three managers, frozen and shared. */
function runningPod(): Pod {
  const created = write(undefined, {
    apiVersion: 'v1', kind: 'Pod',
    metadata: {
      name: 'web-7c9f8b6d5-abcde', generateName: 'web-7c9f8b6d5-', namespace: 'default', uid: '0b6c3c1e-8f7a-4f2e-9d3c-1a2b3c4d5e6f',
      labels: { app: 'web', 'pod-template-hash': '7c9f8b6d5' },
      ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'web-7c9f8b6d5', uid: '1b6c3c1e-8f7a-4f2e-9d3c-1a2b3c4d5e6f', controller: true, blockOwnerDeletion: true }],
    },
    spec: {
      volumes: [{ name: 'kube-api-access-x7k2p', projected: { defaultMode: 420, sources: [
        { serviceAccountToken: { expirationSeconds: 3607, path: 'token' } },
        { configMap: { name: 'kube-root-ca.crt', items: [{ key: 'ca.crt', path: 'ca.crt' }] } },
        { downwardAPI: { items: [{ path: 'namespace', fieldRef: { apiVersion: 'v1', fieldPath: 'metadata.namespace' } }] } }] } }],
      containers: [{ name: 'app', image: 'registry.k8s.io/pause:3.9', resources: { requests: { cpu: '10m' } },
        volumeMounts: [{ name: 'kube-api-access-x7k2p', readOnly: true, mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }],
        terminationMessagePath: '/dev/termination-log', terminationMessagePolicy: 'File', imagePullPolicy: 'IfNotPresent' }],
      restartPolicy: 'Always', terminationGracePeriodSeconds: 30, dnsPolicy: 'ClusterFirst', serviceAccountName: 'default',
      securityContext: {}, schedulerName: 'default-scheduler', enableServiceLinks: true, preemptionPolicy: 'PreemptLowerPriority', priority: 0,
      tolerations: [
        { key: 'node.kubernetes.io/not-ready', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 },
        { key: 'node.kubernetes.io/unreachable', operator: 'Exists', effect: 'NoExecute', tolerationSeconds: 300 }],
    },
    status: { phase: 'Pending', qosClass: 'Burstable' },
  }, 'kube-controller-manager', undefined, at(0));
  const bound = structuredClone(created);
  bound.status.conditions = [{ type: 'PodScheduled', status: 'True', lastProbeTime: null, lastTransitionTime: at(1) }];
  write(created, bound, 'kube-scheduler', 'status', at(1));
  const running = structuredClone(bound);
  running.status = { ...running.status, phase: 'Running', hostIP: '10.0.0.3', podIP: '10.64.3.7', podIPs: [{ ip: '10.64.3.7' }], startTime: at(2),
    conditions: [...running.status.conditions,
      { type: 'Initialized', status: 'True', lastProbeTime: null, lastTransitionTime: at(2) },
      { type: 'Ready', status: 'True', lastProbeTime: null, lastTransitionTime: at(2) },
      { type: 'ContainersReady', status: 'True', lastProbeTime: null, lastTransitionTime: at(2) }],
    containerStatuses: [{ name: 'app', ready: true, started: true, restartCount: 0, image: 'registry.k8s.io/pause:3.9', imageID: 'sha256:abc',
      containerID: 'containerd://abc', state: { running: { startedAt: at(2) } }, lastState: {} }] };
  write(bound, running, 'skiff-agent', 'status', at(2));
  return running;
}

/** A node's Lease after its kubelet created and renewed it. */
function renewedLease(): Pod {
  const created = write(undefined, {
    apiVersion: 'coordination.k8s.io/v1', kind: 'Lease',
    metadata: { name: 'node-1', namespace: 'kube-node-lease', uid: '2b6c3c1e-8f7a-4f2e-9d3c-1a2b3c4d5e6f',
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: 'node-1', uid: '3b6c3c1e-8f7a-4f2e-9d3c-1a2b3c4d5e6f' }] },
    spec: { holderIdentity: 'node-1', leaseDurationSeconds: 40, renewTime: '2026-12-05T22:00:00.000000Z' },
  }, 'skiff-agent', undefined, at(0), leaseSchema, 'coordination.k8s.io/v1');
  const renewed = structuredClone(created);
  renewed.spec.renewTime = '2026-12-05T22:00:10.000000Z';
  return write(created, renewed, 'skiff-agent', undefined, at(10), leaseSchema, 'coordination.k8s.io/v1');
}

/** `n` stored copies of `obj`: equal content, each its own frozen objects, as the watch cache holds n objects. */
function stored(obj: Pod, n: number): Pod[] {
  const text = JSON.stringify(obj);
  return Array.from({ length: n }, (_, i) => storedFromKv({ key: `/k/${i}`, value: text, createRevision: 1, modRevision: 4 } as never).obj as Pod);
}

function main(): void {
  const o = parseArgs(process.argv.slice(2));
  const lease = o.kind === 'lease';
  const olds = stored(lease ? renewedLease() : runningPod(), o.objects);
  const first = olds[0]!;
  console.log(`${o.kind} with ${first.metadata.managedFields.length} managed-fields entries (${first.metadata.managedFields.map((e: Pod) => e.manager).join(', ')}), ${o.objects} stored copies`);
  const opts = lease
    ? { manager: 'skiff-agent', apiVersion: 'coordination.k8s.io/v1', subresource: undefined, schema: leaseSchema, schemas }
    : { manager: 'skiff-agent', apiVersion: 'v1', subresource: 'status', schema: podSchema, schemas };
  const rounds: number[] = [];
  for (let r = 0; r < o.rounds; r++) {
    // Each update changes one time, as a readiness flip or a renewal does; the clone is timed apart.
    const bodies = Array.from({ length: o.updates }, (_, i) => {
      const next = structuredClone(olds[i % olds.length]!);
      if (lease) next.spec.renewTime = `2026-12-05T22:${String(Math.floor(i / 60) % 60).padStart(2, '0')}:${String(i % 60).padStart(2, '0')}.000000Z`;
      else next.status.conditions[2].lastTransitionTime = at(i + 3);
      return next;
    });
    const t0 = performance.now();
    for (let i = 0; i < o.updates; i++) updateManagedFields(olds[i % olds.length] as never, bodies[i] as never, { ...opts, time: at(i + 3) });
    rounds.push(((performance.now() - t0) / o.updates) * 1000);
  }
  const sorted = [...rounds].sort((a, b) => a - b);
  console.log(`per update: best ${sorted[0]!.toFixed(1)} µs, median ${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)} µs, worst ${sorted.at(-1)!.toFixed(1)} µs`);
  console.log(`managed-fields: kind=${o.kind} objects=${o.objects} updates=${o.updates} rounds=${o.rounds} bestUs=${sorted[0]!.toFixed(1)} medianUs=${sorted[Math.floor(sorted.length / 2)]!.toFixed(1)}`);
}

main();
