// Command-line flags of the benchmark scripts.

/** `--flag N`: a positive integer, or `dflt` when the flag is absent; anything else is an error. */
export function intArg(flag: string, dflt: number, argv: string[] = process.argv): number {
  const i = argv.indexOf(flag);
  const v = i > 0 ? Number(argv[i + 1]) : dflt;
  if (!Number.isInteger(v) || v < 1) throw new Error(`${flag}: expected a positive integer, got ${argv[i + 1]}`);
  return v;
}
