import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { decideBuild } from '../../src/intake.js';

const require = createRequire(import.meta.url);
const examples = require('@octokit/webhooks-examples/api.github.com/index.json') as { name: string; examples: Record<string, any>[] }[];
const example = (name: string, action?: string) =>
  structuredClone(examples.find((e) => e.name === name)!.examples.find((x) => action === undefined || x.action === action)!);

const SHA = 'b'.repeat(40);
const on = { deliveryId: 'd-push', buildBranches: [] as string[], triggerPush: true, checkRuns: true };
const reason = (d: ReturnType<typeof decideBuild>) => (d.kind === 'ignored' ? d.reason : `built ${d.request.sha}`);

function push(o: { ref?: string; after?: string; deleted?: boolean; forced?: boolean } = {}) {
  const p = example('push');
  p.ref = o.ref ?? `refs/heads/${p.repository.default_branch}`;
  p.after = o.after ?? SHA;
  p.deleted = o.deleted ?? false;
  p.forced = o.forced ?? false;
  p.repository.pushed_at = 1_800_000_000;
  return p;
}

describe('decideBuild: push events (TRIGGER_PUSH)', () => {
  it('builds `after` on a build branch, ordered by when it was pushed', () => {
    const d = decideBuild('push', push(), on);
    assert.equal(d.kind, 'build');
    if (d.kind !== 'build') return;
    assert.equal(d.request.trigger, 'push');
    assert.equal(d.request.sha, SHA);
    assert.equal(d.request.branch, d.request.defaultBranch);
    assert.equal(d.request.mergedAt, new Date(1_800_000_000 * 1000).toISOString());
    assert.equal(d.request.pullRequest, undefined);
    assert.equal(d.request.owner, 'Codertocat');
  });

  it('builds a forced push too', () => {
    assert.equal(decideBuild('push', push({ forced: true }), on).kind, 'build');
  });

  it('says why it does not build: off, deleted branch, tag, other branch', () => {
    assert.match(reason(decideBuild('push', push(), { ...on, triggerPush: false })), /set TRIGGER_PUSH=true/);
    assert.match(reason(decideBuild('push', push({ deleted: true, after: '0'.repeat(40) }), on)), /deleted branch/);
    assert.match(reason(decideBuild('push', push({ ref: 'refs/tags/v1' }), on)), /not a branch/);
    assert.match(reason(decideBuild('push', push({ ref: 'refs/heads/feature' }), on)), /branch feature is not a build branch/);
    assert.equal(decideBuild('push', push({ ref: 'refs/heads/release/1' }), { ...on, buildBranches: ['release/*'] }).kind, 'build');
  });
});

function checkRun(name: string) {
  const p = example('check_run', 'rerequested') ?? example('check_run');
  p.action = 'rerequested';
  p.check_run.name = name;
  p.check_run.head_sha = SHA;
  p.check_run.check_suite.head_branch = 'main';
  p.installation = { id: 4242, node_id: 'x' };
  return p;
}

describe('decideBuild: Re-run (check_run / check_suite rerequested)', () => {
  it('a check run of one image rebuilds that image, forced', () => {
    const d = decideBuild('check_run', checkRun('dockhook/api'), on);
    assert.equal(d.kind, 'build');
    if (d.kind !== 'build') return;
    assert.equal(d.request.trigger, 'rerun');
    assert.equal(d.request.force, true);
    assert.deepEqual(d.request.images, ['api']);
    assert.equal(d.request.sha, SHA);
    assert.equal(d.request.branch, 'main');
    assert.equal(d.installationId, 4242, 'the installation named by the delivery');
  });

  it('the single-image check run, and a whole suite, rebuild every image', () => {
    const single = decideBuild('check_run', checkRun('dockhook'), on);
    assert.equal(single.kind === 'build' && single.request.images, undefined);
    const s = example('check_suite');
    s.action = 'rerequested';
    s.check_suite.head_sha = SHA;
    s.check_suite.head_branch = 'main';
    const suite = decideBuild('check_suite', s, on);
    assert.equal(suite.kind, 'build');
    if (suite.kind === 'build') {
      assert.equal(suite.request.force, true);
      assert.equal(suite.request.images, undefined);
    }
  });

  it("ignores other apps' check runs, other actions, and token mode", () => {
    assert.match(reason(decideBuild('check_run', checkRun('ci/tests'), on)), /not dockhook's/);
    const created = checkRun('dockhook');
    created.action = 'created';
    assert.match(reason(decideBuild('check_run', created, on)), /only rerequested/);
    assert.match(reason(decideBuild('check_run', checkRun('dockhook'), { ...on, checkRuns: false })), /token mode/);
  });
});
