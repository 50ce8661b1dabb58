// Scanning JSON text without parsing it (src/util/json-text.ts): strings, escapes and nesting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonDepth, jsonStringEnd, jsonValueEnd } from '../../src/util/json-text.js';

test('strings end at the first quote not escaped; brackets inside them do not count', () => {
  assert.equal(jsonStringEnd('"a\\"b"x', 0), 6);
  assert.equal(jsonStringEnd('"a\\\\"x', 0), 5, 'an escaped backslash does not escape the quote');
  assert.equal(jsonStringEnd('"open', 0), -1);
  assert.equal(jsonDepth('{"a":"[[[{{\\"{{","b":[[1]]}', 500), 3);
  assert.equal(jsonDepth('"unterminated [[[', 500), 0);
  assert.equal(jsonDepth('['.repeat(600), 500), 501, 'stops just past the limit');
});

test('a value ends where compact JSON ends it', () => {
  const text = '{"a":1,"b":"}","c":{"d":[1,{"e":"]"}]},"f":null}';
  assert.equal(text.slice(5, jsonValueEnd(text, 5)), '1');
  assert.equal(text.slice(11, jsonValueEnd(text, 11)), '"}"');
  assert.equal(text.slice(19, jsonValueEnd(text, 19)), '{"d":[1,{"e":"]"}]}');
  assert.equal(jsonValueEnd('{"a":[1,2', 5), -1);
});
