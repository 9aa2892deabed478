export { BaseCommand, exitCodeFor } from './BaseCommand.js';
export { loadConfig, configPath, selectCluster, DEFAULT_CONFIG_PATH } from './config/loadConfig.js';
export { openRepository } from './plugins/loadPlugins.js';
