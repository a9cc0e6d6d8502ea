import { createScrubber } from '../secrets.js';
import { checkConfig, checkEngine, checkGitHub, checkPlatforms, checkNgrok, checkRegistry, checkWebhookSecret, type CheckResult } from './doctor-checks.js';
import { loadEnv } from '../env.js';
import { parseOptions } from './usage-error.js';

export const usage = `Usage: dockhook doctor [--repo owner/name]...

Checks what dockhook needs, one line each:
  config          every setting (environment and ./.env), every problem listed
  engine          the engine answers (DOCKER_HOST or the local socket): Docker
                  or Podman, and the builder BUILDER gives there
  platforms       the platforms the engine can run: its own, and those QEMU
                  runs through binfmt_misc (warn when there are none)
  registry        REGISTRY_URL answers and accepts REGISTRY_USERNAME/PASSWORD
  github          GITHUB_TOKEN is valid and may write commit statuses to each
                  WEBHOOK_REPOS repository (or each --repo)
  webhook secret  WEBHOOK_SECRET is set and not short
  ngrok           with NGROK_API_URL: the agent has a public https URL

Exits 1 when any line says FAIL; "warn" lines do not change the exit code.

  --repo    repository to check for status permission (repeatable; default
            the WEBHOOK_REPOS list)`;

export function formatLine(r: CheckResult): string {
  return `${r.level.padEnd(4)} ${r.name}: ${r.message}${r.fix ? `  → fix: ${r.fix}` : ''}`;
}

export async function run(args: string[]): Promise<number> {
  const v = parseOptions(args, { repo: { type: 'string', multiple: true } });
  const env = loadEnv();
  const { config, results } = checkConfig(env);
  // A last net: no check prints a secret, but an error text from a server could echo one.
  // The config's values too: a secret may have come from a NAME_FILE.
  const scrub = createScrubber([
    env.WEBHOOK_SECRET, env.GITHUB_TOKEN, env.REGISTRY_PASSWORD, env.API_TOKEN, env.NGROK_AUTHTOKEN,
    config?.webhookSecret, config?.github.mode === 'token' ? config.github.token : config?.github.privateKey, env.PRIVATE_KEY, config?.registryAuth?.password, config?.apiToken,
  ]);
  let failed = false;
  const print = (results: CheckResult[]) => {
    for (const r of results) {
      if (r.level === 'FAIL') failed = true;
      process.stdout.write(`${scrub(formatLine(r))}\n`);
    }
  };

  print(results);
  print([await checkEngine(undefined, config?.builder)]);
  const platforms = await checkPlatforms(); // none when the engine does not answer: its line said so
  if (platforms) print([platforms]);
  if (!config) {
    process.stdout.write('skip registry, github, webhook secret, ngrok: fix the configuration first\n');
    return 1;
  }
  print([await checkRegistry(config)]);
  const repos = v.repo?.length ? v.repo : config.webhookRepos;
  print(await checkGitHub(config, repos, !v.repo?.length && repos.length > 0));
  print([checkWebhookSecret(config)]);
  const ngrok = await checkNgrok(config);
  if (ngrok) print([ngrok]);
  return failed ? 1 : 0;
}
