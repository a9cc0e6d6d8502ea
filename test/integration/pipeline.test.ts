import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createRegistryClient } from '../../src/registry/client.js';
import { docker, dockerFails, startHarness, type Harness } from '../support/harness.js';

const OWNER = 'octo-org';

const sampleRepo = (name: string, version: string, extra: Record<string, string> = {}) => ({
  'dockerInfo.json': JSON.stringify({ service_name: name, version }),
  Dockerfile: 'FROM busybox:latest\nCOPY . /app\nRUN echo built > /app/built.txt\nCMD ["cat", "/app/message.txt"]\n',
  'message.txt': `hello from ${name} ${version}\n`,
  'lib/util.txt': 'kept\n',
  '.dockerignore': 'secret.txt\nnode_modules\n*.log\n!keep.log\n',
  'secret.txt': 'must not be in the image\n',
  'node_modules/dep/index.js': 'ignored\n',
  'debug.log': 'ignored\n',
  'keep.log': 'kept by the exception\n',
  ...extra,
});

// BUILDER=auto picks BuildKit on this engine; the classic builder is the fallback, so both are proven.
for (const builder of ['buildkit', 'classic'] as const) describe(`merge → image in the registry (real engine, real registry, ${builder} builder)`, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { PUBLIC_URL: 'https://dockhook.example.com', BUILDER: builder } });
  });
  after(async () => {
    await h?.close();
  });

  it('builds the merged commit with its whole source tree, pushes every tag, and reports success', async () => {
    const repo = await h.createRepo(OWNER, 'hello', sampleRepo('hello', '1.0.0'));
    const sha = repo.head();
    const answer = await h.merge(OWNER, 'hello', sha, { number: 7 });
    assert.equal(answer.status, 202);
    assert.equal(typeof answer.body.build, 'number');

    const build = await h.waitForBuild(answer.body.build);
    assert.equal(build.state, 'succeeded', build.failure);
    const ref = `${h.registry.host}/hello:1.0.0`;
    assert.deepEqual(
      build.pushed.map((p) => p.tag).sort(),
      ['1.0.0', 'latest', `sha-${sha.slice(0, 7)}`].sort(),
    );
    for (const p of build.pushed) assert.match(p.digest, /^sha256:[0-9a-f]{64}$/);

    // GitHub was told: pending, then success naming the reference and linking the build page.
    const statuses = h.github.statusesFor(sha);
    assert.deepEqual(statuses.map((s) => s.state), ['pending', 'success']);
    assert.equal(statuses[1]!.context, 'dockhook');
    assert.match(statuses[1]!.description ?? '', new RegExp(`pushed ${ref.replace(/\./g, '\\.')}`));
    assert.equal(statuses[1]!.target_url, `https://dockhook.example.com/builds/${build.id}`);

    // What a person does next: pull it fresh and run it.
    for (const p of build.pushed) await docker('rmi', '-f', p.ref).catch(() => '');
    await docker('pull', ref);
    assert.equal(await docker('run', '--rm', '--network', 'none', ref), 'hello from hello 1.0.0');
    const files = await docker('run', '--rm', '--network', 'none', ref, 'sh', '-c', 'cd /app && find . -type f | sort');
    assert.deepEqual(files.split('\n'), ['./.dockerignore', './Dockerfile', './built.txt', './dockerInfo.json', './keep.log', './lib/util.txt', './message.txt']);

    const labels = JSON.parse(await docker('image', 'inspect', '--format', '{{json .Config.Labels}}', ref)) as Record<string, string>;
    assert.equal(labels['org.opencontainers.image.revision'], sha);
    assert.equal(labels['org.opencontainers.image.source'], `https://github.com/${OWNER}/hello`);
    assert.equal(labels['org.opencontainers.image.version'], '1.0.0');
    assert.equal(labels['org.opencontainers.image.title'], 'hello');
    assert.ok(!Number.isNaN(Date.parse(labels['org.opencontainers.image.created']!)));

    // Every line of the build is kept in DATA_DIR.
    const log = await h.service.logs.read(build.id);
    // Classic prints "Step 3/9 : RUN …", BuildKit "[3/3] RUN …".
    assert.match(log, /Step 3\/\d+ : RUN echo built|\[3\/3\] RUN echo built/);
    assert.match(log, new RegExp(`pushed ${ref.replace(/\./g, '\\.')} sha256:`));
  });

  it('builds the merge commit, not the pull request head', async () => {
    const repo = await h.createRepo(OWNER, 'twocommits', sampleRepo('twocommits', '1.0.0', { 'message.txt': 'head of the PR\n' }));
    const prHead = repo.head();
    const mergeSha = await repo.commit({ 'message.txt': 'the merge commit\n' }, 'Merge pull request #8');
    const answer = await h.merge(OWNER, 'twocommits', mergeSha);
    const build = await h.waitForBuild(answer.body.build);
    assert.equal(build.state, 'succeeded', build.failure);
    assert.equal(build.sha, mergeSha);
    assert.notEqual(prHead, mergeSha);
    const ref = `${h.registry.host}/twocommits:1.0.0`;
    assert.equal(await docker('run', '--rm', '--network', 'none', ref), 'the merge commit');
  });

  it('fails a broken Dockerfile, pushes nothing, and says why on GitHub', async () => {
    const repo = await h.createRepo(OWNER, 'broken', {
      'dockerInfo.json': '{"service_name": "broken", "version": "0.1.0"}',
      Dockerfile: 'FROM busybox:latest\nRUN echo about to fail && exit 3\n',
    });
    const answer = await h.merge(OWNER, 'broken', repo.head());
    const build = await h.waitForBuild(answer.body.build);
    assert.equal(build.state, 'failed');
    assert.match(build.failure ?? '', /docker build failed: .*(returned a non-zero code: 3|exit code: 3)/);
    assert.equal(build.attempts, 1, 'a Dockerfile error is not retried');
    assert.deepEqual(build.pushed, []);
    const statuses = h.github.statusesFor(repo.head());
    assert.equal(statuses.at(-1)!.state, 'failure');
    assert.match(statuses.at(-1)!.description ?? '', /non-zero code: 3|exit code: 3/);
    assert.ok((statuses.at(-1)!.description ?? '').length <= 140);
    const client = createRegistryClient({ url: h.registry.url });
    assert.deepEqual(await client.listTags('broken'), []);
    assert.match(await h.service.logs.read(build.id), /about to fail/);
  });

  it('fails an invalid dockerInfo.json naming the field, and a missing one saying so', async () => {
    const bad = await h.createRepo(OWNER, 'badinfo', { 'dockerInfo.json': '{"service_name": "Bad Name", "version": "1"}', Dockerfile: 'FROM busybox:latest\n' });
    const missing = await h.createRepo(OWNER, 'noinfo', { Dockerfile: 'FROM busybox:latest\n' });
    const [a, b] = await Promise.all([h.merge(OWNER, 'badinfo', bad.head()), h.merge(OWNER, 'noinfo', missing.head())]);
    const badBuild = await h.waitForBuild(a.body.build);
    const missingBuild = await h.waitForBuild(b.body.build);
    assert.match(badBuild.failure ?? '', /dockerInfo\.json: service_name must be a Docker repository name/);
    assert.match(missingBuild.failure ?? '', /dockerInfo\.json not found at the root of octo-org\/noinfo@[0-9a-f]{7}/);
    assert.equal(h.github.statusesFor(bad.head()).at(-1)!.state, 'failure');
    assert.match(h.github.statusesFor(missing.head()).at(-1)!.description ?? '', /dockerInfo\.json not found/);
  });

  it('fails with a clear reason when the Dockerfile is not where dockerInfo.json says', async () => {
    const repo = await h.createRepo(OWNER, 'nodockerfile', { 'dockerInfo.json': '{"service_name": "nodockerfile", "version": "1", "dockerfile": "build/Dockerfile"}', 'a.txt': 'x' });
    const answer = await h.merge(OWNER, 'nodockerfile', repo.head());
    const build = await h.waitForBuild(answer.body.build);
    assert.equal(build.state, 'failed');
    assert.match(build.failure ?? '', /Dockerfile not found at build\/Dockerfile/);
  });

  it('builds a subfolder context with its own Dockerfile path, build args and target', async () => {
    const repo = await h.createRepo(OWNER, 'mono', {
      'dockerInfo.json': JSON.stringify({ service_name: 'mono/api', version: '2.0.0', context: 'services/api', dockerfile: 'docker/Dockerfile', build_args: { GREETING: 'hi' }, target: 'final', tags: ['stable'] }),
      'services/api/docker/Dockerfile': 'FROM busybox:latest AS base\nARG GREETING\nRUN echo "$GREETING from base" > /greeting\nFROM base AS final\nCOPY app.txt /app.txt\nFROM base AS unused\nRUN exit 1\n',
      'services/api/app.txt': 'api\n',
      'services/web/app.txt': 'web\n',
    });
    const answer = await h.merge(OWNER, 'mono', repo.head());
    const build = await h.waitForBuild(answer.body.build);
    assert.equal(build.state, 'succeeded', build.failure);
    const ref = `${h.registry.host}/mono/api:stable`;
    assert.equal(await docker('run', '--rm', '--network', 'none', ref, 'cat', '/greeting', '/app.txt'), 'hi from base\napi');
  });
});

