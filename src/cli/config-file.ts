// The config file, as k3s's /etc/rancher/k3s/config.yaml: a YAML map whose keys are flag names
// (`node-label: [a=b]`, `write-kubeconfig-mode: "0644"`), read from `--config` (SKIFF_CONFIG_FILE,
// default /etc/skiff/config.yaml) and then `<file>.d/*.yaml` in name order, later files overriding
// earlier ones and a key ending in `+` appending to a list. Values reach the commands through the
// flags' environment twins, so precedence is: command line, then environment, then file, then default.
import { existsSync, readdirSync, readFileSync } from 'node:fs';

export const DEFAULT_CONFIG_FILE = '/etc/skiff/config.yaml';

type Value = string | number | boolean | (string | number)[];

/** The merged key/values of the config file and its drop-ins. */
export async function readConfig(file: string, required: boolean): Promise<Record<string, Value>> {
  const files: string[] = [];
  if (existsSync(file)) files.push(file);
  else if (required) throw new Error(`config file ${file} does not exist`);
  const dropIns = `${file}.d`;
  if (existsSync(dropIns)) {
    files.push(...readdirSync(dropIns).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => `${dropIns}/${f}`));
  }
  if (!files.length) return {};
  const { parse } = await import('yaml');
  const merged: Record<string, Value> = {};
  for (const f of files) {
    let doc: unknown;
    try {
      doc = parse(readFileSync(f, 'utf8'));
    } catch (err) {
      throw new Error(`config file ${f}: ${(err as Error).message}`);
    }
    if (doc === null || doc === undefined) continue;
    if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`config file ${f}: expected a map of flag names to values`);
    for (const [rawKey, v] of Object.entries(doc as Record<string, unknown>)) {
      const append = rawKey.endsWith('+');
      const key = append ? rawKey.slice(0, -1) : rawKey;
      if (v === null || (typeof v === 'object' && !Array.isArray(v))) throw new Error(`config file ${f}: ${key}: expected a string, number, boolean or list`);
      const value = v as Value;
      const prev = merged[key];
      merged[key] = append && prev !== undefined ? [...(Array.isArray(prev) ? prev : [prev as string]), ...(Array.isArray(value) ? value : [value as string])] as Value : value;
    }
  }
  return merged;
}

/**
 * Sets each known flag's environment twin from the config unless the environment already sets it.
 * `envFor` maps a flag name to its variable (undefined for names no command knows).
 */
export function applyConfig(config: Record<string, Value>, envFor: (flag: string) => string | undefined,
  env: NodeJS.ProcessEnv = process.env): string[] {
  const unknown: string[] = [];
  for (const [key, value] of Object.entries(config)) {
    const name = envFor(key);
    if (!name) { unknown.push(key); continue; }
    if (env[name] !== undefined) continue;
    if (value === false) continue;  // a boolean flag's twin turns it on whenever it is set
    env[name] = Array.isArray(value) ? value.join(',') : String(value);
  }
  return unknown;
}

/** `--config FILE` / `--config=FILE` on the command line, else SKIFF_CONFIG_FILE, else the default. */
export function configFileFrom(argv: string[], env: NodeJS.ProcessEnv = process.env): { file: string; explicit: boolean } {
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--config' && argv[i + 1]) return { file: argv[i + 1]!, explicit: true };
    if (argv[i]!.startsWith('--config=')) return { file: argv[i]!.slice('--config='.length), explicit: true };
  }
  if (env.SKIFF_CONFIG_FILE) return { file: env.SKIFF_CONFIG_FILE, explicit: true };
  return { file: DEFAULT_CONFIG_FILE, explicit: false };
}
