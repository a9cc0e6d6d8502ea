import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Octokit } from '@octokit/rest';
import { pino } from 'pino';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { startService, type Service } from '../../src/service.js';
import type { BuildRecord } from '../../src/store/store.js';
import { mergedPullRequestPayload } from '../support/deliveries.js';
import type { FakeApp } from '../support/fake-github-app.js';
import type { DeliveryTarget, RecordedDelivery } from '../support/fake-github-deliveries.js';
import { startFakeGitHub, type FakeGitHub } from '../support/fake-github.js';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { SECRET, TOKEN, dockhookEnv } from '../support/harness.js';
import { freePort } from '../support/ports.js';
import { sharedPostgres } from '../support/postgres.js';
import { startRegistry, type TestRegistry } from '../support/registry-server.js';
import { until } from '../support/wait.js';

const OWNER = 'recovery-org';
const NAME = 'app';
/** Token mode only: a repository whose hook was given another secret, so every delivery to dockhook (redeliveries too) gets 401. */
const WRONG = 'wrong-secret';
/** In every payload; the log must never show it. */
const TITLE = 'Payload text that never reaches a log 7c1e';
/** A pass every 1.2 s, so a test sees several. */
const EVERY_MINUTES = '0.02';

/**
 * No missed delivery (issue 15), with the real service and the fake GitHub:
 * deliveries made while dockhook is stopped fail (nothing listens on the
 * hook's URL); after the restart each one is redelivered once, through
 * POST /webhook, and built once; a delivery that succeeded is never
 * redelivered. dockerInfo.json is invalid here, so each build fails at
 * once: a failed build is exactly what a second delivery would build again,
 * so one build per delivery shows nothing was delivered twice.
 */
