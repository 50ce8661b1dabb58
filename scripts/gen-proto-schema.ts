// Generator, not loaded by the server: writes `src/apiserver/protobuf/schema.ts` (committed, like every
// generated file: see "Generated files" in README.md) from a Kubernetes source checkout, which no npm
// or Debian package ships, so it cannot run at build time.
//
//   npx tsx scripts/gen-proto-schema.ts <dir> [--check]
//
// where <dir>/k8s.io/api, <dir>/k8s.io/apimachinery and <dir>/k8s.io/kube-aggregator hold those
// kubernetes repositories at K8S_VERSION (e.g. `git clone --branch v0.32.9 ...`).
// --check writes nothing and exits 1 if schema.ts differs from what would be written.
// The output's second line is a stamp: the sha256 of this script and of the output itself, which
// scripts/check-generated.mjs verifies on every test run (no checkout needed), so a hand edit of
// schema.ts, or a change here that was not followed by a rerun, fails the tests.
//
// The wire schema (message names, field numbers, types) comes from the upstream generated.proto
// files; how each field renders as JSON comes from the Go struct it was generated from (types.go),
// because protobuf cannot say it: whether the Go field is a pointer (then a zero value on the wire
// is meaningful), whether its json tag has omitempty, whether it is inlined, and its json name.
// Only messages reachable from ROOTS are kept, with comments stripped, so the output stays small.
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import protobuf from 'protobufjs';

/** The kubernetes/api and kubernetes/apimachinery release schema.ts is made from. */
const K8S_VERSION = 'v0.32.9';

// Kinds decodable from a request body: [source folder, apiVersion, kinds].
const ROOTS: Array<[pkgPath: string, apiVersion: string, kinds: string[]]> = [
  ['api/core/v1', 'v1', ['Namespace', 'Node', 'Pod', 'Binding', 'ComponentStatus', 'Service', 'Endpoints', 'ConfigMap', 'Secret', 'ServiceAccount',
    'Event', 'PersistentVolume', 'PersistentVolumeClaim', 'LimitRange', 'ResourceQuota', 'PodTemplate', 'ReplicationController']],
  ['api/apps/v1', 'apps/v1', ['Deployment', 'ReplicaSet', 'DaemonSet', 'StatefulSet', 'ControllerRevision']],
  ['api/batch/v1', 'batch/v1', ['Job', 'CronJob']],
  ['api/autoscaling/v1', 'autoscaling/v1', ['HorizontalPodAutoscaler', 'Scale']],
  ['api/autoscaling/v2', 'autoscaling/v2', ['HorizontalPodAutoscaler']],
  ['api/policy/v1', 'policy/v1', ['Eviction', 'PodDisruptionBudget']],
  ['api/coordination/v1', 'coordination.k8s.io/v1', ['Lease']],
  ['api/discovery/v1', 'discovery.k8s.io/v1', ['EndpointSlice']],
  ['api/events/v1', 'events.k8s.io/v1', ['Event']],
  ['api/rbac/v1', 'rbac.authorization.k8s.io/v1', ['Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']],
  ['api/storage/v1', 'storage.k8s.io/v1', ['StorageClass', 'CSIDriver', 'CSINode', 'CSIStorageCapacity', 'VolumeAttachment']],
  ['api/networking/v1', 'networking.k8s.io/v1', ['Ingress', 'IngressClass', 'NetworkPolicy']],
  ['api/scheduling/v1', 'scheduling.k8s.io/v1', ['PriorityClass']],
  ['api/authorization/v1', 'authorization.k8s.io/v1', ['SelfSubjectAccessReview', 'SelfSubjectRulesReview', 'SubjectAccessReview', 'LocalSubjectAccessReview']],
  ['api/authentication/v1', 'authentication.k8s.io/v1', ['TokenRequest', 'TokenReview', 'SelfSubjectReview']],
  ['api/authentication/v1beta1', 'authentication.k8s.io/v1beta1', ['SelfSubjectReview']],
  ['api/admissionregistration/v1', 'admissionregistration.k8s.io/v1', ['MutatingWebhookConfiguration', 'ValidatingWebhookConfiguration',
    'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']],
  ['api/certificates/v1', 'certificates.k8s.io/v1', ['CertificateSigningRequest']],
  ['api/node/v1', 'node.k8s.io/v1', ['RuntimeClass']],
  ['api/flowcontrol/v1', 'flowcontrol.apiserver.k8s.io/v1', ['FlowSchema', 'PriorityLevelConfiguration']],
  ['kube-aggregator/pkg/apis/apiregistration/v1', 'apiregistration.k8s.io/v1', ['APIService']],
  // Registered in every group version by Kubernetes; the decoder accepts it under any known one.
  ['apimachinery/pkg/apis/meta/v1', 'meta.k8s.io/v1', ['DeleteOptions']],
  // The envelope around every body (not a kind).
  ['apimachinery/pkg/runtime', '', ['Unknown']],
];

