#!/usr/bin/env node
import { UsageError } from './cli/usage-error.js';

/**
 * `dockhook <command>`: the package's bin. Commands load lazily, so `--help`
 * and `doctor` do not open the database or start anything.
 */

interface Command {
  usage: string;
  /** An exit code, or undefined for a command that keeps running (serve). */
  run(args: string[]): Promise<number | undefined>;
}

const commands: Record<string, () => Promise<Command>> = {
  serve: () => import('./cli/serve.js'),
  'send-test-delivery': () => import('./cli/send-test-delivery.js'),
  doctor: () => import('./cli/doctor.js'),
  build: () => import('./cli/build.js'),
  deploy: () => import('./cli/deploy.js'),
  'init-registry-auth': () => import('./cli/init-registry-auth.js'),
  'init-db-auth': () => import('./cli/init-db-auth.js'),
};

/** Here rather than in each command's module, so the overview loads none of them. */
const summaries: Record<string, string> = {
  serve: 'run the webhook server (what `npm start` runs)',
  'send-test-delivery': 'sign and send an example merged pull request to a dockhook',
  doctor: 'check the settings, the engine, the registry, GitHub and ngrok',
  build: 'ask a running dockhook to build a branch, tag or commit of a repository now',
  deploy: 'ask a running dockhook to deploy an earlier pushed version of an image (a rollback)',
  'init-registry-auth': "make the registry's password and htpasswd once (compose runs it)",
  'init-db-auth': "make PostgreSQL's password and DATABASE_URL file once (docker-compose.scale.yml runs it)",
};

const mainUsage = `Usage: dockhook <command> [options]

Commands:
${Object.entries(summaries)
  .map(([name, text]) => `  ${name.padEnd(20)}${text}`)
  .join('\n')}

Run \`dockhook <command> --help\` for a command's options. Settings come from
the environment and ./.env (see .env.example).`;

const isHelp = (arg: string | undefined) => arg === '--help' || arg === '-h' || arg === 'help';

async function main(argv: string[]): Promise<number | undefined> {
  const [name, ...args] = argv;
  if (name === undefined || isHelp(name)) {
    process.stdout.write(`${mainUsage}\n`);
    return name === undefined ? 2 : 0;
  }
  const load = commands[name];
  if (!load) {
    process.stderr.write(`dockhook: unknown command ${JSON.stringify(name)}\n\n${mainUsage}\n`);
    return 2;
  }
  const command = await load();
  if (args.some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(`${command.usage}\n`);
    return 0;
  }
  try {
    return await command.run(args);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    process.stderr.write(`dockhook ${name}: ${err.message}\n\n${command.usage}\n`);
    return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    // Short commands exit now, so idle keep-alive sockets cannot hold the process open; serve keeps running.
    if (code !== undefined) process.exit(code);
  },
  (err: unknown) => {
    process.stderr.write(`dockhook: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
