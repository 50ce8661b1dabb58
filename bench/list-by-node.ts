// What a kubelet's pod list costs the API server when the cluster holds many pods (issue 15): every
// kubelet lists `pods?fieldSelector=spec.nodeName=<self>` when it starts and whenever its watch is
// too old to resume, after a server restart all of them at once. An API-only server gets P pods
// spread over N node names (bound at creation; no control loops run, so nothing moves them), then
// the same node's pods are listed two ways, alternated in one run: by the field selector (answered
// from the watch cache's index by node) and by an equivalent label selector (a filter over every
// pod, which is what the field selector cost before the index).
//   node --import tsx bench/list-by-node.ts [--pods 20000] [--nodes 2000] [--lists 300]
import { performance } from 'node:perf_hooks';
import { HttpClient } from '../src/client/http.js';
import { Resources } from '../src/client/types.js';
import { startBenchServer } from './lib/server.js';
import { intArg } from './lib/args.js';

if (process.argv.includes('--help')) {
  console.log('node --import tsx bench/list-by-node.ts [--pods 20000] [--nodes 2000] [--lists 300]');
  process.exit(0);
}
const pods = intArg('--pods', 20_000);
const nodes = intArg('--nodes', 2000);
const lists = intArg('--lists', 300);
const server = await startBenchServer(['--disable-controller-manager']);
const client = HttpClient.fromKubeconfig(server.kubeconfigPath, { maxConnections: 32 });
try {
  let next = 0;
  const t0 = performance.now();
  await Promise.all(Array.from({ length: 32 }, async () => {
    for (let i = next++; i < pods; i = next++) {
      const node = `node-${i % nodes}`;
      await client.create(Resources.pods, 'default', {
        apiVersion: 'v1', kind: 'Pod', metadata: { name: `p-${i}`, labels: { node } },
        spec: { nodeName: node, containers: [{ name: 'c', image: 'registry.local/pause:3.9' }] },
      } as never);
      if ((i + 1) % 5000 === 0) console.log(`${i + 1} pods created`);
    }
  }));
  console.log(`${pods} pods on ${nodes} nodes created in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const time = async (selector: (node: string) => { fieldSelector?: string; labelSelector?: string }) => {
    const t = performance.now();
    let items = 0;
    for (let i = 0; i < lists; i++) items += (await client.list(Resources.pods, undefined, selector(`node-${(i * 37) % nodes}`))).items.length;
    return { ms: (performance.now() - t) / lists, perList: items / lists };
  };
  const byField: number[] = [];
  const byLabel: number[] = [];
  for (let round = 0; round < 3; round++) {
    const f = await time((node) => ({ fieldSelector: `spec.nodeName=${node}` }));
    const l = await time((node) => ({ labelSelector: `node=${node}` }));
    if (f.perList !== l.perList) throw new Error(`the two lists disagree: ${f.perList} against ${l.perList} pods per list`);
    byField.push(f.ms);
    byLabel.push(l.ms);
    console.log(`round ${round + 1}: spec.nodeName (indexed) ${f.ms.toFixed(2)} ms/list, label (every pod filtered) ${l.ms.toFixed(2)} ms/list, ${f.perList.toFixed(1)} pods each`);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[1]!;
  console.log(`SUMMARY list-by-node: pods=${pods} nodes=${nodes} indexedMsPerList=${median(byField).toFixed(2)} scanMsPerList=${median(byLabel).toFixed(2)} ratio=${(median(byLabel) / median(byField)).toFixed(1)}`);
} finally {
  client.close();
  await server.stop();
}
