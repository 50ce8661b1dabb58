// Admission webhooks and CEL end to end with real kubectl against `skiff server` (issue 10): real
// HTTPS webhooks (a separate `node` process, TLS from a CA the test makes with openssl, caBundle in
// the configuration) label ConfigMaps in a selected namespace and deny forbidden ones with their
// message; failurePolicy Ignore vs Fail when the webhook is down; a timeout; a `service` client
// reaching an endpoint on this host's address; a CRD with x-kubernetes-validations (a transition rule
// among them); a ValidatingAdmissionPolicy with a ConfigMap param.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { networkInterfaces } from 'node:os';
import { startServer, freePort, type TestServer } from '../helpers/cluster.js';
import { ok, fails } from '../helpers/kubectl.js';
import { startWebhookServer, type WebhookServer } from '../helpers/webhook-server.js';
import { eventually } from '../helpers/wait.js';

let server: TestServer;
let wh: WebhookServer;
const cleanups: (() => unknown)[] = [];
after(() => { for (const f of cleanups.reverse()) f(); });

before(async () => {
  wh = await startWebhookServer({ after: (f) => cleanups.push(f) });
  server = await startServer();
  ok(await server.kubectl(['create', 'namespace', 'hooked']));
  ok(await server.kubectl(['label', 'namespace', 'hooked', 'webhooks=on']));
});

const apply = (yaml: string) => server.kubectl(['apply', '-f', '-'], { input: yaml });

/** Webhooks are read from the watch cache: wait until one answers before asserting on it. */
async function untilCalled(path: string, probe: () => Promise<unknown>): Promise<void> {
  await eventually(async () => { await probe(); return ((await wh.counts())[path] ?? 0) > 0; }, `the webhook at ${path} called`, 30_000, () => server.logTail());
}

test('a mutating webhook labels ConfigMaps in the selected namespace; a validating webhook denies with its message', async () => {
  ok(await apply(`apiVersion: admissionregistration.k8s.io/v1
kind: MutatingWebhookConfiguration
metadata: {name: add-label}
webhooks:
- name: add-label.skiff.test.io
  clientConfig: {url: "${wh.url('/mutate')}", caBundle: ${wh.caBundle}}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}]
  namespaceSelector: {matchLabels: {webhooks: "on"}}
  sideEffects: None
  admissionReviewVersions: [v1]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: deny-forbidden}
webhooks:
- name: deny.skiff.test.io
  clientConfig: {url: "${wh.url('/deny')}", caBundle: ${wh.caBundle}}
  rules: [{operations: [CREATE, UPDATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}]
  sideEffects: None
  admissionReviewVersions: [v1]
`));
  let n = 0;
  await untilCalled('/mutate', () => server.kubectl(['create', 'configmap', `probe-${n++}`, '-n', 'hooked', '--from-literal=a=b']));
  const created = await server.kubectl(['create', 'configmap', 'labelled', '-n', 'hooked', '--from-literal=a=b']);
  ok(created);
  assert.match(created.stderr, /Warning: labelled by the test webhook/);
  assert.equal(ok(await server.kubectl(['get', 'configmap', 'labelled', '-n', 'hooked', '-o', 'jsonpath={.metadata.labels.webhook-added}'])), 'yes');
  ok(await server.kubectl(['create', 'configmap', 'plain', '-n', 'default', '--from-literal=a=b']));
  assert.equal(ok(await server.kubectl(['get', 'configmap', 'plain', '-o', 'jsonpath={.metadata.labels}'])), '', 'other namespaces are not selected');

  const bad = 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: bad, labels: {forbidden: "true"}}\ndata: {a: b}\n';
  for (const version of ['1.27', '1.32', '1.33'] as const) {
    fails(await server.kubectl(['apply', '-f', '-'], { input: bad, version }),
      /admission webhook "deny.skiff.test.io" denied the request: objects labelled forbidden=true are not allowed here/, `kubectl ${version}`);
  }
  // Server-side dry run reaches the webhook too (sideEffects None), and is denied the same way.
  fails(await server.kubectl(['label', 'configmap', 'plain', 'forbidden=true', '--dry-run=server']), /denied the request: objects labelled forbidden=true/);
  assert.equal((await wh.last())['/deny'].request.dryRun, true);
});

test('failurePolicy Ignore admits and Fail refuses when the webhook is down; a slow webhook times out', async () => {
  const down = `https://127.0.0.1:${await freePort()}/`;
  ok(await apply(`apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: down}
webhooks:
- name: down-ignore.skiff.test.io
  clientConfig: {url: "${down}", caBundle: ${wh.caBundle}}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}]
  objectSelector: {matchLabels: {case: ignore}}
  failurePolicy: Ignore
  sideEffects: None
  admissionReviewVersions: [v1]
- name: down-fail.skiff.test.io
  clientConfig: {url: "${down}", caBundle: ${wh.caBundle}}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}]
  objectSelector: {matchLabels: {case: fail}}
  failurePolicy: Fail
  sideEffects: None
  admissionReviewVersions: [v1]
- name: slow.skiff.test.io
  clientConfig: {url: "${wh.url('/slow/5000')}", caBundle: ${wh.caBundle}}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [configmaps]}]
  objectSelector: {matchLabels: {case: slow}}
  timeoutSeconds: 1
  sideEffects: None
  admissionReviewVersions: [v1]
`));
  const cm = (name: string, c: string) => `apiVersion: v1\nkind: ConfigMap\nmetadata: {name: ${name}, labels: {case: ${c}}}\n`;
  await eventually(async () => /failed calling webhook "down-fail.skiff.test.io"/.test((await apply(cm('f', 'fail'))).stderr), 'the Fail webhook in force', 30_000, () => server.logTail());
  fails(await apply(cm('f', 'fail')),
    /Internal error occurred: failed calling webhook "down-fail.skiff.test.io": failed to call webhook: Post "https:\/\/127.0.0.1:\d+\/\?timeout=10s": dial tcp 127.0.0.1:\d+: connect: connection refused/);
  ok(await apply(cm('i', 'ignore')));
  fails(await apply(cm('s', 'slow')), /failed calling webhook "slow.skiff.test.io": failed to call webhook: Post "https:\/\/127.0.0.1:\d+\/slow\/5000\?timeout=1s": context deadline exceeded/);
});

