import { config as loadDotenv } from 'dotenv';

/**
 * The environment dockhook runs with: process.env over the .env file of the
 * working directory, as `npm start` reads them (real variables win). Quiet,
 * because dotenv otherwise prints a banner into the command's output.
 */
export function loadEnv(): Record<string, string | undefined> {
  loadDotenv({ quiet: true });
  return process.env;
}
