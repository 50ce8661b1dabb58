#!/usr/bin/env node
// Layering check, run by `npm test` and `npm run test:unit`: each top-level folder of src/ may import
// only the folders listed for it below, so rules live in the lowest layer that needs them and plumbing
// shared by the server and the agent (tunnel protocol, informers, work queues) stays in neutral
// folders. Exits 1 and names every offending import.
import fs from 'node:fs';
import path from 'node:path';

// `--root DIR` checks another tree (the layer check's own test uses it).
const rootArg = process.argv.indexOf('--root');
const root = rootArg > 0 ? path.resolve(process.argv[rootArg + 1]) : path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const src = path.join(root, 'src');

// Folder → folders it may import (besides itself). Lower layers first.
const allowed = {
  util: [],
  api: ['util'],
  pki: ['util', 'api'],
  tunnel: ['util', 'api'],
  storage: ['util', 'api'],
  client: ['util', 'api'],
  apiserver: ['util', 'api', 'pki', 'tunnel', 'storage', 'client'],
  controllers: ['util', 'api', 'pki', 'client'],
  agent: ['util', 'api', 'pki', 'tunnel', 'client'],
  hollow: ['util', 'api', 'pki', 'tunnel', 'client', 'agent'],
  // Fleet management: the manager's registration/tunnel endpoints and the site's registration client,
  // bundles and rollouts. It talks to clusters through clients and tunnels, never to storage directly.
  fleet: ['util', 'api', 'pki', 'tunnel', 'client'],
  // The dashboard's static-file route (its browser code under src/dashboard/web imports nothing of ours).
  dashboard: ['util'],
  server: ['util', 'api', 'pki', 'tunnel', 'storage', 'client', 'apiserver', 'controllers', 'agent', 'dashboard', 'fleet'],
  cli: ['util', 'api', 'pki', 'tunnel', 'storage', 'client', 'apiserver', 'controllers', 'agent', 'hollow', 'server', 'dashboard', 'fleet'],
};
// Files directly under src/ (version.ts) are leaves anyone may import.


const importRe = /(?:^|[\s;])(?:import|export)\s[^'"]*?from\s*['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function* walk(dir) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) yield* walk(p);
    else if (/\.(ts|mts)$/.test(e.name) && !e.name.endsWith('.d.ts')) yield p;
  }
}

const layerOf = (file) => {
  const rel = path.relative(src, file).split(path.sep);
  return rel.length > 1 ? rel[0] : null;
};

const webDir = path.join(src, 'dashboard', 'web') + path.sep;
const isWeb = (f) => f.startsWith(webDir);

const problems = [];
for (const file of walk(src)) {
  const from = layerOf(file);
  if (!from) continue;
  if (!(from in allowed)) { problems.push(`${path.relative(root, file)}: folder src/${from} has no layer rule in scripts/check-layers.mjs`); continue; }
  const text = fs.readFileSync(file, 'utf8');
  for (const m of text.matchAll(importRe)) {
    const spec = m[1] ?? m[2];
    const target = path.resolve(path.dirname(file), spec);
    // Browser code is bundled on its own: it may import only itself (and npm packages).
    if (isWeb(file) && !isWeb(target)) { problems.push(`${path.relative(root, file)}: browser code must not import ${spec}`); continue; }
    const to = layerOf(target);
    if (!to || to === from || allowed[from].includes(to)) continue;
    problems.push(`${path.relative(root, file)}: src/${from} must not import src/${to} (${spec})`);
  }
}

if (problems.length > 0) {
  console.error(`layering: ${problems.length} import(s) point up or sideways:\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log('layering: ok');
