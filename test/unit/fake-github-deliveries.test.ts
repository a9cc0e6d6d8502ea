import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { Octokit } from '@octokit/rest';
import { createAppAuth } from '@octokit/auth-app';
import { verify } from '@octokit/webhooks-methods';
import { createGitRepo, type GitRepo } from '../support/git-repo.js';
import { startFakeGitHub, type FakeApp, type FakeGitHub } from '../support/fake-github.js';
import { mergedPullRequestPayload } from '../support/deliveries.js';
import { quiet } from '../support/octokit-rejection.js';

const TOKEN = 'ghp_fake_token_for_tests';

interface Received {
  headers: IncomingHttpHeaders;
  body: string;
}

/** A webhook receiver on loopback: records what arrives and answers `status` (settable). */
async function startReceiver() {
  const received: Received[] = [];
  const state = { status: 200 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      received.push({ headers: req.headers, body: Buffer.concat(chunks).toString('utf8') });
      res.writeHead(state.status, { 'content-type': 'text/plain' });
      res.end(state.status < 300 ? 'thanks' : 'down for maintenance');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`;
  return { url, received, state, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

describe('fake GitHub: hook deliveries and redelivery', () => {
  let repo: GitRepo;
  let gh: FakeGitHub;
  let app: FakeApp;
  let installationId: number;
  let receiver: Awaited<ReturnType<typeof startReceiver>>;
  let asApp: Octokit;
  let asUser: Octokit;
  const owner = 'acme';
  const name = 'widget';
  /** GitHub's example carries an installation of its own: left out, so the fake adds the App's. */
  const payload = () => {
    const p = mergedPullRequestPayload({ owner, repo: name, sha: repo.head() });
    delete p.installation;
    return p;
  };

  before(async () => {
    repo = await createGitRepo({ Dockerfile: 'FROM busybox\n' });
    gh = await startFakeGitHub({ token: TOKEN });
    gh.addRepo(owner, name, repo);
    receiver = await startReceiver();
    app = gh.createApp({ webhookUrl: receiver.url, webhookSecret: 'app-secret' });
    ({ installationId } = gh.installApp(app.appId, { account: owner, repositories: [name] }));
    asApp = new Octokit({ authStrategy: createAppAuth, auth: { appId: app.appId, privateKey: app.privateKey }, baseUrl: gh.apiUrl, log: quiet });
    asUser = new Octokit({ auth: TOKEN, baseUrl: gh.apiUrl, log: quiet });
  });

  after(async () => {
    await receiver.close();
    await gh.close();
    await repo.cleanup();
  });

  test('App delivery: GitHub\'s headers, signed over the exact body, installation added, recorded', async () => {
    const before = receiver.received.length;
    const d = await gh.deliver({ to: { app: app.appId }, event: 'pull_request', payload: payload(), guid: 'guid-app-1' });
    const got = receiver.received[before]!;
    assert.equal(got.headers['x-github-event'], 'pull_request');
    assert.equal(got.headers['x-github-delivery'], 'guid-app-1');
    assert.equal(got.headers['x-github-hook-installation-target-type'], 'integration');
    assert.equal(got.headers['x-github-hook-installation-target-id'], String(app.appId));
    assert.match(String(got.headers['x-github-hook-id']), /^\d+$/);
    assert.equal(got.headers['content-type'], 'application/json');
    assert.match(String(got.headers['user-agent']), /^GitHub-Hookshot\//);
    assert.ok(await verify('app-secret', got.body, String(got.headers['x-hub-signature-256'])));
    assert.match(String(got.headers['x-hub-signature']), /^sha1=[0-9a-f]{40}$/);
    const body = JSON.parse(got.body);
    assert.equal(body.installation.id, installationId);
    assert.ok(body.installation.node_id);

    assert.equal(d.guid, 'guid-app-1');
    assert.deepEqual([d.status, d.status_code, d.redelivery, d.event, d.action], ['OK', 200, false, 'pull_request', 'closed']);
    assert.equal(d.installation_id, installationId);
    assert.equal(d.repository_id, body.repository.id);
    assert.equal(d.throttled_at, null);
    assert.equal(d.response.payload, 'thanks');
    assert.deepEqual(gh.deliveries({ app: app.appId }).at(-1), d);
  });

  test('failures: a 503 is "Invalid HTTP Response: 503"; nothing listening is status_code 0', async () => {
    receiver.state.status = 503;
    const failed = await gh.deliver({ to: { app: app.appId }, event: 'pull_request', payload: payload() });
    receiver.state.status = 200;
    assert.deepEqual([failed.status, failed.status_code], ['Invalid HTTP Response: 503', 503]);
    assert.equal(failed.response.payload, 'down for maintenance');

    const down = gh.createApp({ slug: 'down', webhookUrl: 'http://127.0.0.1:1/webhook', webhookSecret: 's' });
    const refused = await gh.deliver({ to: { app: down.appId }, event: 'push', payload: { ref: 'refs/heads/main' } });
    assert.deepEqual([refused.status, refused.status_code], ['failed to connect to host', 0]);
    assert.deepEqual(refused.response, { headers: {}, payload: null });
    assert.equal(refused.installation_id, null, 'no repository, so no installation');

    await assert.rejects(gh.deliver({ to: { app: app.appId }, event: 'issues', payload: {} }), /does not subscribe to issues/);
  });

  test('GET /app/hook/deliveries: newest first, per_page and cursor paging through Link, full delivery by id', async () => {
    for (let i = 0; i < 3; i++) await gh.deliver({ to: { app: app.appId }, event: 'pull_request', payload: payload(), guid: `page-${i}` });
    const recorded = gh.deliveries({ app: app.appId });
    const { data, headers } = await asApp.rest.apps.listWebhookDeliveries({ per_page: 2 });
    assert.deepEqual(data.map((d) => d.id), recorded.slice(-2).reverse().map((d) => d.id));
    assert.equal('request' in data[0]!, false, 'list items carry no request/response');
    assert.match(headers.link ?? '', /[?&]cursor=v1_\d+/);
    assert.match(headers.link ?? '', /rel="next"/);
    const all = await asApp.paginate(asApp.rest.apps.listWebhookDeliveries, { per_page: 2 });
    assert.deepEqual(all.map((d) => d.id), recorded.map((d) => d.id).reverse());

    const failures = await asApp.rest.apps.listWebhookDeliveries({ status: 'failure' });
    assert.deepEqual(failures.data.map((d) => d.status_code), [503]);

    const one = await asApp.rest.apps.getWebhookDelivery({ delivery_id: recorded[0]!.id });
    assert.equal(one.data.guid, 'guid-app-1');
    assert.equal(one.data.request.headers?.['X-GitHub-Event'], 'pull_request');
    assert.equal((one.data.request.payload as { installation: { id: number } }).installation.id, installationId);
    assert.equal(one.data.response.payload, 'thanks');
    assert.equal((await asApp.rest.apps.getWebhookDelivery({ delivery_id: 1 }).catch((e: { status: number }) => e)).status, 404);

    // A token is no credential here.
    assert.equal((await asUser.rest.apps.listWebhookDeliveries().catch((e: { status: number }) => e)).status, 401);
  });

  test('redelivery: 202 {}, the stored body again with the same GUID, signed with the current secret, to the current URL', async () => {
    receiver.state.status = 500;
    const original = await gh.deliver({ to: { app: app.appId }, event: 'pull_request', payload: payload(), guid: 'redeliver-me' });
    receiver.state.status = 200;
    const second = await startReceiver();
    try {
      gh.setAppWebhook(app.appId, { url: second.url, secret: 'rotated-secret' });
      const answer = await asApp.rest.apps.redeliverWebhookDelivery({ delivery_id: original.id });
      assert.equal(answer.status, 202);
      assert.deepEqual(answer.data, {});
      await gh.deliveriesSettled();

      const got = second.received.at(-1)!;
      const sentFirst = receiver.received.at(-1)!;
      assert.equal(got.body, sentFirst.body, 'the same bytes');
      assert.equal(got.headers['x-github-delivery'], 'redeliver-me');
      assert.ok(await verify('rotated-secret', got.body, String(got.headers['x-hub-signature-256'])));
      const [request] = gh.redeliveryRequests().slice(-1);
      assert.equal(request!.delivery_id, original.id);
      assert.equal(request!.attempt?.redelivery, true);
      assert.equal(request!.attempt?.guid, 'redeliver-me');
      assert.notEqual(request!.attempt?.id, original.id);
      assert.equal(request!.attempt?.status, 'OK');
      const listed = await asApp.rest.apps.listWebhookDeliveries({ per_page: 2 });
      assert.deepEqual(listed.data.map((d) => [d.guid, d.redelivery, d.status]), [
        ['redeliver-me', true, 'OK'],
        ['redeliver-me', false, 'Invalid HTTP Response: 500'],
      ]);
      assert.equal(gh.requestCount({ route: 'POST /app/hook/deliveries/{delivery_id}/attempts' }), 1);
    } finally {
      gh.setAppWebhook(app.appId, { url: receiver.url, secret: 'app-secret' });
      await second.close();
    }
  });

  test('repository hook: form content type per its config, listed and redelivered through the repos endpoints', async () => {
    const hook = await asUser.rest.repos.createWebhook({
      owner,
      repo: name,
      events: ['pull_request'],
      config: { url: receiver.url, content_type: 'form', secret: 'repo-secret' },
    });
    const before = receiver.received.length;
    const d = await gh.deliver({ to: { owner, repo: name }, event: 'pull_request', payload: payload() });
    const got = receiver.received[before]!;
    assert.equal(got.headers['content-type'], 'application/x-www-form-urlencoded');
    assert.ok(got.body.startsWith('payload='));
    assert.ok(await verify('repo-secret', got.body, String(got.headers['x-hub-signature-256'])));
    assert.equal(got.headers['x-github-hook-id'], String(hook.data.id));
    assert.equal(got.headers['x-github-hook-installation-target-type'], 'repository');
    assert.equal(JSON.parse(new URLSearchParams(got.body).get('payload')!).installation, undefined, 'repository hooks get no installation');
    assert.deepEqual(d.target, { owner, repo: name, hookId: hook.data.id });

    const listed = await asUser.rest.repos.listWebhookDeliveries({ owner, repo: name, hook_id: hook.data.id });
    assert.deepEqual(listed.data.map((x) => x.id), [d.id]);
    const full = await asUser.rest.repos.getWebhookDelivery({ owner, repo: name, hook_id: hook.data.id, delivery_id: d.id });
    assert.equal(full.data.request.headers?.['Content-Type'], 'application/x-www-form-urlencoded');
    // Another hook's (or the App's) delivery is not this hook's.
    const appDelivery = gh.deliveries({ app: app.appId })[0]!;
    assert.equal((await asUser.rest.repos.getWebhookDelivery({ owner, repo: name, hook_id: hook.data.id, delivery_id: appDelivery.id }).catch((e: { status: number }) => e)).status, 404);

    const answer = await asUser.rest.repos.redeliverWebhookDelivery({ owner, repo: name, hook_id: hook.data.id, delivery_id: d.id });
    assert.equal(answer.status, 202);
    await gh.deliveriesSettled();
    assert.equal(receiver.received.at(-1)!.body, got.body);
    assert.equal(receiver.received.at(-1)!.headers['x-github-delivery'], d.guid);
    assert.deepEqual(gh.deliveries({ owner, repo: name, hookId: hook.data.id }).map((x) => x.redelivery), [false, true]);
    assert.deepEqual(
      gh.requests.filter((r) => r.route?.startsWith('GET /repos') || r.route?.startsWith('POST /repos')).map((r) => r.route).slice(-4),
      [
        'GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries',
        'GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}',
        'GET /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}',
        'POST /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/{delivery_id}/attempts',
      ],
    );

    await assert.rejects(gh.deliver({ to: { owner, repo: name }, event: 'push', payload: {} }), /does not subscribe to push/);
  });
});
