import { parseArgs } from 'node:util';
import { isValidRepositoryName, isValidTag } from '../docker-reference.js';
import { loadEnv } from '../env.js';
import { createScrubber } from '../secrets.js';
import { apiToken, serviceUrl } from './build.js';
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

  let res: Response;
  try {
    res = await fetch(`${base}/api/deployments`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'dockhook-cli' },
      body: JSON.stringify({ service, version }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = (e as Error).name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 60_000} min` : (cause?.code ?? cause?.message ?? (e as Error).message);
    err(`dockhook deploy: cannot reach dockhook at ${base} (${why}) → is it running there? Set DOCKHOOK_URL or --url to its address\n`);
    return 1;
  }
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    json = JSON.parse(text) as Record<string, unknown>;
  } catch {
    // not JSON
  }
  if (res.status === 201 && json && typeof json.state === 'string') {
    const log = Array.isArray(json.log) ? (json.log as string[]) : [];
    if (json.state === 'success') {
      out(`deployed ${service} ${version} (deployment #${String(json.id)})\n`);
      return 0;
    }
    err(`dockhook deploy: ${service} ${version} failed: ${String(json.reason ?? json.state)}\n${log.map((l) => `  ${l}\n`).join('')}`);
    return 1;
  }
  const message = typeof json?.error === 'string' ? json.error : text.slice(0, 300);
  const hint = typeof json?.hint === 'string' ? ` → ${json.hint}` : '';
  err(`dockhook deploy: ${res.status} ${message}${hint}\n`);
  return 1;
}
