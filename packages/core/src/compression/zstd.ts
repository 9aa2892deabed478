import { createRequire } from 'node:module';
import { z } from 'zod';
import { compress, decompress } from 'zstd-napi';
import { definePlugin } from '../plugins/contract.js';
import { StrataError } from '../errors/index.js';

// The low-level binding compresses straight into a caller's buffer (the pack), with no garbage.
const binding = createRequire(import.meta.url)('zstd-napi/binding') as typeof import('zstd-napi/binding.js');

export const zstdConfigSchema = z
  .object({
    level: z.number().int().min(-7).max(22).default(3),
  })
  .strict();

/**
 * Core's built-in compression, reached through the same contract a third party implements.
 * Frames carry zstd's content checksum so a damaged frame fails to decompress.
 */
export const zstdPlugin = definePlugin({
  name: 'zstd',
  kind: 'compression',
  configSchema: zstdConfigSchema,
  create: (config) => {
    const cctx = new binding.CCtx();
    cctx.setParameter(binding.CParameter.compressionLevel, config.level);
    cctx.setParameter(binding.CParameter.checksumFlag, 1);
    return {
      extension: 'zst',
      parallel: { codec: 'zstd' as const, level: config.level },
      bound: (size: number) => binding.compressBound(size),
      compressInto: (data: Buffer, out: Buffer) => cctx.compress2(out, data),
      compress: (data: Buffer) =>
        Promise.resolve(
          compress(data, {
            compressionLevel: config.level,
            checksumFlag: true,
          }),
        ),
      decompress: (data: Buffer) => {
        try {
          return Promise.resolve(decompress(data));
        } catch (err) {
          return Promise.reject(new StrataError('Integrity', `zstd frame does not decompress: ${(err as Error).message}`, { cause: err }));
        }
      },
    };
  },
});

/** No compression, for data that does not compress or for tests. */
export const nonePlugin = definePlugin({
  name: 'none',
  kind: 'compression',
  configSchema: z.object({}).passthrough(),
  create: () => ({
    extension: 'raw',
    parallel: { codec: 'none' as const, level: 0 },
    compress: (data: Buffer) => Promise.resolve(data),
    decompress: (data: Buffer) => Promise.resolve(data),
  }),
});