for (const mode of ['token', 'app'] as const) {
  for (const storeKind of ['sqlite', 'postgres'] as const) {
    describe(`missed deliveries are redelivered after a restart (${mode === 'token' ? 'token mode, WEBHOOK_REPOS' : 'GitHub App'}, ${storeKind === 'sqlite' ? 'SQLite' : 'PostgreSQL'})`, () => {
      let gh: FakeGitHub;
      let registry: TestRegistry;
      let repos: GitRepo[] = [];
      let dataDir: string;
      let databaseUrl: string | undefined;
      let port: number;
      let app: FakeApp | undefined;
      const running: Service[] = [];
      const logFiles: string[] = [];

      before(async () => {
        gh = await startFakeGitHub({ token: TOKEN });
        registry = await startRegistry();
        dataDir = await mkdtemp(join(tmpdir(), 'dockhook-recovery-'));
        if (storeKind === 'postgres') databaseUrl = await (await sharedPostgres()).createDatabase();
        port = await freePort();
        const hookUrl = `http://127.0.0.1:${port}/webhook`;
        for (const name of [NAME, WRONG]) {
          const repo = await createGitRepo({ 'dockerInfo.json': '{"version": "1.0.0"}\n', Dockerfile: 'FROM busybox:latest\n' });
          repos.push(repo);
          gh.addRepo(OWNER, name, repo);
        }
        if (mode === 'token') {
          const octokit = new Octokit({ auth: TOKEN, baseUrl: gh.apiUrl });
          for (const [name, secret] of [[NAME, SECRET], [WRONG, 'not-the-webhook-secret']] as const) {
            await octokit.rest.repos.createWebhook({ owner: OWNER, repo: name, events: ['pull_request'], config: { url: hookUrl, content_type: 'json', secret } });
          }
        } else {
          app = gh.createApp({ webhookUrl: hookUrl, webhookSecret: SECRET });
          gh.installApp(app.appId, { account: OWNER, repositories: 'all' });
        }
      });
      after(async () => {
        for (const s of running) await s.stop(0).catch(() => {});
        await gh?.close();
        await registry?.close();
        for (const r of repos) await r.cleanup();
        await rm(dataDir, { recursive: true, force: true });
      });

      async function start(extra: Record<string, string> = {}): Promise<Service> {
        const env = dockhookEnv(gh, registry, dataDir, {
          PORT: String(port),
          PUBLIC_URL: `http://127.0.0.1:${port}`,
          RECOVER_DELIVERIES_MINUTES: EVERY_MINUTES,
          ...(mode === 'token' ? { WEBHOOK_REPOS: `${OWNER}/${NAME},${OWNER}/${WRONG}` } : { GITHUB_TOKEN: '', APP_ID: String(app!.appId), PRIVATE_KEY: app!.privateKey }),
          ...(databaseUrl ? { DATABASE_URL: databaseUrl } : {}),
          ...extra,
        });
        const logFile = join(dataDir, `dockhook-${logFiles.length}.log`);
        logFiles.push(logFile);
        const service = await startService(loadConfig(env), { log: createLogger('debug', pino.destination({ dest: logFile, sync: true })) });
        running.push(service);
        return service;
      }
      async function stop(service: Service): Promise<void> {
        await service.stop(0);
        running.splice(running.indexOf(service), 1);
      }

      const target = (name = NAME): DeliveryTarget | { owner: string; repo: string } => (mode === 'app' ? { app: app!.appId } : { owner: OWNER, repo: name });
      let prs = 0;
      async function merge(repo: GitRepo, name = NAME): Promise<RecordedDelivery> {
        const sha = await repo.commit({ 'change.txt': `change ${++prs}\n` }, `change ${prs}`);
        const payload = mergedPullRequestPayload({ owner: OWNER, repo: name, sha, number: prs });
        payload.pull_request.title = TITLE;
        return gh.deliver({ to: target(name), event: 'pull_request', payload });
      }
      /** A pull request opened (not merged): dockhook answers 200 and builds nothing. */
      async function opened(): Promise<RecordedDelivery> {
        const payload = mergedPullRequestPayload({ owner: OWNER, repo: NAME, sha: 'f'.repeat(40), number: ++prs });
        Object.assign(payload, { action: 'opened' });
        Object.assign(payload.pull_request, { merged: false, merged_at: null, state: 'open', title: TITLE });
        return gh.deliver({ to: target(), event: 'pull_request', payload });
      }
      const requestsFor = (guid: string) => gh.redeliveryRequests().filter((r) => r.guid === guid);
      async function buildsOf(service: Service, guid: string): Promise<BuildRecord[]> {
        return (await service.store.list({ limit: 100 })).filter((b) => b.deliveryId === guid);
      }
      async function finished(service: Service, guid: string): Promise<BuildRecord> {
        return until(`the build of ${guid} to finish`, async () => {
          const [b] = await buildsOf(service, guid);
          return b && (b.state === 'failed' || b.state === 'succeeded') && !service.worker?.isRunning(b.id) ? b : undefined;
        }, 60_000, 100);
      }
      async function metric(service: Service, name: string, labels: string): Promise<number> {
        const text = await (await fetch(`${service.url}/metrics`)).text();
        const line = text.split('\n').find((l) => l.startsWith(`${name}{${labels}}`));
        return line ? Number(line.split(' ').at(-1)) : 0;
      }
      const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

      it('deliveries made while dockhook was down are redelivered once each and built once; the one it got is never redelivered', async () => {
        const first = await start();
        const [repo, wrongRepo] = repos as [GitRepo, GitRepo];
        const got = await merge(repo);
        assert.equal(got.status_code, 202, `dockhook took the delivery made while it ran: ${got.response.payload}`);
        await finished(first, got.guid);
        await stop(first);

        // Nothing listens on the hook's URL now: GitHub records each attempt as failed.
        const missed = [await merge(repo), await merge(repo)];
        const ignored = await opened();
        const refused = mode === 'token' ? await merge(wrongRepo, WRONG) : undefined;
        for (const d of [...missed, ignored, ...(refused ? [refused] : [])]) {
          assert.equal(d.status_code, 0, `${d.guid} failed to connect`);
          assert.equal(d.status, 'failed to connect to host');
        }

        const second = await start();
        // PostgreSQL: a second receiver on the same database races for the same passes; the advisory lock and the store let one GUID be asked for once.
        const extra = storeKind === 'postgres' ? await start({ ROLE: 'receiver', PORT: '0' }) : undefined;
        const all = [...missed, ignored, ...(refused ? [refused] : [])];
        await until('a redelivery of each missed delivery', () => all.every((d) => requestsFor(d.guid).length > 0), 30_000, 100);
        await gh.deliveriesSettled();
        for (const d of missed) await finished(second, d.guid);
        // Several passes later, nothing more was asked for.
        await sleep(4000);
        await gh.deliveriesSettled();

        for (const d of all) {
          const asked = requestsFor(d.guid);
          assert.equal(asked.length, 1, `${d.guid} redelivered once (${asked.length})`);
          assert.equal(asked[0]!.delivery_id, d.id, 'the failed attempt is the one redelivered');
          assert.equal(asked[0]!.attempt?.guid, d.guid, 'with the same GUID');
          assert.equal(asked[0]!.attempt?.redelivery, true);
        }
        assert.equal(requestsFor(got.guid).length, 0, 'the delivery dockhook got is never redelivered');
        for (const d of missed) {
          assert.equal(requestsFor(d.guid)[0]!.attempt?.status_code, 202, 'the redelivery came through POST /webhook, signature checked, and queued a build');
          assert.equal((await buildsOf(second, d.guid)).length, 1, `one build of ${d.guid}`);
        }
        assert.equal(requestsFor(ignored.guid)[0]!.attempt?.status_code, 200, 'an opened pull request is redelivered once too, and ignored');
        assert.equal((await buildsOf(second, ignored.guid)).length, 0);
        assert.equal((await buildsOf(second, got.guid)).length, 1, 'the failed build of the delivery dockhook got was not built again');
        assert.equal((await second.store.list({ limit: 100 })).length, 3, 'three merges, three builds');

        if (refused) {
          // The redelivery failed too (401: the hook's secret is not WEBHOOK_SECRET): counted, warned about with what to do, never asked again.
          assert.equal(requestsFor(refused.guid)[0]!.attempt?.status_code, 401);
          assert.equal((await second.store.redeliveries([refused.guid])).get(refused.guid)?.state, 'failed');
        }
        const services = [second, ...(extra ? [extra] : [])];
        const sum = async (outcome: string) => (await Promise.all(services.map((s) => metric(s, 'dockhook_deliveries_redelivered_total', `outcome="${outcome}"`)))).reduce((a, b) => a + b, 0);
        assert.equal(await sum('requested'), all.length);
        await until('the redeliveries settled in a later pass', async () => (await sum('delivered')) === missed.length + 1 && (await sum('failed')) === (refused ? 1 : 0), 15_000, 200);

        const key = mode === 'app' ? `app:${app!.appId}` : `repo:${OWNER}/${NAME}:${gh.hooks.get(`${OWNER}/${NAME}`)![0]!.id}`.toLowerCase();
        const checkpoint = await second.store.recoveryCheckpoint(key);
        assert.ok(checkpoint !== undefined && checkpoint >= Date.parse(missed[1]!.delivered_at), 'where the pass stopped is in the store');

        if (extra) await stop(extra);
        await stop(second);
        // A restart reads on from the checkpoint and asks for nothing again.
        const third = await start();
        await sleep(2500);
        for (const d of all) assert.equal(requestsFor(d.guid).length, 1, `${d.guid} still redelivered once after another restart`);
        assert.equal((await third.store.list({ limit: 100 })).length, 3);
        await stop(third);

        const logs = (await Promise.all(logFiles.map((f) => readFile(f, 'utf8')))).join('');
        assert.match(logs, /missed delivery: asked GitHub to redeliver it/);
        if (refused) assert.match(logs, /the redelivery failed too \(dockhook answered 401: the hook's secret differs from WEBHOOK_SECRET\); dockhook does not ask again/);
        for (const secret of [SECRET, TOKEN, 'not-the-webhook-secret', TITLE, ...(app ? [app.privateKey.split('\n')[1]!] : [])]) {
          assert.ok(!logs.includes(secret), `the log shows ${secret.slice(0, 12)}…`);
        }
      });

      it('a pass GitHub refuses logs a warning with what to fix, counts it, and dockhook goes on serving', async () => {
        const route = mode === 'app' ? '/app/hook/deliveries' : `/repos/${OWNER}/${NAME}/hooks`;
        gh.failNext({ method: 'GET', pathIncludes: route }, { status: 401, body: { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest' } });
        const service = await start({ RECOVER_DELIVERIES_MINUTES: '10' });
        try {
          await until('the failed pass to be counted', async () => (await metric(service, 'dockhook_delivery_recovery_failures_total', `step="${mode === 'app' ? 'list' : 'hooks'}"`)) === 1, 15_000, 100);
          assert.equal((await fetch(`${service.url}/healthz`)).status, 200, 'still serving');
          const logs = await readFile(logFiles.at(-1)!, 'utf8');
          const warning = logs.split('\n').find((l) => l.includes('missed deliveries not recovered'));
          assert.ok(warning, 'a warning');
          assert.match(warning, mode === 'app' ? /check APP_ID and PRIVATE_KEY/ : /GitHub refused GITHUB_TOKEN: create a new token/);
          assert.match(warning, /"level":"warn"/);
        } finally {
          await stop(service);
        }
      });
    });
  }
}