// Go types with their own JSON form (a string, a number or embedded JSON), rendered by decode.ts.
const CUSTOM_JSON = new Set(['Quantity', 'IntOrString', 'Time', 'MicroTime', 'Duration', 'FieldsV1', 'RawExtension']);

interface GoField { json: string; pointer: boolean; omitempty: boolean; inline: boolean }

const check = process.argv.includes('--check');
const src = process.argv.slice(2).find((a) => !a.startsWith('--'));
if (!src) throw new Error(`usage: gen-proto-schema.ts <dir holding k8s.io/{api,apimachinery} at ${K8S_VERSION}> [--check]`);
const k8s = join(src, 'k8s.io');

// Go structs of one package: struct name -> protobuf field number -> how it renders as JSON.
function goStructs(dir: string): { structs: Map<string, Map<number, GoField>>; sliceTypes: Set<string> } {
  const structs = new Map<string, Map<number, GoField>>();
  const sliceTypes = new Set<string>();
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.go') || f.endsWith('_test.go') || f.startsWith('zz_') || f.startsWith('generated')) continue;
    const lines = readFileSync(join(dir, f), 'utf8').split('\n');
    let current: Map<number, GoField> | undefined;
    for (const line of lines) {
      const slice = /^type (\w+) \[\]\w+$/.exec(line);
      if (slice) sliceTypes.add(slice[1]);
      const start = /^type (\w+) struct \{/.exec(line);
      if (start) { current = new Map(); structs.set(start[1], current); continue; }
      if (/^\}/.test(line)) { current = undefined; continue; }
      if (!current) continue;
      const m = /^\s*(?:\w+\s+)?(\S+)\s+`([^`]*)`/.exec(line);
      if (!m) continue;
      const tags = m[2];
      const pb = /protobuf:"[a-z0-9]+,(\d+),/.exec(tags);
      if (!pb) continue;
      const json = /json:"([^"]*)"/.exec(tags)?.[1] ?? '';
      const [name, ...opts] = json.split(',');
      current.set(Number(pb[1]), {
        json: name, pointer: m[1].startsWith('*'), omitempty: opts.includes('omitempty'), inline: opts.includes('inline'),
      });
    }
  }
  return { structs, sliceTypes };
}

const root = new protobuf.Root();
root.resolvePath = (_origin, target) => join(src, target);
root.loadSync(ROOTS.map(([p]) => join('k8s.io', p, 'generated.proto')), { keepCase: true });
root.resolveAll();

const pkgDir = (ns: protobuf.Namespace) => {
  const full = ns.fullName.replace(/^\./, '');
  if (full.startsWith('k8s.io.kube_aggregator.')) return join(k8s, 'kube-aggregator', ...full.slice('k8s.io.kube_aggregator.'.length).split('.'));
  return full.startsWith('k8s.io.api.') ? join(k8s, 'api', ...full.slice('k8s.io.api.'.length).split('.'))
    : join(k8s, 'apimachinery', ...full.slice('k8s.io.apimachinery.'.length).split('.'));
};
/** The protobuf package of a source folder (Go module names with dashes become underscores there). */
const protoPackage = (p: string) => 'k8s.io.' + p.replace(/\//g, '.').replace(/-/g, '_');

// Transitive closure of the message types the roots need.
const keep = new Map<string, protobuf.Type>();
const visit = (t: protobuf.Type) => {
  if (keep.has(t.fullName)) return;
  keep.set(t.fullName, t);
  for (const f of t.fieldsArray) if (f.resolvedType instanceof protobuf.Type) visit(f.resolvedType);
};
for (const [p, , names] of ROOTS) {
  const pkg = protoPackage(p);
  for (const n of names) visit(root.lookupType(pkg + '.' + n));
}

const goCache = new Map<string, ReturnType<typeof goStructs>>();
const byPackage = new Map<string, string[]>();
for (const t of [...keep.values()].sort((a, b) => a.fullName.localeCompare(b.fullName, 'en-US'))) {
  const ns = t.parent as protobuf.Namespace;
  const dir = pkgDir(ns);
  if (!goCache.has(dir)) goCache.set(dir, goStructs(dir));
  const go = goCache.get(dir)!;
  const fields = CUSTOM_JSON.has(t.name) ? undefined : go.structs.get(t.name);
  const lines: string[] = [];
  if (!fields && go.sliceTypes.has(t.name)) lines.push('  option (go) = "list";');
  for (const f of t.fieldsArray) {
    const type = f.resolvedType ? f.resolvedType.fullName : f.type;
    const decl = f.map ? `map<${(f as unknown as protobuf.MapField).keyType}, ${type}>` : `${f.repeated ? 'repeated' : 'optional'} ${type}`;
    const g = fields?.get(f.id);
    const opts: string[] = [];
    if (g) {
      const go: string[] = [];
      if (g.inline) go.push('inline');
      else {
        if (g.pointer) go.push('ptr');
        if (!g.omitempty) go.push('keep');
        if (g.json !== f.name) opts.push(`json_name = "${g.json}"`);
      }
      if (go.length) opts.unshift(`(go) = "${go.join(',')}"`);
    } else if (fields) {
      throw new Error(`${t.fullName}.${f.name}: no Go field with protobuf number ${f.id}`);
    }
    lines.push(`  ${decl} ${f.name} = ${f.id}${opts.length ? ` [${opts.join(', ')}]` : ''};`);
  }
  const pkg = ns.fullName.replace(/^\./, '');
  if (!byPackage.has(pkg)) byPackage.set(pkg, []);
  byPackage.get(pkg)!.push(`message ${t.name} {\n${lines.join('\n')}\n}`);
}

const out: string[] = [
  `// GENERATED by scripts/gen-proto-schema.ts from k8s.io/api, k8s.io/apimachinery and k8s.io/kube-aggregator ${K8S_VERSION} (generated.proto + types.go).`,
  '// Do not edit by hand: rerun the generator. Message names and field numbers are those of Kubernetes;',
  '// the (go) option records how the Go field renders as JSON: ptr = pointer (present means set, even if',
  '// zero), keep = no omitempty (zero values are written), inline = fields merge into the parent object;',
  '// json_name is set where the JSON name differs from the protobuf one. A message with option (go) =',
  '// "list" is a named Go slice (e.g. ExtraValue) and renders as its items array.',
  '',
  'export const PROTO_FILES: Record<string, string> = {',
];
for (const [pkg, msgs] of [...byPackage].sort()) {
  out.push(`  '${pkg}': \`syntax = "proto2";\npackage ${pkg};\n\n${msgs.join('\n\n')}\n\`,`);
}
out.push('};', '');
out.push('/** apiVersion -> kind -> protobuf message (full name). */');
out.push('export const KINDS: Record<string, Record<string, string>> = {');
for (const [p, apiVersion, names] of ROOTS) {
  if (!apiVersion) continue;
  const pkg = protoPackage(p);
  out.push(`  '${apiVersion}': { ${names.map((n) => `${n}: '${pkg}.${n}'`).join(', ')} },`);
}
out.push('};', '');
const self = fileURLToPath(import.meta.url);
const target = join(dirname(self), '..', 'src', 'apiserver', 'protobuf', 'schema.ts');
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');
// The stamp goes in as line 2; its content hash covers every other line (see check-generated.mjs).
const body = out.join('\n');
const lines = body.split('\n');
lines.splice(1, 0, `// stamp: generator ${sha256(readFileSync(self, 'utf8'))} content ${sha256(body)}`);
const text = lines.join('\n');
if (check) {
  let current = '';
  try { current = readFileSync(target, 'utf8'); } catch { /* missing: not current */ }
  if (current !== text) {
    console.error(`gen-proto-schema: ${target} is not what the generator writes from ${src}: rerun without --check and commit it`);
    process.exit(1);
  }
  console.log(`gen-proto-schema: ${target} current (${keep.size} messages)`);
} else {
  writeFileSync(target, text);
  console.log(`wrote ${keep.size} messages in ${byPackage.size} packages to ${target}`);
}