test('a service client reaches the Service\'s endpoint and verifies the certificate for <service>.<namespace>.svc', async (t) => {
  const hostIp = Object.values(networkInterfaces()).flat().find((a) => a && a.family === 'IPv4' && !a.internal)?.address;
  assert.ok(hostIp, 'this test needs a non-loopback IPv4 address on the host (an EndpointSlice may not point at 127.0.0.1)');
  const svcHook = await startWebhookServer(t, { ips: [hostIp], dns: ['webhook-svc.hooked.svc'] }, hostIp);
  ok(await apply(`apiVersion: v1
kind: Service
metadata: {name: webhook-svc, namespace: hooked}
spec:
  ports: [{name: https, port: 443, targetPort: ${svcHook.port}}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: {name: webhook-svc-1, namespace: hooked, labels: {kubernetes.io/service-name: webhook-svc}}
addressType: IPv4
endpoints: [{addresses: ["${hostIp}"], conditions: {ready: true}}]
ports: [{name: https, port: ${svcHook.port}, protocol: TCP}]
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingWebhookConfiguration
metadata: {name: via-service}
webhooks:
- name: via-service.skiff.test.io
  clientConfig:
    service: {namespace: hooked, name: webhook-svc, path: /deny}
    caBundle: ${svcHook.caBundle}
  rules: [{operations: [CREATE], apiGroups: [""], apiVersions: [v1], resources: [secrets]}]
  sideEffects: None
  admissionReviewVersions: [v1]
`));
  const secret = (name: string, forbidden: boolean) => `apiVersion: v1\nkind: Secret\nmetadata: {name: ${name}, namespace: default${forbidden ? ', labels: {forbidden: "true"}' : ''}}\nstringData: {a: b}\n`;
  await eventually(async () => /via-service.skiff.test.io/.test((await apply(secret('s1', true))).stderr), 'the service webhook in force', 30_000, () => server.logTail());
  fails(await apply(secret('s1', true)), /admission webhook "via-service.skiff.test.io" denied the request: objects labelled forbidden=true are not allowed here/);
  ok(await apply(secret('s2', false)));
  assert.ok(((await svcHook.counts())['/deny'] ?? 0) >= 2);
});

test('a CRD with x-kubernetes-validations accepts and rejects, the transition rule on update only', async () => {
  ok(await apply(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: widgets.cel.skiff.io}
spec:
  group: cel.skiff.io
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            x-kubernetes-validations:
            - {rule: "self.replicas <= self.maxReplicas", message: "replicas must not exceed maxReplicas"}
            - {rule: "self.mode == oldSelf.mode", message: "mode is immutable"}
            properties:
              replicas: {type: integer}
              maxReplicas: {type: integer}
              mode: {type: string}
`));
  await eventually(async () => (await server.kubectl(['get', 'widgets'])).code === 0, 'the Widget kind served', 30_000, () => server.logTail());
  const widget = (replicas: number, mode: string) => `apiVersion: cel.skiff.io/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {replicas: ${replicas}, maxReplicas: 3, mode: ${mode}}\n`;
  fails(await apply(widget(5, 'fast')), /The Widget "w1" is invalid: spec: Invalid value: "object": replicas must not exceed maxReplicas/);
  ok(await apply(widget(2, 'fast')));
  ok(await apply(widget(3, 'fast')));
  fails(await apply(widget(3, 'slow')), /The Widget "w1" is invalid: spec: Invalid value: "object": mode is immutable/);
});

test('a ValidatingAdmissionPolicy with a ConfigMap param denies with its message', async () => {
  ok(await apply(`apiVersion: v1
kind: ConfigMap
metadata: {name: replica-limits, namespace: default}
data: {maxReplicas: "3"}
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicy
metadata: {name: max-replicas}
spec:
  failurePolicy: Fail
  paramKind: {apiVersion: v1, kind: ConfigMap}
  matchConstraints:
    resourceRules: [{apiGroups: [apps], apiVersions: [v1], operations: [CREATE, UPDATE], resources: [deployments]}]
  validations:
  - expression: "object.spec.replicas <= int(params.data.maxReplicas)"
    messageExpression: "'replicas must be no greater than ' + params.data.maxReplicas"
---
apiVersion: admissionregistration.k8s.io/v1
kind: ValidatingAdmissionPolicyBinding
metadata: {name: max-replicas-binding}
spec:
  policyName: max-replicas
  validationActions: [Deny]
  paramRef: {name: replica-limits, namespace: default, parameterNotFoundAction: Deny}
`));
  await eventually(async () => /denied request/.test((await server.kubectl(['create', 'deployment', 'big', '--image=busybox', '--replicas=5', '--dry-run=server'])).stderr),
    'the policy in force', 30_000, () => server.logTail());
  fails(await server.kubectl(['create', 'deployment', 'big', '--image=busybox', '--replicas=5']),
    /ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: replicas must be no greater than 3/);
  ok(await server.kubectl(['create', 'deployment', 'small', '--image=busybox', '--replicas=2']));
});
