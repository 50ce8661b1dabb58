#!/usr/bin/env node
// `npm run release`: builds dist/release/skiff-<version>-linux-<arch>.tar.gz, a self-contained release
// (docs/install.md): the program bundled by esbuild, its one native addon (better-sqlite3) beside it,
// the generated API schemas it reads at run time, a launcher, install/uninstall scripts, the list of
// Debian packages it needs and checksums. Installing it fetches nothing (air-gapped installs).
//
//   node scripts/release.mjs [--version V] [--out DIR]
import { build } from 'esbuild';
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, createReadStream, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const arg = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt; };
const version = arg('--version', process.env.SKIFF_RELEASE_VERSION ?? JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
const outDir = arg('--out', join(root, 'dist', 'release'));
// Debian's architecture names, as k3s's release assets use (amd64, arm64, arm).
const arch = { x64: 'amd64', arm64: 'arm64', arm: 'arm' }[process.arch] ?? process.arch;
const name = `skiff-${version}-linux-${arch}`;
const stage = join(outDir, name);

if (!/^[0-9A-Za-z][0-9A-Za-z.+_-]*$/.test(version)) { console.error(`release: bad version ${JSON.stringify(version)}`); process.exit(2); }
rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, 'lib', 'skiff'), { recursive: true });

// The generated schemas are read at run time (src/api/schema.ts) from `<bundle dir>/../../generated`:
// the layout keeps that relation, so src needs no release-only path.
if (!existsSync(join(root, 'generated', 'schemas.json'))) execFileSync('node', [join(root, 'scripts', 'gen-schemas.mjs')], { stdio: 'inherit', cwd: root });
cpSync(join(root, 'generated'), join(stage, 'generated'), { recursive: true });

// Bundling needs two rewrites of how modules load things, done here rather than in src:
// - better-sqlite3 finds its addon through `bindings` (a search of node_modules' build dirs): load it
//   from beside the bundle instead.
// - modules load packages lazily (createRequire, or `await import()`) to keep them out of an idle
//   process's memory. A bundled CommonJS package imported dynamically from a split chunk has only a
//   default export (esbuild), so both become plain require() calls: still lazy, and bundled.
const rewrites = {
  name: 'skiff-release-rewrites',
  setup(b) {
    b.onLoad({ filter: /better-sqlite3[\\/]lib[\\/]database\.js$/ }, (a) => ({
      contents: readFileSync(a.path, 'utf8').replace("require('bindings')('better_sqlite3.node')", "require(require('path').join(__skiff_bundle_dir, 'better_sqlite3.node'))"),
      loader: 'js',
    }));
    b.onLoad({ filter: /[\\/]src[\\/].*\.ts$/ }, (a) => {
      if (!a.path.startsWith(join(root, 'src'))) return undefined;
      const text = readFileSync(a.path, 'utf8');
      return {
        contents: text.replace(/requireOnDemand\('([^']+)'\)/g, "require('$1')").replace(/await import\('([^.'][^']*)'\)/g, "require('$1')"),
        loader: 'ts',
      };
    });
  },
};

