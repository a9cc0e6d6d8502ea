import assert from 'node:assert/strict';
import { request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { sign } from '@octokit/webhooks-methods';
import { examplePayload, mergedPullRequestPayload, signDelivery } from '../support/deliveries.js';
import { SECRET, startHarness, type Harness } from '../support/harness.js';

const SHA = 'b'.repeat(40);

/** POSTs raw bytes with exactly these headers. */
async function send(h: Harness, body: string, headers: Record<string, string | undefined>, method = 'POST') {
  const clean = Object.fromEntries(Object.entries(headers).filter(([, v]) => v !== undefined)) as Record<string, string>;
  const res = await fetch(`${h.url}/webhook`, { method, body: method === 'GET' ? undefined : body, headers: clean });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** Streams `total` bytes with a Content-Length or chunked, and reads whatever answer comes back. */
function sendLarge(url: string, total: number, chunked: boolean): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const target = new URL('/webhook', url);
    const headers: Record<string, string> = {
      'content-type': 'application/json',
      'x-github-event': 'pull_request',
      'x-github-delivery': 'large-1',
      'x-hub-signature-256': `sha256=${'0'.repeat(64)}`,
    };
    if (!chunked) headers['content-length'] = String(total);
    const req = request(target, { method: 'POST', headers }, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', (err) => reject(err));
    const chunk = Buffer.alloc(1024 * 1024, 0x20);
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        sent += chunk.length;
        if (!req.write(chunk)) return void req.once('drain', pump);
      }
      req.end();
    };
    pump();
  });
}

describe('POST /webhook answers every bad input clearly and stays up', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
  });
  after(async () => {
    await h?.close();
  });

  const merged = () => mergedPullRequestPayload({ owner: 'octo-org', repo: 'nothing-here', sha: SHA });

  it('401 for a missing, empty, malformed, wrong or SHA-1-only signature', async () => {
    const { body, headers } = await signDelivery(SECRET, merged());
    const cases: [Record<string, string | undefined>, RegExp][] = [
      [{ 'x-hub-signature-256': undefined, 'x-hub-signature': undefined }, /missing X-Hub-Signature-256/],
      [{ 'x-hub-signature-256': '' , 'x-hub-signature': undefined }, /missing X-Hub-Signature-256/],
      [{ 'x-hub-signature-256': 'sha256=xyz' }, /malformed/],
      [{ 'x-hub-signature-256': `sha1=${'a'.repeat(40)}` }, /malformed/],
      [{ 'x-hub-signature-256': `sha256=${'a'.repeat(64)}` }, /does not match/],
      [{ 'x-hub-signature-256': (await signDelivery('another-secret', merged())).headers['x-hub-signature-256'] }, /does not match/],
      // GitHub also sends the SHA-1 header; a hook that sends only that one is refused.
      [{ 'x-hub-signature-256': undefined, 'x-hub-signature': `sha1=${'a'.repeat(40)}` }, /only an SHA-1 signature/],
    ];
    for (const [override, message] of cases) {
      const res = await send(h, body, { ...headers, ...override });
      assert.equal(res.status, 401, JSON.stringify(override));
      assert.match(res.body.error, message);
    }
    assert.equal((await h.service.store.list({ limit: 10 })).length, 0, 'nothing unverified is queued');
  });

  it('401 when the body was changed after signing', async () => {
    const { body, headers } = await signDelivery(SECRET, merged());
    const res = await send(h, body.replace('"closed"', '"closed" '), headers);
    assert.equal(res.status, 401);
  });

  it('400 for a signed body that is not JSON, and for missing event or delivery headers', async () => {
    const notJson = 'this is not json';
    const { headers } = await signDelivery(SECRET, {});
    const sig = (await signDelivery(SECRET, {})).headers;
    const signed = await sign(SECRET, notJson);
    const res = await send(h, notJson, { ...headers, 'x-hub-signature-256': signed });
    assert.equal(res.status, 400);
    assert.match(res.body.error, /body is not JSON/);

    const ok = await signDelivery(SECRET, merged());
    const noEvent = await send(h, ok.body, { ...ok.headers, 'x-github-event': undefined });
    assert.equal(noEvent.status, 400);
    assert.match(noEvent.body.error, /missing X-GitHub-Event/);
    const noDelivery = await send(h, ok.body, { ...ok.headers, 'x-github-delivery': undefined });
    assert.equal(noDelivery.status, 400);
    assert.match(noDelivery.body.error, /missing X-GitHub-Delivery/);
    assert.ok(sig);
  });

  it('413 for a body over 25 MiB, declared or streamed, and keeps serving', async () => {
    const declared = await sendLarge(h.url, 26 * 1024 * 1024, false);
    assert.equal(declared.status, 413);
    assert.match(declared.body, /25 MiB/);
    const streamed = await sendLarge(h.url, 30 * 1024 * 1024, true).catch((err: Error) => ({ status: -1, body: err.message }));
    // Streamed: the server stops reading at the limit; it answers 413 or closes the socket mid-upload.
    assert.ok(streamed.status === 413 || streamed.status === -1, `got ${streamed.status}`);
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
  });

  it('405 for other methods on /webhook, 404 elsewhere', async () => {
    const res = await fetch(`${h.url}/webhook`);
    assert.equal(res.status, 405);
    assert.equal(res.headers.get('allow'), 'POST');
    assert.equal((await fetch(`${h.url}/webhook`, { method: 'PUT', body: '{}' })).status, 405);
    assert.equal((await fetch(`${h.url}/nope`)).status, 404);
  });

  it('200 ignored with the reason for ping, other events, other actions, unmerged closes and other branches', async () => {
    const cases: [unknown, string, RegExp][] = [
      [examplePayload('ping'), 'ping', /ping/],
      [examplePayload('push'), 'push', /event push is not built/],
      [examplePayload('pull_request', 'opened'), 'pull_request', /action opened/],
      [{ ...merged(), pull_request: { ...(merged().pull_request as object), merged: false } }, 'pull_request', /closed without merging/],
      [mergedPullRequestPayload({ owner: 'o', repo: 'r', sha: SHA, branch: 'feature/x', defaultBranch: 'main' }), 'pull_request', /not a build branch/],
      [{ ...merged(), pull_request: { ...(merged().pull_request as object), merge_commit_sha: null } }, 'pull_request', /no usable merge_commit_sha/],
    ];
    for (const [payload, event, reason] of cases) {
      const res = await h.deliver(payload, { event });
      assert.equal(res.status, 200, event);
      assert.match(res.body.ignored, reason);
    }
  });

  it('accepts GitHub\'s default form encoding (payload=…) and queues the build', async () => {
    const res = await h.deliver(mergedPullRequestPayload({ owner: 'octo-org', repo: 'form-encoded', sha: 'c'.repeat(40) }), { form: true });
    assert.equal(res.status, 202);
    assert.equal(typeof res.body.build, 'number');
    const build = await h.waitForBuild(res.body.build);
    // The repository does not exist on the fake GitHub: the build fails with a reason, the server stays up.
    assert.equal(build.state, 'failed');
    assert.match(build.failure ?? '', /repository octo-org\/form-encoded not found, or GITHUB_TOKEN cannot read it/);
    assert.equal((await fetch(`${h.url}/healthz`)).status, 200);
  });

  it('never writes the secret, the token or signatures to its log', async () => {
    const log = await h.logText();
    assert.ok(log.length > 0);
    assert.doesNotMatch(log, new RegExp(SECRET));
    assert.doesNotMatch(log, /ghp_testtoken/);
    assert.doesNotMatch(log, /sha256=[0-9a-f]{64}/);
  });
});
