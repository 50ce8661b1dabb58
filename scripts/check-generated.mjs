#!/usr/bin/env node
// Checks that the committed generated files are current (run by `npm test` and `npm run test:unit`).
// The rule for generated code (README.md, "Generated files"): a generator script in scripts/ writes
// it, its output is committed, and this check fails when the output is not what the generator writes.
//
// - generated/schemas.json, generated/schema-docs.json: scripts/gen-schemas.mjs from
//   @kubernetes/client-node and src/api/kinds.ts; regenerated in memory and compared (about 2 s).
// - src/apiserver/protobuf/schema.ts: scripts/gen-proto-schema.ts from a Kubernetes source checkout
//   that no package ships. Without one, its stamp line is verified: the generator's sha256 (the script
//   did not change since the file was written) and the file's own (nobody edited it by hand). With
//   K8S_SOURCE_DIR=<dir holding k8s.io/{api,apimachinery}> set, it is regenerated and compared too.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const problems = [];

const node = (args) => spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' }).status === 0;

if (!node(['scripts/gen-schemas.mjs', '--check'])) problems.push('generated/*.json');

const protoGenerator = join(root, 'scripts/gen-proto-schema.ts');
const protoSchema = join(root, 'src/apiserver/protobuf/schema.ts');
const sha256 = (text) => createHash('sha256').update(text).digest('hex');
const lines = readFileSync(protoSchema, 'utf8').split('\n');
const stamp = /^\/\/ stamp: generator ([0-9a-f]{64}) content ([0-9a-f]{64})$/.exec(lines[1] ?? '');
const fix = 'fetch kubernetes/api and kubernetes/apimachinery at the version in scripts/gen-proto-schema.ts into ' +
  'DIR/k8s.io/{api,apimachinery}, run `npx tsx scripts/gen-proto-schema.ts DIR` and commit schema.ts';
if (!stamp) {
  console.error(`check-generated: ${protoSchema} has no stamp line: ${fix}`);
  problems.push('schema.ts');
} else if (stamp[1] !== sha256(readFileSync(protoGenerator, 'utf8'))) {
  console.error(`check-generated: scripts/gen-proto-schema.ts changed since schema.ts was generated: ${fix}`);
  problems.push('schema.ts');
} else if (stamp[2] !== sha256(lines.filter((_, i) => i !== 1).join('\n'))) {
  console.error(`check-generated: src/apiserver/protobuf/schema.ts was edited by hand: ${fix}`);
  problems.push('schema.ts');
} else if (process.env.K8S_SOURCE_DIR) {
  if (!node(['--import', 'tsx', 'scripts/gen-proto-schema.ts', process.env.K8S_SOURCE_DIR, '--check'])) problems.push('schema.ts');
} else {
  console.log('check-generated: src/apiserver/protobuf/schema.ts matches its stamp');
}

if (problems.length) {
  console.error(`check-generated: not current: ${problems.join(', ')}`);
  process.exit(1);
}
