import { config as loadDotenv } from 'dotenv';

/**
 * The environment a command sees: process.env over the .env file of the
 * working directory, as `npm start` reads them (real variables win). Quiet,
 * because dotenv otherwise prints a banner into the command's output.
 */
export function commandEnv(): Record<string, string | undefined> {
  loadDotenv({ quiet: true });
  return process.env;
}
