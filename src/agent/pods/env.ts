// A container's environment as the kubelet builds it: Service variables, envFrom sources (with their prefix),
// then env entries in order, each of which may refer to earlier ones with $(NAME). A missing
// non-optional source is a CreateContainerConfigError; the container waits until it appears.
import { podFieldValue, resourceFieldValue, type FieldContext, type NodeResources } from './fields.js';
import type { Obj } from './pod-api.js';
import { PodSources } from './sources.js';
import { serviceEnv } from './service-env.js';

/** A container cannot be configured yet (its status shows CreateContainerConfigError with this message). */
export class ContainerConfigError extends Error {
  override readonly name = 'ContainerConfigError';
}

/**
 * Expands `$(NAME)` from `vars`; `$$` is a literal `$`, and a reference to an unknown name is kept
 * as written, so `$(HOME)` survives for the shell when no env var HOME was declared.
 */
export function expandVars(s: string, vars: ReadonlyMap<string, string>): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s[i];
    if (c !== '$' || i + 1 >= s.length) {
      out += c;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$';
      i++;
    } else if (next === '(') {
      const close = s.indexOf(')', i + 2);
      if (close < 0) {
        out += s.slice(i);
        break;
      }
      const name = s.slice(i + 2, close);
      out += vars.get(name) ?? `$(${name})`;
      i = close;
    } else {
      out += c;
    }
  }
  return out;
}

export interface EnvContext extends FieldContext {
  sources: PodSources;
  node: NodeResources;
  /** The Services the node knows, for the kubelet's service variables (none when not given). */
  services?: readonly Obj[];
}

/** The env vars of `container` in `pod`, in the order the runtime should set them (later wins). */
export async function containerEnv(pod: Obj, container: Obj, ctx: EnvContext): Promise<{ key: string; value: string }[]> {
  // Service variables first: envFrom and env override them and may refer to them with $(NAME).
  const vars = ctx.services ? serviceEnv(pod, ctx.services) : new Map<string, string>();
  const ns = pod.metadata.namespace;
  for (const from of container.envFrom ?? []) {
    const prefix: string = from.prefix ?? '';
    let data: Map<string, Buffer> | undefined;
    if (from.configMapRef) {
      const cm = await ctx.sources.configMap(from.configMapRef.name);
      if (!cm && !from.configMapRef.optional) throw new ContainerConfigError(`configmap "${from.configMapRef.name}" not found`);
      data = cm && PodSources.configMapData(cm);
    } else if (from.secretRef) {
      const s = await ctx.sources.secret(from.secretRef.name);
      if (!s && !from.secretRef.optional) throw new ContainerConfigError(`secret "${from.secretRef.name}" not found`);
      data = s && PodSources.secretData(s);
    }
    for (const [k, v] of data ?? []) {
      const key = prefix + k;
      // Names with '=' could not be represented in an environment block at all.
      if (key === '' || key.includes('=')) continue;
      vars.set(key, v.toString('utf8'));
    }
  }
  for (const e of container.env ?? []) {
    const value = await envValue(pod, container, e, vars, ctx, ns);
    if (value !== undefined) vars.set(e.name, value);
  }
  return [...vars].map(([key, value]) => ({ key, value }));
}

async function envValue(pod: Obj, container: Obj, e: Obj, vars: Map<string, string>, ctx: EnvContext, ns: string): Promise<string | undefined> {
  const from = e.valueFrom;
  if (!from) return expandVars(String(e.value ?? ''), vars);
  if (from.fieldRef) return podFieldValue(pod, from.fieldRef.fieldPath, ctx);
  if (from.resourceFieldRef) {
    const target = from.resourceFieldRef.containerName
      ? [...(pod.spec.containers ?? []), ...(pod.spec.initContainers ?? [])].find((c: Obj) => c.name === from.resourceFieldRef.containerName)
      : container;
    if (!target) throw new ContainerConfigError(`resourceFieldRef: no container named ${from.resourceFieldRef.containerName}`);
    return resourceFieldValue(target, from.resourceFieldRef.resource, from.resourceFieldRef.divisor, ctx.node);
  }
  if (from.configMapKeyRef) {
    const { name, key, optional } = from.configMapKeyRef;
    const cm = await ctx.sources.configMap(name);
    if (!cm) {
      if (optional) return undefined;
      throw new ContainerConfigError(`configmap "${name}" not found`);
    }
    const v = PodSources.configMapData(cm).get(key);
    if (v === undefined) {
      if (optional) return undefined;
      throw new ContainerConfigError(`couldn't find key ${key} in ConfigMap ${ns}/${name}`);
    }
    return v.toString('utf8');
  }
  if (from.secretKeyRef) {
    const { name, key, optional } = from.secretKeyRef;
    const s = await ctx.sources.secret(name);
    if (!s) {
      if (optional) return undefined;
      throw new ContainerConfigError(`secret "${name}" not found`);
    }
    const v = PodSources.secretData(s).get(key);
    if (v === undefined) {
      if (optional) return undefined;
      throw new ContainerConfigError(`couldn't find key ${key} in Secret ${ns}/${name}`);
    }
    return v.toString('utf8');
  }
  return '';
}