describe('pushing to a registry with htpasswd auth', () => {
  it('pushes with REGISTRY_USERNAME/REGISTRY_PASSWORD, and fails clearly without them', async () => {
    const auth = { username: 'dockhook', password: 'registry-pass-9x7' };
    const withCreds = await startHarness({ registry: { auth }, env: { REGISTRY_USERNAME: auth.username, REGISTRY_PASSWORD: auth.password } });
    try {
      const repo = await withCreds.createRepo(OWNER, 'private', sampleRepo('private', '1.0.0'));
      const answer = await withCreds.merge(OWNER, 'private', repo.head());
      const build = await withCreds.waitForBuild(answer.body.build);
      assert.equal(build.state, 'succeeded', build.failure);
      const tags = await createRegistryClient({ url: withCreds.registry.url, auth }).listTags('private');
      assert.ok(tags.includes('1.0.0'));
      assert.doesNotMatch(await withCreds.logText(), /registry-pass-9x7/, 'the password never reaches a log line');
    } finally {
      await withCreds.close();
    }

    const without = await startHarness({ registry: { auth } });
    try {
      const repo = await without.createRepo(OWNER, 'private', sampleRepo('private', '1.0.1'));
      const answer = await without.merge(OWNER, 'private', repo.head());
      const build = await without.waitForBuild(answer.body.build);
      assert.equal(build.state, 'failed');
      assert.match(build.failure ?? '', /REGISTRY_USERNAME/);
      assert.equal(without.github.statusesFor(repo.head()).at(-1)!.state, 'failure');
      await dockerFails('pull', `${without.registry.host}/private:1.0.1`);
    } finally {
      await without.close();
    }
  });
});
