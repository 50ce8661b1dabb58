// A node:test reporter for scripts/test.sh: writes node's own end-of-run counts (the summary the spec
// reporter prints as "ℹ pass N" ...) as one line "passed failed skipped", so the script can print the
// suite's closing line with its wall time. Cancelled tests (timeouts, a file that died) count as
// failed: node keeps them out of "fail".
export default async function* counts(source) {
  const n = { pass: 0, fail: 0, cancelled: 0, skipped: 0, todo: 0 };
  for await (const ev of source) {
    if (ev.type !== 'test:diagnostic' || ev.data.nesting !== 0 || ev.data.file) continue;
    const m = /^(pass|fail|cancelled|skipped|todo) (\d+)$/.exec(ev.data.message);
    if (m) n[m[1]] = Number(m[2]);
  }
  yield `${n.pass} ${n.fail + n.cancelled} ${n.skipped + n.todo}\n`;
}
