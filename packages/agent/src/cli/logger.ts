import { createRequire } from 'node:module';
import type { Logger } from '@strata/core/base';
import type * as Pino from 'pino';

export const LOG_LEVELS = ['error', 'warn', 'info', 'debug'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

const RANK: Record<LogLevel, number> = { error: 0, warn: 1, info: 2, debug: 3 };

/**
 * pino on stderr, loaded only when a message at an enabled level is logged: at the default level
 * (warn) a successful archive-push never pays for loading it. pino is CommonJS, so it loads
 * synchronously and the Logger interface stays synchronous.
 */
export function createLogger(level: LogLevel, cmd: string | undefined): Logger {
  let instance: Pino.Logger | undefined;
  const get = (): Pino.Logger => {
    if (!instance) {
      const { pino } = createRequire(import.meta.url)('pino') as typeof Pino;
      instance = pino({ level, base: { cmd } }, pino.destination(2));
    }
    return instance;
  };
  const at =
    (l: LogLevel) =>
    (obj: object, msg?: string): void => {
      if (RANK[l] <= RANK[level]) get()[l](obj, msg);
    };
  return { debug: at('debug'), info: at('info'), warn: at('warn'), error: at('error') };
}
