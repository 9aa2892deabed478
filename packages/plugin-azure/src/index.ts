import { definePlugin } from '@strata/core';
import { AzureBackend } from './AzureBackend.js';
import { azureConfigSchema, type AzureConfig, type AzureConfigInput } from './config.js';

export default definePlugin({
  name: 'azure',
  kind: 'storage',
  configSchema: azureConfigSchema,
  create: (config) => new AzureBackend(config),
});

export { AzureBackend, azureConfigSchema, type AzureConfig, type AzureConfigInput };
export type { AzureBackendTuning } from './AzureBackend.js';
