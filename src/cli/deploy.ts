import { parseArgs } from 'node:util';
import { isValidRepositoryName, isValidTag } from '../docker-reference.js';
import { loadEnv } from '../env.js';
import { createScrubber } from '../secrets.js';
import { apiToken, serviceUrl } from './build.js';
import { postToDockhook, reportUnexpected } from './post-to-dockhook.js';
import { UsageError } from './usage-error.js';

export const usage = `Usage: dockhook deploy <service> <version> [--url <url>]

Asks a running dockhook to deploy an earlier pushed version of an image
(POST /api/deployments), by the same health-gated swap a merge uses: a
rollback. Waits until the deploy is over and prints how it went.

  --url     dockhook's address (default: DOCKHOOK_URL, else
            http://127.0.0.1:$PORT, PORT being 3000 unless set)

Needs API_TOKEN (or API_TOKEN_FILE), from the environment or ./.env. Exits 0
when the version runs, 1 when the deploy failed (the previous version runs
again) or dockhook refused or could not be reached.`;

// Pull, swap and the health wait: a deploy answers once it is over.
const TIMEOUT_MS = 15 * 60_000;

export async function run(args: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args, options: { url: { type: 'string' } }, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const [service, version, extra] = parsed.positionals;
  if (!service || !version) throw new UsageError('give the service (a service_name of dockerInfo.json) and the version to deploy');
  if (extra !== undefined) throw new UsageError(`unexpected argument ${JSON.stringify(extra)}: give one service and one version`);
  if (!isValidRepositoryName(service)) throw new UsageError(`${JSON.stringify(service)} is not a service name (for example api)`);
  if (!isValidTag(version)) throw new UsageError(`${JSON.stringify(version)} is not a version tag (for example 1.4.1)`);
  const env = loadEnv();
  const base = serviceUrl(parsed.values.url, env);
  const token = apiToken(env);
  const scrub = createScrubber([token]);
  const out = (text: string) => process.stdout.write(scrub(text));
  const err = (text: string) => process.stderr.write(scrub(text));

  const request = { command: 'deploy', base, path: '/api/deployments', token, body: { service, version }, timeoutMs: TIMEOUT_MS, err };
  const answer = await postToDockhook(request);
  if (!answer) return 1;
  const { json } = answer;
  if (answer.status === 201 && json && typeof json.state === 'string') {
    const log = Array.isArray(json.log) ? (json.log as string[]) : [];
    if (json.state === 'success') {
      out(`deployed ${service} ${version} (deployment #${String(json.id)})\n`);
      return 0;
    }
    err(`dockhook deploy: ${service} ${version} failed: ${String(json.reason ?? json.state)}\n${log.map((l) => `  ${l}\n`).join('')}`);
    return 1;
  }
  reportUnexpected(request, answer);
  return 1;
}
