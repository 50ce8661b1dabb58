// Request bodies that would have cost the server its memory or its event loop (issue 11): nesting
// and size limits applied before the parsers see the text.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeObject } from '../../src/apiserver/decode.js';
import { MAX_NESTING_DEPTH, MAX_YAML_FLOW_DEPTH, valueDepth, yamlDepth } from '../../src/apiserver/decode-limits.js';
import { ApiError } from '../../src/api/status.js';

const YAML = 'application/yaml';
const nestedJson = (d: number) => '{"a":'.repeat(d) + '1' + '}'.repeat(d);

function refused(fn: () => unknown, code: number, text: RegExp): void {
  assert.throws(fn, (e: unknown) => e instanceof ApiError && e.code === code && text.test(e.message));
}

test('deep JSON is refused with 400 before parsing; 200 levels decode', () => {
  refused(() => decodeObject(Buffer.from(`{"x":${nestedJson(20_000)}}`), 'application/json'), 400, /exceeded max depth of 500/);
  const ok = decodeObject(Buffer.from(`{"x":${nestedJson(200)}}`), 'application/json');
  assert.equal(valueDepth(ok), 201);
});

test('deep YAML flow collections are refused, also sent twice (they aborted the process)', () => {
  const body = Buffer.from('a: ' + '['.repeat(2000) + ']'.repeat(2000));
  for (let i = 0; i < 2; i++) refused(() => decodeObject(body, YAML), 400, new RegExp(`exceeded max depth of ${MAX_YAML_FLOW_DEPTH}`));
  const unclosed = Buffer.from('a: ' + '{b: '.repeat(5000));
  refused(() => decodeObject(unclosed, YAML), 400, /exceeded max depth/);
  // A quote inside a plain scalar does not hide the brackets after it.
  assert.ok(yamlDepth(`a: it's ${'['.repeat(150)}`).flow > MAX_YAML_FLOW_DEPTH);
});

test('moderate YAML flow nesting and block nesting decode', () => {
  const v = decodeObject(Buffer.from('a: ' + '['.repeat(50) + '1' + ']'.repeat(50) + '\nb:\n  c:\n    d: "x [ y"\n'), YAML);
  assert.equal(valueDepth(v), 51);
  assert.equal((v as any).b.c.d, 'x [ y');
});

test('a 1 MB unclosed YAML body is refused with 413 without parsing; 1 MB of JSON as YAML decodes', () => {
  refused(() => decodeObject(Buffer.from('a: [' + 'x, '.repeat(350_000)), YAML), 413, /Request entity too large/);
  const big = JSON.stringify({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'x' }, data: { k: 'v'.repeat(1_000_000) } });
  assert.equal((decodeObject(Buffer.from(big), YAML) as any).data.k.length, 1_000_000);
});

test('YAML duplicate keys are still refused; deep JSON sent as YAML is refused', () => {
  refused(() => decodeObject(Buffer.from('a: 1\nb: 2\na: 3\n'), YAML), 400, /unique/);
  refused(() => decodeObject(Buffer.from(nestedJson(MAX_NESTING_DEPTH + 5)), YAML), 400, /exceeded max depth/);
});
