// Sandbox and container configs: DNS per dnsPolicy, host namespaces, hostPorts, labels; cgroup
// resources and OOM scores (never negative), security context.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { podDnsConfig, podHostsFile, sandboxConfig } from '../../src/agent/pods/sandbox.js';
import { linuxResources, securityContext } from '../../src/agent/pods/containers.js';
import { qosClass } from '../../src/api/pod.js';

const dir = mkdtempSync(join(tmpdir(), 'skiff-pods-dns-'));
const resolvConf = join(dir, 'resolv.conf');
writeFileSync(resolvConf, 'nameserver 192.0.2.53\nsearch corp.example\noptions edns0\n');
test.after(() => rmSync(dir, { recursive: true, force: true }));
const dns = { clusterDns: '10.43.0.10', clusterDomain: 'cluster.local', resolvConf };
const pod = (spec: object) => ({ metadata: { name: 'p', namespace: 'team', uid: 'u1', labels: { app: 'p' } }, spec: { containers: [{ name: 'c' }], ...spec } });

test('ClusterFirst: cluster DNS, the namespace search path (then the host\'s), ndots 5', () => {
  assert.deepEqual(podDnsConfig(pod({}), dns), {
    servers: ['10.43.0.10'], searches: ['team.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'corp.example'], options: ['ndots:5'],
  });
});

test('Default and host network use the host resolver unless ClusterFirstWithHostNet; None takes dnsConfig only', () => {
  const host = { servers: ['192.0.2.53'], searches: ['corp.example'], options: ['edns0'] };
  assert.deepEqual(podDnsConfig(pod({ dnsPolicy: 'Default' }), dns), host);
  assert.deepEqual(podDnsConfig(pod({ hostNetwork: true }), dns), host);
  assert.equal(podDnsConfig(pod({ hostNetwork: true, dnsPolicy: 'ClusterFirstWithHostNet' }), dns).servers[0], '10.43.0.10');
  assert.deepEqual(podDnsConfig(pod({ dnsPolicy: 'None', dnsConfig: { nameservers: ['1.1.1.1'], options: [{ name: 'ndots', value: '2' }, { name: 'rotate' }] } }), dns),
    { servers: ['1.1.1.1'], searches: [], options: ['ndots:2', 'rotate'] });
});

test('dnsConfig merges: nameservers capped at 3, search domains deduplicated, "." dropped, at most 32', () => {
  const c = podDnsConfig(pod({ dnsConfig: { nameservers: ['1.1.1.1', '8.8.8.8', '9.9.9.9'], searches: ['corp.example', 'a.example', '.'], options: [{ name: 'ndots', value: '2' }, { name: 'edns0' }] } }), dns);
  assert.deepEqual(c.servers, ['10.43.0.10', '1.1.1.1', '8.8.8.8']);
  assert.deepEqual(c.searches, ['team.svc.cluster.local', 'svc.cluster.local', 'cluster.local', 'corp.example', 'a.example']);
  assert.deepEqual(c.options, ['ndots:2', 'edns0']);
  const many = podDnsConfig(pod({ dnsConfig: { searches: Array.from({ length: 40 }, (_, i) => `d${i}.example`) } }), dns);
  assert.equal(many.searches.length, 32);
});

test('/etc/hosts as the kubelet writes it: localhost, the pod\'s FQDN with its subdomain, hostAliases', () => {
  const sts = pod({ hostname: 'web-0', subdomain: 'nginx', hostAliases: [{ ip: '192.0.2.9', hostnames: ['foo.local', 'bar'] }] });
  const text = podHostsFile(sts, ['10.42.1.5'], 'cluster.local');
  const lines = text.split('\n');
  assert.equal(lines[0], '# Kubernetes-managed hosts file.');
  assert.ok(lines.includes('127.0.0.1\tlocalhost'));
  assert.ok(lines.includes('10.42.1.5\tweb-0.nginx.team.svc.cluster.local\tweb-0'), text);
  assert.ok(lines.includes('# Entries added by HostAliases.'));
  assert.ok(lines.includes('192.0.2.9\tfoo.local\tbar'));
  assert.ok(podHostsFile(pod({}), ['10.42.1.6'], 'cluster.local').includes('10.42.1.6\tp\n'), 'no subdomain: the hostname alone');
  const hostNet = podHostsFile(pod({ hostNetwork: true, hostAliases: [{ ip: '192.0.2.9', hostnames: ['x'] }] }), ['192.168.1.2'], 'cluster.local', '127.0.0.1 localhost\n192.168.1.2 node-a\n');
  assert.match(hostNet, /^# Kubernetes-managed hosts file \(host network\)\.\n127\.0\.0\.1 localhost\n192\.168\.1\.2 node-a\n\n# Entries added by HostAliases\.\n192\.0\.2\.9\tx\n$/);
});

test('sandbox: labels for adoption, host namespaces, hostPorts, privileged when a container is', () => {
  const cfg = sandboxConfig(pod({
    hostPID: true, containers: [{ name: 'c', ports: [{ containerPort: 80, hostPort: 8080 }, { containerPort: 81 }], securityContext: { privileged: true } }],
  }), { ...dns, nodeName: 'n1', logDirectory: '/logs', cgroupParent: '/kubepods/podu1', attempt: 2 });
  assert.equal(cfg.labels!['io.kubernetes.pod.uid'], 'u1');
  assert.equal(cfg.labels!['skiff.io/node'], 'n1');
  assert.equal(cfg.labels!.app, 'p');
  assert.equal(cfg.metadata.attempt, 2);
  assert.equal(cfg.hostname, 'p');
  assert.deepEqual(cfg.linux!.securityContext!.namespaceOptions, { network: 'POD', pid: 'NODE', ipc: 'POD' });
  assert.deepEqual(cfg.portMappings, [{ protocol: 'TCP', containerPort: 80, hostPort: 8080 }]);
  assert.equal(cfg.linux!.securityContext!.privileged, true);
});

test('resources: shares from requests, quota from limits, OOM score by QoS and never below 0', () => {
  const mem = 8 * 2 ** 30;
  const guaranteed = { resources: { requests: { cpu: '500m', memory: '1Gi' }, limits: { cpu: '500m', memory: '1Gi' } } };
  assert.equal(qosClass(pod({ containers: [guaranteed] })), 'Guaranteed');
  assert.deepEqual(linuxResources(guaranteed, 'Guaranteed', mem), { cpuShares: 512, cpuPeriod: 100_000, cpuQuota: 50_000, memoryLimitInBytes: 2 ** 30, oomScoreAdj: 0 });
  assert.equal(qosClass(pod({})), 'BestEffort');
  assert.deepEqual(linuxResources({}, 'BestEffort', mem), { cpuShares: 2, oomScoreAdj: 1000 });
  const burst = { resources: { requests: { memory: '2Gi' } } };
  assert.equal(qosClass(pod({ containers: [burst] })), 'Burstable');
  assert.equal(linuxResources(burst, 'Burstable', mem).oomScoreAdj, 750);
});

test('security context: container settings over the pod\'s, masked paths unless privileged', () => {
  const p = pod({ securityContext: { runAsUser: 1000, runAsGroup: 3000, fsGroup: 2000 } });
  const sc = securityContext(p, { securityContext: { runAsUser: 1001, readOnlyRootFilesystem: true, allowPrivilegeEscalation: false, capabilities: { add: ['NET_ADMIN'], drop: ['ALL'] } } });
  assert.deepEqual(sc.runAsUser, { value: 1001 });
  assert.deepEqual(sc.runAsGroup, { value: 3000 });
  assert.deepEqual(sc.supplementalGroups, [2000]);
  assert.equal(sc.readonlyRootfs, true);
  assert.equal(sc.noNewPrivs, true);
  assert.deepEqual(sc.capabilities, { addCapabilities: ['NET_ADMIN'], dropCapabilities: ['ALL'] });
  assert.ok(sc.maskedPaths!.includes('/proc/kcore'));
  assert.deepEqual(securityContext(p, { securityContext: { privileged: true } }).maskedPaths, []);
  assert.throws(() => securityContext(pod({ securityContext: { runAsNonRoot: true } }), { securityContext: { runAsUser: 0 } }), /non-root/);
});
