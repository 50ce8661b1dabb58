// @kubernetes/client-node for the test suites, loaded after the Node 20 polyfills it needs (ES
// modules evaluate their imports in order, so the polyfills run first).
import './node20-polyfills.js';
export * from '@kubernetes/client-node';
