import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import type { BuildRecord } from '../../src/store/store.js';
import type { GitRepo } from '../support/git-repo.js';
import { docker, startHarness, type Harness } from '../support/harness.js';
import { sharedPostgres } from '../support/postgres.js';
import { until } from '../support/wait.js';

const OWNER = 'mono-org';
const API_TOKEN = 'api-token-for-multi-image-7c1e';
const engine = new Docker();

/** Every run gets its own RUN lines: the engine keeps its build cache between runs, and a cached step proves nothing. */
const run = randomUUID().slice(0, 8);

interface Versions {
  base: string;
  api: string;
  web: string;
}

function dockerInfo(v: Versions, extra: Record<string, unknown>[] = []): string {
  return JSON.stringify({
    images: [
      { service_name: 'api', version: v.api, context: 'api', depends_on: ['base'], build_args: { BASE_VERSION: v.base } },
      { service_name: 'base', version: v.base, context: 'base' },
      { service_name: 'web', version: v.web, context: 'web' },
      ...extra,
    ],
  });
}

const monorepo = (v: Versions) => ({
  'dockerInfo.json': dockerInfo(v),
  'README.md': 'a monorepo\n',
  'base/Dockerfile': `FROM busybox:latest\nCOPY base.txt /base.txt\nRUN echo base-${run} > /base-run.txt\n`,
  'base/base.txt': 'base v1\n',
  'api/Dockerfile': `ARG DOCKHOOK_REGISTRY\nARG BASE_VERSION\nFROM \${DOCKHOOK_REGISTRY}/base:\${BASE_VERSION}\nCOPY api.txt /api.txt\nRUN echo api-${run} > /api-run.txt\nCMD ["cat", "/base.txt", "/api.txt"]\n`,
  'api/api.txt': 'api v1\n',
  'web/Dockerfile': `FROM busybox:latest\nCOPY web.txt /web.txt\nRUN echo web-${run} > /web-run.txt\nCMD ["cat", "/web.txt"]\n`,
  'web/web.txt': 'web v1\n',
});

/** Image events (tag, push, pull, …) the engine emitted for `names` between two instants. */
async function imageEvents(since: number, until: number, names: string[]): Promise<unknown[]> {
  const stream = (await engine.getEvents({ since: Math.floor(since / 1000), until: Math.ceil(until / 1000) + 1, filters: { type: ['image'] } })) as unknown as NodeJS.ReadableStream;
  let text = '';
  for await (const chunk of stream) text += chunk.toString();
  return text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { timeNano?: number; Actor?: { ID?: string; Attributes?: { name?: string } } })
    // The API takes whole seconds: drop what came before `since` within its second.
    .filter((e) => (e.timeNano ?? 0) >= since * 1e6)
    .filter((e) => names.some((n) => `${e.Actor?.Attributes?.name ?? ''} ${e.Actor?.ID ?? ''}`.includes(n)));
}

