#!/usr/bin/env node
// Builds the dashboard's browser code (issue 16) into dist/dashboard/assets: typechecks it against the
// DOM library, bundles it with esbuild into content-hashed files (so they can be cached for a year),
// writes index.html pointing at them, and precompresses every file with gzip and brotli so the server
// only picks a variant. manifest.json lists what the server may serve, with each file's type.
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants, gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const web = join(root, 'src', 'dashboard', 'web');
const out = join(root, 'dist', 'dashboard', 'assets');

try {
  execFileSync(process.execPath, [join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(web, 'tsconfig.json')], { stdio: 'inherit' });
} catch {
  console.error('dashboard: the browser code does not typecheck');
  process.exit(1);
}

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });
const result = await build({
  entryPoints: [join(web, 'main.ts')],
  bundle: true, minify: true, format: 'esm', target: 'es2022', platform: 'browser',
  // Code splitting: the terminal (xterm.js, most of the bytes) loads only when a terminal is opened.
  splitting: true, entryNames: '[name]-[hash]', chunkNames: '[name]-[hash]', assetNames: '[name]-[hash]', outdir: out, metafile: true,
  legalComments: 'none', logLevel: 'warning',
});
const outputs = Object.entries(result.metafile.outputs);
const js = outputs.find(([, o]) => o.entryPoint && o.entryPoint.endsWith('main.ts'))?.[0];
const css = outputs.find(([p]) => p.endsWith('.css'))?.[0];
if (!js || !css) throw new Error(`dashboard build: no entry .js or .css in ${outputs.map(([p]) => p).join(', ')}`);

// No inline script or style anywhere: the Content-Security-Policy forbids them.
const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<meta name="referrer" content="no-referrer">
<title>skiff dashboard</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="assets/${basename(css)}">
<script type="module" src="assets/${basename(js)}"></script>
</head>
<body><div id="app"></div></body>
</html>
`;
writeFileSync(join(out, 'index.html'), html);

const TYPES = { '.js': 'text/javascript; charset=utf-8', '.css': 'text/css; charset=utf-8', '.html': 'text/html; charset=utf-8' };
const manifest = { index: 'index.html', files: {} };
let raw = 0, gz = 0, br = 0;
for (const f of readdirSync(out)) {
  const ext = f.slice(f.lastIndexOf('.'));
  if (!(ext in TYPES)) continue;
  const data = readFileSync(join(out, f));
  const g = gzipSync(data, { level: 9 });
  const b = brotliCompressSync(data, { params: { [constants.BROTLI_PARAM_QUALITY]: 11, [constants.BROTLI_PARAM_SIZE_HINT]: data.length } });
  writeFileSync(join(out, f + '.gz'), g);
  writeFileSync(join(out, f + '.br'), b);
  manifest.files[f] = { type: TYPES[ext], bytes: data.length, gzip: g.length, br: b.length };
  raw += data.length; gz += g.length; br += b.length;
}
writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest, null, 1));
console.log(`dashboard: ${Object.keys(manifest.files).length} files, ${raw} bytes, ${gz} gzip, ${br} brotli`);
