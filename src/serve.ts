import { ConfigError, loadConfig } from './config.js';
import { loadEnv } from './env.js';
import { AppError } from './errors.js';
import { createLogger } from './log.js';
import { startService } from './service.js';
import { setUpWebhooks } from './webhook-setup.js';

/** `npm start` and `dockhook serve`: configuration from the environment and .env, then serve until SIGTERM/SIGINT. */
export async function serve(): Promise<void> {
  let config;
  try {
    config = loadConfig(loadEnv());
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`dockhook: ${err.message}\n`);
      process.exit(78); // EX_CONFIG
    }
    throw err;
  }
  const log = createLogger(config.logLevel);
  let service;
  try {
    service = await startService(config, { log });
  } catch (err) {
    // What a user can fix (the store unreachable, a schema from a newer dockhook): the message and what to do, no stack.
    if (!(err instanceof AppError)) throw err;
    process.stderr.write(`dockhook: cannot start: ${err.message}${err.hint ? `\n  ${err.hint}` : ''}\n`);
    process.exit(1);
  }
  // In the background: /healthz must answer while the ngrok agent is still connecting. Never rejects.
  // Workers receive no webhooks, so they neither create hooks nor ask ngrok.
  if (config.role !== 'worker') void setUpWebhooks(config, service.github, log);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) {
      log.warn({ signal }, 'second signal: exiting now; unfinished builds run at the next start');
      process.exit(130);
    }
    log.info({ signal }, 'signal received');
    service.stop().then(
      () => process.exit(0),
      (err) => {
        log.error({ err }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

