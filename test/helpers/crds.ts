// A namespaced custom resource for control-loop tests: widgets.example.com/v1, schema-less.
import type { ApiClient, ResourceRef } from '../../src/client/types.js';
import { Resources } from '../../src/client/types.js';

export const WIDGETS: ResourceRef = { group: 'example.com', version: 'v1', resource: 'widgets' };

export async function createWidgetCrd(client: ApiClient): Promise<void> {
  await client.create(Resources.customResourceDefinitions, undefined, {
    apiVersion: 'apiextensions.k8s.io/v1', kind: 'CustomResourceDefinition', metadata: { name: 'widgets.example.com' },
    spec: {
      group: 'example.com', scope: 'Namespaced', names: { plural: 'widgets', singular: 'widget', kind: 'Widget' },
      versions: [{ name: 'v1', served: true, storage: true, schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-preserve-unknown-fields': true } } }],
    },
  });
}
