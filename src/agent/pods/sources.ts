// The configMaps and secrets one sync of a pod reads, each fetched once however many env vars and
// volumes name it, so one sync sees one version of each.
import type { Obj, PodApi } from './pod-api.js';

export class PodSources {
  private readonly configMaps = new Map<string, Promise<Obj | undefined>>();
  private readonly secrets = new Map<string, Promise<Obj | undefined>>();

  constructor(private readonly api: PodApi, readonly namespace: string) {}

  configMap(name: string): Promise<Obj | undefined> {
    let p = this.configMaps.get(name);
    if (!p) this.configMaps.set(name, p = this.api.getConfigMap(this.namespace, name));
    return p;
  }

  secret(name: string): Promise<Obj | undefined> {
    let p = this.secrets.get(name);
    if (!p) this.secrets.set(name, p = this.api.getSecret(this.namespace, name));
    return p;
  }

  /** A configMap's keys as bytes (data and binaryData). */
  static configMapData(cm: Obj): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    for (const [k, v] of Object.entries(cm.data ?? {})) out.set(k, Buffer.from(String(v), 'utf8'));
    for (const [k, v] of Object.entries(cm.binaryData ?? {})) out.set(k, Buffer.from(String(v), 'base64'));
    return out;
  }

  /** A secret's keys as bytes (data is base64; stringData never reaches a reader). */
  static secretData(s: Obj): Map<string, Buffer> {
    const out = new Map<string, Buffer>();
    for (const [k, v] of Object.entries(s.data ?? {})) out.set(k, Buffer.from(String(v), 'base64'));
    return out;
  }
}
