import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/**
 * Paths pino blanks out wherever they appear. Code never logs headers or
 * payloads whole; this is the net under that rule.
 */
export const REDACT_PATHS = [
  'secret',
  'token',
  'password',
  'authorization',
  'headers.authorization',
  'headers["x-hub-signature-256"]',
  'headers["x-hub-signature"]',
  '*.secret',
  '*.token',
  '*.password',
  '*.authorization',
  '*.webhookSecret',
  '*.githubToken',
  '*.apiToken',
  '*.registryAuth',
  'config.registryAuth',
  'authconfig',
  '*.authconfig',
];

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'dockhook' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // "level":"error" reads better at 2 a.m. than "level":50, and log shippers accept both.
      formatters: { level: (label) => ({ level: label }) },
    },
    destination,
  );
}