// ESM output (src uses import.meta.url and top-level await); CommonJS dependencies get a real
// `require` for Node's built-ins and the addon. Code splitting keeps the source's lazy imports lazy:
// an agent never parses the API server's code (its memory budget, docs/benchmarks.md).
const banner = [
  "import { createRequire as __skiff_cr } from 'node:module';",
  "import { dirname as __skiff_dn } from 'node:path';",
  "import { fileURLToPath as __skiff_fu } from 'node:url';",
  'const require = __skiff_cr(import.meta.url);',
  'const __skiff_bundle_dir = __skiff_dn(__skiff_fu(import.meta.url));',
].join('\n');
const result = await build({
  entryPoints: {
    main: join(root, 'src/cli/main.ts'),
    'pki-worker': join(root, 'src/pki/pki-worker.ts'),
    'tls-front-worker': join(root, 'src/server/tls-front-worker.ts'),
  },
  outdir: join(stage, 'lib', 'skiff'),
  bundle: true, splitting: true, format: 'esm', platform: 'node', target: 'node20',
  chunkNames: '[name]-[hash]',
  banner: { js: banner },
  // Optional native speed-ups that their packages load in try/catch and fall back from.
  external: ['*.node', 'cpu-features', 'pg-native', 'bufferutil', 'utf-8-validate'],
  plugins: [rewrites],
  minifySyntax: true, minifyWhitespace: true, keepNames: true, legalComments: 'eof',
  logLevel: 'warning', metafile: true,
});
// The workers are loaded by URL as './pki-worker.js' (src/pki/isolated.ts) and
// './tls-front-worker.js' (src/server/tls-front.ts), hence those entry names; the .js files are ES
// modules.
writeFileSync(join(stage, 'lib', 'skiff', 'package.json'), JSON.stringify({ type: 'module', version }) + '\n');
// Chunks live beside the entries; schema.ts computes '../../generated' from its own chunk, so it must be
// in lib/skiff itself: checked here rather than trusted.
for (const [out, meta] of Object.entries(result.metafile.outputs)) {
  if (Object.keys(meta.inputs).some((i) => i.endsWith('src/api/schema.ts')) && dirname(out) !== relative(process.cwd(), join(stage, 'lib', 'skiff'))) {
    console.error(`release: src/api/schema.ts landed in ${out}; generated/ would not be found`); process.exit(1);
  }
}

const addon = join(root, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node');
copyFileSync(addon, join(stage, 'lib', 'skiff', 'better_sqlite3.node'));

mkdirSync(join(stage, 'bin'));
for (const f of ['install.sh', 'skiff-uninstall.sh']) { copyFileSync(join(root, 'scripts', 'release', f), join(stage, f)); chmodSync(join(stage, f), 0o755); }
for (const f of ['skiff', 'skiff-supervise', 'skiff-upgrade-guard']) { copyFileSync(join(root, 'scripts', 'release', f), join(stage, 'bin', f)); chmodSync(join(stage, 'bin', f), 0o755); }
// Run-time packages only (the development list also carries test tools and datastores).
writeFileSync(join(stage, 'debian-packages.txt'), readFileSync(join(root, 'scripts', 'release', 'debian-packages.txt'), 'utf8'));
writeFileSync(join(stage, 'VERSION'), `${version}\n`);
for (const f of ['LICENSE', 'README.md']) if (existsSync(join(root, f))) copyFileSync(join(root, f), join(stage, f));

// SHA256SUMS inside the tree (checked by install.sh after unpacking) and beside the tarball (checked
// before unpacking, as k3s's installer checks its sha256sum file).
const files = [];
const walk = (d) => { for (const e of readdirSync(d)) { const p = join(d, e); statSync(p).isDirectory() ? walk(p) : files.push(p); } };
walk(stage);
const sha = (p) => new Promise((res, rej) => { const h = createHash('sha256'); createReadStream(p).on('data', (c) => h.update(c)).on('end', () => res(h.digest('hex'))).on('error', rej); });
const lines = [];
for (const f of files.sort()) lines.push(`${await sha(f)}  ${relative(stage, f)}`);
writeFileSync(join(stage, 'SHA256SUMS'), lines.join('\n') + '\n');

const tarball = join(outDir, `${name}.tar.gz`);
execFileSync('tar', ['-C', outDir, '--owner=0', '--group=0', '--numeric-owner', '-czf', tarball, name]);
// The installer also travels beside the tarball (k3s's get.k3s.io script is separate from its binary).
copyFileSync(join(root, 'scripts', 'release', 'install.sh'), join(outDir, 'install.sh')); chmodSync(join(outDir, 'install.sh'), 0o755);
const sumsFile = join(outDir, 'SHA256SUMS');
const previous = existsSync(sumsFile) ? readFileSync(sumsFile, 'utf8').split('\n').filter((l) => l && !l.endsWith(`  ${name}.tar.gz`)) : [];
writeFileSync(sumsFile, [...previous, `${await sha(tarball)}  ${name}.tar.gz`].join('\n') + '\n');
rmSync(stage, { recursive: true, force: true });
console.log(`${tarball} (${(statSync(tarball).size / 1e6).toFixed(1)} MB)`);
