// MetalLB's layer-2 kinds as CRDs the server installs at bootstrap, so MetalLB manifests apply
// unchanged: metallb.io/v1beta1 IPAddressPool and L2Advertisement (the fields skiff reads; anything
// else MetalLB's CRDs carry is kept, not rejected, via preserve-unknown-fields where MetalLB nests).
import type { KObject } from '../../api/object.js';
import { METALLB_GROUP } from '../../api/address-pools.js';
import type { ResourceRef } from '../../client/types.js';

export const IP_ADDRESS_POOLS: ResourceRef = Object.freeze({ group: METALLB_GROUP, version: 'v1beta1', resource: 'ipaddresspools' });
export const L2_ADVERTISEMENTS: ResourceRef = Object.freeze({ group: METALLB_GROUP, version: 'v1beta1', resource: 'l2advertisements' });

const selector = { type: 'object', 'x-kubernetes-preserve-unknown-fields': true };
const strings = { type: 'array', items: { type: 'string' } };

function crd(plural: string, kind: string, spec: Record<string, unknown>, status: Record<string, unknown> | undefined,
  columns: { name: string; type: string; jsonPath: string; priority?: number }[]): KObject {
  return {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: `${plural}.${METALLB_GROUP}` },
    spec: {
      group: METALLB_GROUP, scope: 'Namespaced',
      names: { plural, singular: kind.toLowerCase(), kind, listKind: `${kind}List` },
      versions: [{
        name: 'v1beta1', served: true, storage: true,
        ...(status ? { subresources: { status: {} } } : {}),
        schema: { openAPIV3Schema: { type: 'object', properties: { spec, ...(status ? { status } : {}) } } },
        additionalPrinterColumns: columns,
      }],
    },
  };
}

export function metallbCrds(): KObject[] {
  return [
    crd('ipaddresspools', 'IPAddressPool', {
      type: 'object', required: ['addresses'],
      properties: {
        addresses: { ...strings, description: 'CIDRs (10.0.0.0/24) or ranges (10.0.0.50-10.0.0.99)' },
        autoAssign: { type: 'boolean', default: true },
        avoidBuggyIPs: { type: 'boolean', default: false },
        serviceAllocation: {
          type: 'object',
          properties: {
            priority: { type: 'integer' },
            namespaces: strings,
            namespaceSelectors: { type: 'array', items: selector },
            serviceSelectors: { type: 'array', items: selector },
          },
        },
      },
    }, {
      type: 'object',
      properties: {
        assignedIPv4: { type: 'integer', format: 'int64' }, assignedIPv6: { type: 'integer', format: 'int64' },
        availableIPv4: { type: 'integer', format: 'int64' }, availableIPv6: { type: 'integer', format: 'int64' },
      },
    }, [
      { name: 'Auto Assign', type: 'boolean', jsonPath: '.spec.autoAssign' },
      { name: 'Avoid Buggy IPs', type: 'boolean', jsonPath: '.spec.avoidBuggyIPs' },
      { name: 'Addresses', type: 'string', jsonPath: '.spec.addresses' },
    ]),
    // Written by the announcing agent: which node announces a Service's address (MetalLB 0.14's kind).
    crd('servicel2statuses', 'ServiceL2Status', { type: 'object', 'x-kubernetes-preserve-unknown-fields': true }, {
      type: 'object',
      properties: {
        node: { type: 'string' }, serviceName: { type: 'string' }, serviceNamespace: { type: 'string' },
        interfaces: { type: 'array', items: { type: 'object', properties: { name: { type: 'string' } } } },
      },
    }, [
      { name: 'Allocated Node', type: 'string', jsonPath: '.status.node' },
      { name: 'Service Name', type: 'string', jsonPath: '.status.serviceName' },
      { name: 'Service Namespace', type: 'string', jsonPath: '.status.serviceNamespace' },
    ]),
    crd('l2advertisements', 'L2Advertisement', {
      type: 'object',
      properties: {
        ipAddressPools: strings,
        ipAddressPoolSelectors: { type: 'array', items: selector },
        nodeSelectors: { type: 'array', items: selector },
        interfaces: strings,
      },
    }, undefined, [
      { name: 'IPAddressPools', type: 'string', jsonPath: '.spec.ipAddressPools' },
      { name: 'IPAddressPool Selectors', type: 'string', jsonPath: '.spec.ipAddressPoolSelectors' },
      { name: 'Interfaces', type: 'string', jsonPath: '.spec.interfaces' },
      { name: 'Node Selectors', type: 'string', jsonPath: '.spec.nodeSelectors', priority: 10 },
    ]),
  ];
}
