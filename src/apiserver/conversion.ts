// Conversion between served versions of one stored resource. Only autoscaling has two versions
// here: HorizontalPodAutoscalers are stored as v2 and served as v1 too (kubectl autoscale posts v1).
import type { KindInfo } from '../api/kinds.js';
import type { Converter } from './context.js';

export function converterFor(info: KindInfo): Converter | undefined {
  if (info.group === 'autoscaling' && info.version === 'v1') return hpaV2toV1;
  return undefined;
}

export function hpaV2toV1(o: Readonly<Record<string, any>>): Record<string, any> {
  const spec = o.spec ?? {};
  const cpu = (spec.metrics ?? []).find((m: any) => m.type === 'Resource' && m.resource?.name === 'cpu');
  const cur = (o.status?.currentMetrics ?? []).find((m: any) => m.type === 'Resource' && m.resource?.name === 'cpu');
  return {
    kind: 'HorizontalPodAutoscaler', apiVersion: 'autoscaling/v1', metadata: o.metadata,
    spec: {
      scaleTargetRef: spec.scaleTargetRef, minReplicas: spec.minReplicas, maxReplicas: spec.maxReplicas,
      ...(cpu?.resource?.target?.averageUtilization !== undefined ? { targetCPUUtilizationPercentage: cpu.resource.target.averageUtilization } : {}),
    },
    status: {
      currentReplicas: o.status?.currentReplicas ?? 0, desiredReplicas: o.status?.desiredReplicas ?? 0,
      ...(o.status?.lastScaleTime ? { lastScaleTime: o.status.lastScaleTime } : {}),
      ...(cur?.resource?.current?.averageUtilization !== undefined ? { currentCPUUtilizationPercentage: cur.resource.current.averageUtilization } : {}),
    },
  };
}

/**
 * v1 → v2. `stored` (the current v2 object, on updates) keeps what v1 cannot express: other
 * metrics, behavior, and v2 status.
 */
export function hpaV1toV2(o: Record<string, any>, stored?: Readonly<Record<string, any>>): Record<string, any> {
  if (o.apiVersion !== undefined && o.apiVersion !== 'autoscaling/v1') return o;   // let type-meta checks report it
  const spec = o.spec ?? {};
  const out: Record<string, any> = {
    kind: 'HorizontalPodAutoscaler', apiVersion: 'autoscaling/v2', metadata: o.metadata ?? {},
    // autoscaling/v1 defaults minReplicas to 1 when decoding (kubectl autoscale without --min sends none).
    spec: { ...(stored ? structuredClone(stored.spec) : {}), scaleTargetRef: spec.scaleTargetRef, minReplicas: spec.minReplicas ?? 1, maxReplicas: spec.maxReplicas },
  };
  const others = (out.spec.metrics ?? []).filter((m: any) => !(m.type === 'Resource' && m.resource?.name === 'cpu'));
  if (spec.targetCPUUtilizationPercentage !== undefined) {
    out.spec.metrics = [{ type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: spec.targetCPUUtilizationPercentage } } }, ...others];
  } else if (others.length) out.spec.metrics = others; else delete out.spec.metrics;
  if (stored?.status) out.status = structuredClone(stored.status);
  return out;
}

/** Maps a served-but-not-stored version to its storage version and back. */
export interface VersionConversion {
  storage: KindInfo;
  toServed: Converter;
  toStored: (served: Record<string, any>, current?: Readonly<Record<string, any>>) => Record<string, any>;
}

export function conversionFor(info: KindInfo, storageVersion: (info: KindInfo) => KindInfo): VersionConversion | undefined {
  if (info.group === 'autoscaling' && info.version === 'v1') {
    return { storage: storageVersion(info), toServed: hpaV2toV1, toStored: hpaV1toV2 };
  }
  return undefined;
}
