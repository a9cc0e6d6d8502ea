import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { FileBuildLogs } from '../../src/logs/file-logs.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { applyRetention } from '../../src/registry/apply-retention.js';
import { createRegistryClient } from '../../src/registry/client.js';
import { retentionAfterSuccess } from '../../src/registry/retention-hook.js';
import { startHarness, type Harness } from '../support/harness.js';
import { pushTestImage, startRegistry, type TestRegistry } from '../support/registry-server.js';

/** KEEP_VERSIONS against real registries: through real merges, and straight on images pushed by hand. */

const OWNER = 'octo-org';

const files = (version: string) => ({
  'dockerInfo.json': JSON.stringify({ service_name: 'kept', version }),
  Dockerfile: 'FROM busybox:latest\nCOPY message.txt /message.txt\n',
  'message.txt': `version ${version}\n`,
});

/** Merges each version in turn (one commit each) and waits for every build. */
async function mergeVersions(h: Harness, name: string, versions: string[]) {
  const repo = await h.createRepo(OWNER, name, files(versions[0]!));
  const shas: string[] = [];
  const builds = [];
  for (const [i, version] of versions.entries()) {
    const sha = i === 0 ? repo.head() : await repo.commit(files(version), `Release ${version}`);
    shas.push(sha);
    const answer = await h.merge(OWNER, name, sha, { number: i + 1 });
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    builds.push(await h.waitForBuild(answer.body.build));
  }
  return { shas, builds };
}

describe('KEEP_VERSIONS=2 after four merges', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { KEEP_VERSIONS: '2' } });
  });
  after(() => h?.close());

  it('leaves exactly the two newest versions, their sha- tags and latest', async () => {
    const { shas, builds } = await mergeVersions(h, 'kept', ['1.0.0', '1.0.1', '1.0.2', '1.0.3']);
    for (const b of builds) {
      assert.equal(b.state, 'succeeded', b.failure);
      assert.deepEqual(b.notes, [], 'no retention problems');
    }
    const client = createRegistryClient({ url: h.registry.url });
    const sha = (i: number) => `sha-${shas[i]!.slice(0, 7)}`;
    assert.deepEqual(await client.listTags('kept'), ['1.0.2', '1.0.3', 'latest', sha(2), sha(3)].sort());
    assert.equal(await client.getManifestDigest('kept', 'latest'), builds[3]!.pushed.find((p) => p.tag === '1.0.3')!.digest);

    // The build that pruned says so in its log; the API shows the same tags.
    const log = await h.service.logs.read(builds[3]!.id);
    assert.match(log, /retention \(KEEP_VERSIONS=2\): deleted kept:1\.0\.1, sha-/);
    const api = (await (await fetch(`${h.url}/api/images/kept`)).json()) as { tags: { tag: string }[] };
    assert.deepEqual(api.tags.map((t) => t.tag), ['1.0.2', '1.0.3', 'latest', sha(2), sha(3)].sort());
  });
});

describe('KEEP_VERSIONS with deletion disabled on the registry', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ registry: { deleteEnabled: false }, env: { KEEP_VERSIONS: '1' } });
  });
  after(() => h?.close());

  it('the build still succeeds; the failure is a note on it and a line in its log, naming the setting', async () => {
    const { builds } = await mergeVersions(h, 'undeletable', ['2.0.0', '2.0.1']);
    const last = builds[1]!;
    assert.equal(last.state, 'succeeded', last.failure);
    assert.equal(last.notes.length, 1, JSON.stringify(last.notes));
    assert.match(last.notes[0]!, /^retention: could not delete kept:2\.0\.0, sha-\w{7} .*REGISTRY_STORAGE_DELETE_ENABLED=true/);
    assert.match(await h.service.logs.read(last.id), /retention: could not delete/);
    assert.equal(h.github.statusesFor(last.sha).at(-1)!.state, 'success');
    assert.deepEqual((await createRegistryClient({ url: h.registry.url }).listTags('kept')).filter((t) => !t.startsWith('sha-')), ['2.0.0', '2.0.1', 'latest']);
  });
});

describe('applyRetention on images pushed by hand', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry();
  });
  after(() => reg?.close());

  it('orders by the org.opencontainers.image.created label, not by push time or tag name', async () => {
    // Pushed in this order (so their config times ascend), but labelled as built in another.
    const pushes: Array<[string, string, string]> = [
      ['1.0.9', 'aaaaaaa', '2026-01-03T00:00:00Z'],
      ['1.0.10', 'bbbbbbb', '2026-01-01T00:00:00Z'],
      ['2.0.0', 'ccccccc', '2026-01-02T00:00:00Z'],
    ];
    for (const [tag, revision, created] of pushes) {
      const labels = { 'org.opencontainers.image.revision': revision.padEnd(40, '0'), 'org.opencontainers.image.created': created };
      await pushTestImage(reg.host, 'hand/made', tag, { labels, content: tag });
      await pushTestImage(reg.host, 'hand/made', `sha-${revision}`, { labels, content: `${tag}-sha` });
    }
    const client = createRegistryClient({ url: reg.url });
    const outcome = await applyRetention(client, 'hand/made', 2);
    assert.deepEqual(outcome.failures, []);
    // The sha- tag here is a separate image (pushed apart): it still goes with its version.
    assert.deepEqual(outcome.removed, ['1.0.10', 'sha-bbbbbbb']);
    assert.deepEqual(await client.listTags('hand/made'), ['1.0.9', '2.0.0', 'sha-aaaaaaa', 'sha-ccccccc']);

    // Nothing more to do: a second run deletes nothing.
    assert.deepEqual((await applyRetention(client, 'hand/made', 2)).removed, []);
  });
});

describe('the worker hook when the registry is down', () => {
  it('never throws: the problem becomes a note on the build and a line in its log', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dockhook-retention-hook-'));
    const reg = await startRegistry();
    const store = new SqliteStore(dir);
    const logs = new FileBuildLogs(dir);
    try {
      const { build } = await store.enqueue({
        deliveryId: 'd-1', trigger: 'merge', owner: 'o', repo: 'r', repoUrl: 'https://github.com/o/r',
        defaultBranch: 'main', branch: 'main', sha: 'a'.repeat(40), mergedAt: new Date().toISOString(),
      });
      await store.setImage(build.id, 'some/app', '1.0.0');
      await reg.stop();
      const hook = retentionAfterSuccess({ registry: createRegistryClient({ url: reg.url }), store, keep: 1, log: pino({ level: 'silent' }) });
      const out = logs.writer(build.id);
      await hook(build, out); // resolves, does not reject
      await out.close();
      const notes = (await store.get(build.id))!.notes;
      assert.equal(notes.length, 1);
      assert.match(notes[0]!, /^retention: could not read the tags of some\/app: registry unreachable at /);
      assert.match(await logs.read(build.id), /retention: could not read the tags/);
    } finally {
      await store.close();
      await reg.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
