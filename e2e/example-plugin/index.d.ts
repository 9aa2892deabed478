import type { StoragePlugin } from '@strata/core';

declare const plugin: StoragePlugin;
export default plugin;
