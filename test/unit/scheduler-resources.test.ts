import { test } from 'node:test';
import assert from 'node:assert/strict';
import { podRequests, DEFAULT_MEMORY_REQUEST, DEFAULT_MILLI_CPU_REQUEST } from '../../src/controllers/scheduler/resources.js';
import { parseQuantity } from '../../src/api/quantity.js';

test('quantities parse to integers in scheduler units, rounding up', () => {
  const cases: [string | number, number, number][] = [
    // [quantity, scale, expected]: scale 3 is millis (cpu), 0 plain units (memory, storage, counts)
    ['100m', 3, 100], ['1', 3, 1000], ['0.1', 3, 100], ['1.5', 3, 1500], ['250u', 3, 1], ['2k', 3, 2_000_000],
    ['128Mi', 0, 128 * 2 ** 20], ['1Gi', 0, 2 ** 30], ['1.5Gi', 0, 1.5 * 2 ** 30], ['1G', 0, 1e9], ['500M', 0, 5e8],
    ['1e3', 0, 1000], ['1E3', 0, 1000], ['2e-3', 3, 2], ['1Ki', 0, 1024], ['110', 0, 110], ['1E', 0, 1e18],
    ['0.5', 0, 1], ['1m', 0, 1], ['+3', 0, 3], ['-1', 0, -1], ['.5', 3, 500], [2, 0, 2], [0.25, 3, 250],
  ];
  for (const [q, scale, want] of cases) assert.equal(parseQuantity(q, scale), want, `${q} at scale ${scale}`);
  for (const bad of ['', 'abc', '1KiB', '1 Gi', '1.2.3', 'Mi', '1e']) assert.throws(() => parseQuantity(bad), /quantities must match/, bad);
});

test('pod requests: containers summed, init containers maxed, sidecars added, overhead on top', () => {
  const r = podRequests({
    containers: [
      { resources: { requests: { cpu: '100m', memory: '64Mi' } } },
      { resources: { requests: { cpu: '200m', 'nvidia.com/gpu': '1' }, limits: { memory: '128Mi' } } }, // memory request defaults to the limit
    ],
    initContainers: [
      { resources: { requests: { cpu: '1', memory: '1Mi' } } },
      { restartPolicy: 'Always', resources: { requests: { cpu: '50m', memory: '10Mi' } } },
      { resources: { requests: { cpu: '100m', 'ephemeral-storage': '1Gi' } } },
    ],
    overhead: { cpu: '10m', memory: '1Mi' },
  });
  // containers 300m + sidecar 50m = 350m < first init container's 1000m; plus 10m overhead.
  assert.equal(r.milliCPU, 1010);
  assert.equal(r.memory, (64 + 128 + 10 + 1) * 2 ** 20);
  // the last init container runs beside the sidecar: 1Gi storage peak
  assert.equal(r.ephemeralStorage, 2 ** 30);
  assert.deepEqual(r.scalar, { 'nvidia.com/gpu': 1 });
  assert.equal(r.pods, 0);
});

test('non-zero requests stand in 100m/200Mi for containers naming no cpu or memory', () => {
  const spec = { containers: [{}, { resources: { requests: { cpu: '0' } } }, { resources: { limits: { memory: '1Gi' } } }] };
  assert.equal(podRequests(spec).milliCPU, 0);
  const nz = podRequests(spec, true);
  assert.equal(nz.milliCPU, DEFAULT_MILLI_CPU_REQUEST * 2); // an explicit 0 stays 0
  assert.equal(nz.memory, DEFAULT_MEMORY_REQUEST * 2 + 2 ** 30);
  assert.equal(podRequests(undefined).milliCPU, 0);
});
