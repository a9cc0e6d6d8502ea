import { parseOptions } from './usage-error.js';

export const usage = `Usage: dockhook serve

Runs dockhook until SIGTERM/SIGINT: the webhook endpoint, the build queue and
the worker. Settings come from the environment and ./.env (see .env.example).
With NGROK_API_URL set it reads the public URL from the ngrok agent, logs
"webhook URL: …" and sets up the webhook of every WEBHOOK_REPOS repository.`;

/** Returns undefined: the server keeps the process alive and exits on a signal. */
export async function run(args: string[]): Promise<number | undefined> {
  parseOptions(args, {});
  const { serve } = await import('../serve.js');
  await serve();
  return undefined;
}
