import { ConfigError, loadConfig } from './config.js';
import { loadEnv } from './env.js';
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
  const service = await startService(config, { log });
  // In the background: /healthz must answer while the ngrok agent is still connecting. Never rejects.
  void setUpWebhooks(config, service.octokit, log);
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