for (const store of ['sqlite', 'postgres'] as const) describe(`several images per repository (real engine, real registry, ${store})`, () => {
  let h: Harness;
  let repo: GitRepo;
  let v: Versions = { base: '1.0', api: '1.0', web: '1.0' };
  const merges: string[] = [];
  let pr = 0;

  before(async () => {
    const database: Record<string, string> = store === 'postgres' ? { DATABASE_URL: await (await sharedPostgres()).createDatabase() } : {};
    h = await startHarness({ env: { BUILD_CONCURRENCY: '2', API_TOKEN, PUBLIC_URL: 'https://dockhook.example.com', ...database } });
    repo = await h.createRepo(OWNER, 'mono', monorepo(v));
  });
  after(async () => {
    await h?.close();
  });

  /** Delivers the merge of the repository's head and waits for the merge's build and every image build. */
  async function mergeHead(): Promise<{ head: BuildRecord; images: Record<string, BuildRecord>; sha: string }> {
    const sha = repo.head();
    merges.push(sha);
    const answer = await h.merge(OWNER, 'mono', sha, { number: ++pr });
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    return waitForGroup(answer.body.build as number, sha);
  }

  async function waitForGroup(headId: number, sha: string): Promise<{ head: BuildRecord; images: Record<string, BuildRecord>; sha: string }> {
    await h.waitForBuild(headId);
    const group = await until(`the images of merge #${headId}`, async () => {
      const list = await h.service.store.listGroup(headId);
      if (!list.length) return undefined;
      const done = list.every((b) => (b.state === 'succeeded' || b.state === 'failed') && !h.service.worker?.isRunning(b.id));
      return done ? list : undefined;
    }, 180_000);
    const head = (await h.service.store.get(headId))!;
    return { head, images: Object.fromEntries(group.map((b) => [b.service!, b])), sha };
  }

  const digestOf = (b: BuildRecord, tag: string) => b.pushed.find((p) => p.tag === tag)?.digest;
  const contexts = (sha: string) => h.github.statusesFor(sha).map((s) => `${s.context}:${s.state}`);
  const finalStatus = (sha: string, context: string) => h.github.statusesFor(sha).filter((s) => s.context === context && s.state !== 'pending').at(-1);

  it('the first merge builds all three, base first, and api is built on base', async () => {
    const { head, images, sha } = await mergeHead();
    assert.equal(head.state, 'succeeded', head.failure);
    assert.deepEqual(Object.keys(images).sort(), ['api', 'base', 'web']);
    for (const b of Object.values(images)) assert.equal(b.state, 'succeeded', `${b.service}: ${b.failure}\n${await h.service.logs.read(b.id)}`);
    assert.deepEqual(images.api!.needs, ['base']);
    assert.ok(images.api!.startedAt! >= images.base!.finishedAt!, 'api started only after base had pushed');

    // api's image holds base's layers: FROM ${DOCKHOOK_REGISTRY}/base resolved to the image just pushed.
    const layers = async (ref: string) => JSON.parse(await docker('image', 'inspect', '--format', '{{json .RootFS.Layers}}', ref)) as string[];
    const baseRef = `${h.registry.host}/base:1.0`;
    const apiRef = `${h.registry.host}/api:1.0`;
    await docker('pull', baseRef);
    await docker('pull', apiRef);
    const baseLayers = await layers(baseRef);
    assert.deepEqual((await layers(apiRef)).slice(0, baseLayers.length), baseLayers);
    assert.equal(await docker('run', '--rm', '--network', 'none', apiRef), 'base v1\napi v1');

    // One status per image, under its own context; the merge's own build reports none.
    await until('a final status for every image', async () => ['dockhook/base', 'dockhook/api', 'dockhook/web'].every((c) => finalStatus(sha, c)?.state === 'success') || undefined, 30_000);
    assert.ok(!contexts(sha).some((c) => c.startsWith('dockhook:')), contexts(sha).join(', '));
    assert.match(finalStatus(sha, 'dockhook/api')!.description ?? '', /pushed .*\/api:1\.0/);
    assert.equal(finalStatus(sha, 'dockhook/web')!.target_url, `https://dockhook.example.com/builds/${images.web!.id}`);

    // The API shows the merge with its images together.
    const view = (await (await fetch(`${h.url}/api/builds/${head.id}`)).json()) as { images: { service: string; state: string; ref: string }[] };
    assert.deepEqual(view.images.map((i) => [i.service, i.state]).sort(), [['api', 'succeeded'], ['base', 'succeeded'], ['web', 'succeeded']]);
    const page = await (await fetch(`${h.url}/builds/${head.id}`)).text();
    assert.match(page, /Images of this merge/);
    for (const name of ['base', 'api', 'web']) assert.match(page, new RegExp(`${h.registry.host.replace(/\./g, '\\.')}/${name}:1\\.0`));
  });

  it('a merge that touches only web/ builds web alone and tags base and api without the engine', async () => {
    const firstSha = merges.at(-1)!;
    v = { ...v, web: '1.1' };
    await repo.commit({ 'web/web.txt': 'web v2\n', 'dockerInfo.json': dockerInfo(v) }, 'web: v2');
    const started = Date.now();
    const { images, sha } = await mergeHead();
    const { base, api, web } = images as Record<'base' | 'api' | 'web', BuildRecord>;
    for (const b of [base, api, web]) assert.equal(b.state, 'succeeded', `${b.service}: ${b.failure}`);
    assert.match(await h.service.logs.read(web.id), /RUN echo web-/);
    for (const b of [base, api]) {
      const log = await h.service.logs.read(b.id);
      assert.match(log, /inputs unchanged since/);
      assert.doesNotMatch(log, /building |fetching the source/);
      assert.equal(digestOf(b, `sha-${sha.slice(0, 7)}`), digestOf(b, '1.0'), `${b.service} sha- tag is the old image`);
      const status = finalStatus(sha, `dockhook/${b.service}`) ?? (await until(`the final status of ${`dockhook/${b.service}`}`, async () => finalStatus(sha, `dockhook/${b.service}`), 30_000));
      assert.equal(status.state, 'success');
      assert.equal(status.description, `unchanged since ${firstSha.slice(0, 7)}; tagged sha-${sha.slice(0, 7)}, latest`);
      // The tag resolves in the registry to the first merge's image.
      assert.equal((await h.service.registry.describeTag(b.service!, `sha-${sha.slice(0, 7)}`))!.revision, firstSha);
    }
    // The engine never saw base or api during this merge: no tag, push or pull of them.
    const events = await imageEvents(started, Date.now(), [`${h.registry.host}/base`, `${h.registry.host}/api`]);
    assert.deepEqual(events, []);
    console.log(`# unchanged images took ${base.finishedAt! - base.startedAt!} ms (base) and ${api.finishedAt! - api.startedAt!} ms (api)`);
  });

  it('a merge that touches base/ rebuilds base, then api, and leaves web unchanged', async () => {
    v = { ...v, base: '1.1', api: '1.1' };
    await repo.commit({ 'base/base.txt': 'base v2\n', 'dockerInfo.json': dockerInfo(v) }, 'base: v2');
    const { images, sha } = await mergeHead();
    const { base, api, web } = images as Record<'base' | 'api' | 'web', BuildRecord>;
    for (const b of [base, api, web]) assert.equal(b.state, 'succeeded', `${b.service}: ${b.failure}\n${await h.service.logs.read(b.id)}`);
    assert.match(await h.service.logs.read(base.id), /RUN echo base-/);
    assert.match(await h.service.logs.read(api.id), /inputs changed since/);
    assert.ok(api.startedAt! >= base.finishedAt!);
    assert.match(await h.service.logs.read(web.id), /inputs unchanged since/);
    await docker('pull', `${h.registry.host}/api:1.1`);
    assert.equal(await docker('run', '--rm', '--network', 'none', `${h.registry.host}/api:1.1`), 'base v2\napi v1');
    assert.equal(digestOf(web, `sha-${sha.slice(0, 7)}`), digestOf(web, '1.1'));
  });

  it('a version bump alone retags without building', async () => {
    v = { ...v, web: '1.2' };
    await repo.commit({ 'dockerInfo.json': dockerInfo(v) }, 'web: 1.2');
    const { images, sha } = await mergeHead();
    const web = images.web!;
    assert.equal(web.state, 'succeeded', web.failure);
    const status = await until(`the final status of ${'dockhook/web'}`, async () => finalStatus(sha, 'dockhook/web'), 30_000);
    assert.match(status.description ?? '', new RegExp(`^unchanged since [0-9a-f]{7}; tagged sha-${sha.slice(0, 7)}, 1\\.2, latest$`));
    const v11 = await h.service.registry.describeTag('web', '1.1');
    const v12 = await h.service.registry.describeTag('web', '1.2');
    assert.equal(v12!.digest, v11!.digest);
    assert.equal(web.version, '1.2');

    // Deleting the old version would take the new one with it (one manifest): refused, naming it.
    const del = await fetch(`${h.url}/api/images/web/tags/1.1`, { method: 'DELETE', headers: { authorization: `Bearer ${API_TOKEN}` } });
    const answer = (await del.json()) as { error: string; hint: string };
    assert.equal(del.status, 409, JSON.stringify(answer));
    assert.match(answer.error, /web:1\.1 is the same image as web:1\.2/);
    assert.match(answer.hint, /shared=delete/);
    assert.ok(await h.service.registry.describeTag('web', '1.1'));
  });

  it('force rebuilds an unchanged image, and may re-push its version with the new digest', async () => {
    const sha = repo.head();
    const before = await h.service.registry.describeTag('web', '1.2');
    const res = await fetch(`${h.url}/api/builds`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${API_TOKEN}` },
      body: JSON.stringify({ repo: `${OWNER}/mono`, ref: sha, force: true, images: ['web'] }),
    });
    const body = (await res.json()) as { build: number; force: boolean; images: string[] };
    assert.equal(res.status, 202, JSON.stringify(body));
    assert.deepEqual([body.force, body.images], [true, ['web']]);
    const { images } = await waitForGroup(body.build, sha);
    assert.deepEqual(Object.keys(images), ['web']);
    assert.equal(images.web!.state, 'succeeded', images.web!.failure);
    assert.equal(images.web!.force, true);
    assert.match(await h.service.logs.read(images.web!.id), /RUN echo web-|CACHED|Using cache/);
    const after = await h.service.registry.describeTag('web', '1.2');
    assert.notEqual(after!.digest, before!.digest, 'the forced build pushed a new image under the same version');
    assert.equal(after!.revision, sha);
  });

  it('a failing base: api is not built and names base, web still builds', async () => {
    v = { base: '1.2', api: '1.2', web: '1.3' };
    await repo.commit(
      {
        'base/Dockerfile': `FROM busybox:latest\nRUN echo broken-${run} && exit 3\n`,
        'web/web.txt': 'web v3\n',
        'dockerInfo.json': dockerInfo(v),
      },
      'base: broken',
    );
    const { head, images, sha } = await mergeHead();
    assert.equal(images.base!.state, 'failed');
    assert.equal(images.api!.state, 'failed');
    assert.match(images.api!.failure ?? '', /^not built: base \(which api depends on\) failed/);
    assert.equal(images.web!.state, 'succeeded', images.web!.failure);
    assert.equal(head.state, 'failed', 'the merge counts as failed, so a redelivery builds it again');
    assert.doesNotMatch(await h.service.logs.read(images.api!.id), /fetching the source/);
    const status = await until(`the final status of ${'dockhook/api'}`, async () => finalStatus(sha, 'dockhook/api'), 30_000);
    assert.equal(status.state, 'failure');
    assert.match(status.description ?? '', /not built: base/);
  });

  it('when GitHub cannot list the tree, every image is built rather than none', async () => {
    v = { base: '1.3', api: '1.3', web: '1.4' };
    await repo.commit({ 'base/Dockerfile': `FROM busybox:latest\nCOPY base.txt /base.txt\nRUN echo base-again-${run} > /base-run.txt\n`, 'dockerInfo.json': dockerInfo(v) }, 'base: fixed');
    h.github.failNext({ method: 'GET', pathIncludes: '/git/trees/' }, { status: 404, body: { message: 'Not Found' } });
    const { head, images } = await mergeHead();
    assert.match(await h.service.logs.read(head.id), /could not fingerprint the images \(GitHub answered 404 while reading the tree/);
    for (const b of Object.values(images)) {
      assert.equal(b.state, 'succeeded', `${b.service}: ${b.failure}`);
      assert.doesNotMatch(await h.service.logs.read(b.id), /inputs unchanged/);
    }
  });

  for (const [what, extra, message] of [
    ['a cycle', [{ service_name: 'loop-a', version: '1', context: 'web', depends_on: ['loop-b'] }, { service_name: 'loop-b', version: '1', context: 'web', depends_on: ['loop-a'] }], /images\.3 \(loop-a\) depends_on makes a cycle: loop-a → loop-b → loop-a/],
    ['a duplicate name', [{ service_name: 'web', version: '9', context: 'web' }], /images\.3 \(web\) service_name is a duplicate of images\.2/],
    ['an unknown dependency', [{ service_name: 'worker', version: '1', context: 'web', depends_on: ['queue'] }], /images\.3 \(worker\) depends_on names "queue"/],
  ] as const) {
    it(`${what} fails the merge before the engine is called, naming the entry`, async () => {
      await repo.commit({ 'dockerInfo.json': dockerInfo(v, [...extra]) }, what);
      const started = Date.now();
      const sha = repo.head();
      const answer = await h.merge(OWNER, 'mono', sha, { number: ++pr });
      const head = await h.waitForBuild(answer.body.build as number);
      assert.equal(head.state, 'failed');
      assert.match(head.failure ?? '', message);
      assert.deepEqual(await h.service.store.listGroup(head.id), []);
      const status = await until(`the final status of ${'dockhook'}`, async () => finalStatus(sha, 'dockhook'), 30_000);
      assert.equal(status.state, 'failure');
      assert.deepEqual(await imageEvents(started, Date.now(), [h.registry.host]), []);
    });
  }
});

describe('retention and deletion per image of a multi-image repository', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { KEEP_VERSIONS: '1', API_TOKEN } });
  });
  after(async () => {
    await h?.close();
  });

  it('KEEP_VERSIONS prunes each image on its own: a rebuilt image loses its old version, an unchanged one keeps its only one', async () => {
    const files = (web: string) => ({
      'dockerInfo.json': JSON.stringify({ images: [{ service_name: 'keep-base', version: '1.0', context: 'base' }, { service_name: 'keep-web', version: web, context: 'web' }] }),
      'base/Dockerfile': `FROM busybox:latest\nRUN echo keep-base-${run} > /b\n`,
      'web/Dockerfile': `FROM busybox:latest\nCOPY w.txt /w.txt\nRUN echo keep-web-${run} > /w\n`,
      'web/w.txt': `web ${web}\n`,
    });
    const repo = await h.createRepo(OWNER, 'keep', files('1.0'));
    const waitAll = async (sha: string, n: number) => {
      const answer = await h.merge(OWNER, 'keep', sha, { number: n });
      const head = await h.waitForBuild(answer.body.build as number);
      assert.equal(head.state, 'succeeded', `merge #${n}: ${head.failure}\n${await h.service.logs.read(head.id)}`);
      const list = await until('the images', async () => {
        const l = await h.service.store.listGroup(answer.body.build as number);
        return l.length === 2 && l.every((b) => (b.state === 'succeeded' || b.state === 'failed') && !h.service.worker?.isRunning(b.id)) ? l : undefined;
      }, 120_000).catch(async (err: Error) => {
        const l = await h.service.store.listGroup(answer.body.build as number);
        const logs = await Promise.all(l.map(async (b) => `#${b.id} ${b.service} ${b.state} running=${h.service.worker?.isRunning(b.id)}\n${await h.service.logs.read(b.id)}`));
        throw new Error(`${err.message}\n${logs.join('\n')}`);
      });
      for (const b of list) assert.equal(b.state, 'succeeded', `${b.service}: ${b.failure}`);
      return list;
    };
    await waitAll(repo.head(), 1);
    const second = await repo.commit(files('1.1'), 'web 1.1');
    await waitAll(second, 2);
    const webTags = await h.service.registry.listTags('keep-web');
    assert.ok(webTags.includes('1.1') && !webTags.includes('1.0'), `keep-web tags: ${webTags.join(', ')}`);
    const baseTags = await h.service.registry.listTags('keep-base');
    assert.ok(baseTags.includes('1.0'), `keep-base keeps its one version (shared by both merges' sha- tags): ${baseTags.join(', ')}`);
    assert.ok(baseTags.includes(`sha-${second.slice(0, 7)}`));

    // DELETE works per image: it removes keep-web:1.1 (and its sha- tag) and leaves keep-base alone.
    const del = await fetch(`${h.url}/api/images/keep-web/tags/1.1`, { method: 'DELETE', headers: { authorization: `Bearer ${API_TOKEN}` } });
    assert.equal(del.status, 200, await del.clone().text());
    assert.deepEqual((await del.json() as { alsoRemoved: string[] }).alsoRemoved.filter((t) => t.startsWith('sha-')).length > 0, true);
    assert.ok((await h.service.registry.listTags('keep-base')).includes('1.0'));
  });
});
