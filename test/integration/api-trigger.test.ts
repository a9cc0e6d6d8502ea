import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRegistryClient } from '../../src/registry/client.js';
import { git } from '../support/git-repo.js';
import { startHarness, type Harness } from '../support/harness.js';
import type { GitRepo } from '../support/git-repo.js';

/** POST /api/builds end to end: fake GitHub serving a real git repository, the real engine, a real registry. */

const OWNER = 'octo-org';
const NAME = 'manual';
const TOKEN = 'trigger-api-token-42';
const AUTH = { authorization: `Bearer ${TOKEN}` };

const files = (version: string) => ({
  'dockerInfo.json': JSON.stringify({ service_name: 'manual-app', version }),
  Dockerfile: 'FROM busybox:latest\nCOPY message.txt /message.txt\n',
  'message.txt': `version ${version}\n`,
});

describe('POST /api/builds', () => {
  let h: Harness;
  let repo: GitRepo;

  before(async () => {
    h = await startHarness({ env: { API_TOKEN: TOKEN } });
    repo = await h.createRepo(OWNER, NAME, files('1.0.0'));
  });
  after(() => h?.close());

  async function post(body: unknown, headers: Record<string, string> = AUTH, raw = false) {
    const res = await fetch(`${h.url}/api/builds`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: raw ? String(body) : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as any };
  }

  it('needs the token: none or a wrong one is 401, nothing queued', async () => {
    assert.equal((await post({ repo: `${OWNER}/${NAME}`, ref: 'main' }, {})).status, 401);
    assert.equal((await post({ repo: `${OWNER}/${NAME}`, ref: 'main' }, { authorization: 'Bearer wrong' })).status, 401);
    assert.deepEqual(await h.service.store.list({ limit: 10 }), []);
  });

  it('a branch: resolved to its head, built like a merge, moves latest; the same commit again is a duplicate', async () => {
    const answer = await post({ repo: `${OWNER}/${NAME}`, ref: 'main' });
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    assert.equal(answer.body.sha, repo.head());
    const build = await h.waitForBuild(answer.body.build);
    assert.equal(build.state, 'succeeded', build.failure);
    assert.equal(build.trigger, 'manual');
    assert.match(build.deliveryId, /^manual-[0-9a-f-]{36}$/);
    assert.equal(build.branch, 'main');
    assert.equal(build.sha, repo.head());
    assert.equal(build.repoUrl, `https://github.com/${OWNER}/${NAME}`);
    assert.deepEqual(build.pushed.map((p) => p.tag).sort(), ['1.0.0', 'latest', `sha-${repo.head().slice(0, 7)}`].sort());
    assert.deepEqual(h.github.statusesFor(repo.head()).map((s) => s.state), ['pending', 'success']);

    // Same commit by a short sha: GitHub resolves it, the store sees the build it already has.
    const again = await post({ repo: `${OWNER}/${NAME}`, ref: repo.head().slice(0, 7) });
    assert.equal(again.status, 200);
    assert.deepEqual(again.body, { duplicate: build.id, sha: repo.head(), hint: 'send "force": true to build it again' });
  });

  it('a tag: built, but on no branch, so latest stays where it is', async () => {
    const latestBefore = await createRegistryClient({ url: h.registry.url }).getManifestDigest('manual-app', 'latest');
    const sha = await repo.commit(files('1.1.0'), 'Release 1.1.0');
    await git(repo.dir, ['tag', 'v1.1.0']);
    const answer = await post({ repo: `${OWNER}/${NAME}`, ref: 'v1.1.0' });
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    assert.equal(answer.body.sha, sha);
    assert.equal(answer.body.branch, '');
    const build = await h.waitForBuild(answer.body.build);
    assert.equal(build.state, 'succeeded', build.failure);
    assert.deepEqual(build.pushed.map((p) => p.tag).sort(), ['1.1.0', `sha-${sha.slice(0, 7)}`]);
    assert.equal(await createRegistryClient({ url: h.registry.url }).getManifestDigest('manual-app', 'latest'), latestBefore);
  });

  it('an unknown ref: 422 naming it; an unknown repository: 404', async () => {
    const ref = await post({ repo: `${OWNER}/${NAME}`, ref: 'no-such-branch' });
    assert.equal(ref.status, 422);
    assert.equal(ref.body.error, `ref no-such-branch not found in ${OWNER}/${NAME}`);
    const missing = await post({ repo: `${OWNER}/nope`, ref: 'main' });
    assert.equal(missing.status, 404);
    assert.equal(missing.body.error, 'repository not found or GITHUB_TOKEN cannot read it');
  });

  it('force: a commit that already has a successful build is built again; images naming no entry fails the build, naming what there is', async () => {
    const sha = repo.head();
    const again = await post({ repo: `${OWNER}/${NAME}`, ref: sha });
    assert.equal(again.status, 200, 'unforced: a duplicate');
    assert.match(again.body.hint, /force/);
    const forced = await post({ repo: `${OWNER}/${NAME}`, ref: sha, force: true });
    assert.equal(forced.status, 202, JSON.stringify(forced.body));
    const build = await h.waitForBuild(forced.body.build);
    assert.equal(build.state, 'succeeded', build.failure);
    assert.equal(build.force, true);
    assert.match(await h.service.logs.read(build.id), /rebuild|building /);
    const wrong = await post({ repo: `${OWNER}/${NAME}`, ref: sha, force: true, images: ['nope'] });
    const failed = await h.waitForBuild(wrong.body.build);
    assert.equal(failed.state, 'failed');
    assert.match(failed.failure ?? '', /images asks for nope, which dockerInfo.json does not list \(it has manual-app\)/);
  });

  it('a bad body: 400 naming the field', async () => {
    const cases: Array<[unknown, RegExp, boolean?]> = [
      [{}, /^repo is required$/],
      [{ ref: 'main' }, /^repo is required$/],
      [{ repo: 'justaname', ref: 'main' }, /^repo must be "owner\/name"/],
      [{ repo: 42, ref: 'main' }, /^repo must be/],
      [{ repo: `${OWNER}/${NAME}` }, /^ref is required$/],
      [{ repo: `${OWNER}/${NAME}`, ref: '' }, /^ref must be/],
      [{ repo: `${OWNER}/${NAME}`, ref: 'a b' }, /^ref must be/],
      [{ repo: `${OWNER}/${NAME}`, ref: '--upload-pack=x' }, /^ref must be/],
      [{ repo: `${OWNER}/${NAME}`, ref: 'main..other' }, /^ref must be/],
      [{ repo: `${OWNER}/${NAME}`, ref: 'main', branch: 'x' }, /^unknown field branch$/],
      [{ repo: `${OWNER}/${NAME}`, ref: 'main', force: 'yes' }, /^force must be true or false$/],
      [{ repo: `${OWNER}/${NAME}`, ref: 'main', images: 'api' }, /^images must be a non-empty array/],
      [{ repo: `${OWNER}/${NAME}`, ref: 'main', images: [] }, /^images must be a non-empty array/],
      [{ repo: `${OWNER}/${NAME}`, ref: 'main', images: ['API'] }, /^images: "API" is not a service name$/],
      [['main'], /^body must be a JSON object$/],
      ['{"repo": ', /JSON|Unexpected|end/i, true],
    ];
    for (const [body, error, raw] of cases) {
      const answer = await post(body, AUTH, raw);
      assert.equal(answer.status, 400, `${JSON.stringify(body)}: ${JSON.stringify(answer.body)}`);
      assert.match(answer.body.error, error, JSON.stringify(body));
    }
  });
});
