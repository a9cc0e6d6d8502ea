import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { decideBuild } from '../../src/intake.js';

const require = createRequire(import.meta.url);
const examples = require('@octokit/webhooks-examples/api.github.com/index.json') as { name: string; examples: Record<string, any>[] }[];
const example = (name: string, action?: string) =>
  structuredClone(examples.find((e) => e.name === name)!.examples.find((x) => action === undefined || x.action === action)!);

const SHA = 'a'.repeat(40);
function merged(overrides: { base?: string; sha?: string | null; merged?: boolean } = {}) {
  const p = example('pull_request', 'closed');
  p.pull_request.merged = overrides.merged ?? true;
  p.pull_request.merged_at = '2026-11-20T10:00:00Z';
  p.pull_request.merge_commit_sha = overrides.sha === undefined ? SHA : overrides.sha;
  p.pull_request.base.ref = overrides.base ?? p.repository.default_branch;
  return p;
}
const opts = { deliveryId: 'd-1', buildBranches: [] as string[] };

describe('decideBuild', () => {
  it('builds the merge commit of a merged pull request into the default branch', () => {
    const p = merged();
    const d = decideBuild('pull_request', p, opts);
    assert.equal(d.kind, 'build');
    if (d.kind !== 'build') return;
    assert.equal(d.request.sha, SHA, 'the merge commit, not head.sha');
    assert.notEqual(d.request.sha, p.pull_request.head.sha);
    assert.equal(d.request.owner, 'Codertocat');
    assert.equal(d.request.repo, 'Hello-World');
    assert.equal(d.request.branch, 'master');
    assert.equal(d.request.pullRequest?.number, p.pull_request.number);
    assert.equal(d.request.mergedAt, '2026-11-20T10:00:00Z');
    assert.equal(d.request.repoUrl, 'https://github.com/Codertocat/Hello-World');
  });

  it('ignores ping, other events and other actions, saying why', () => {
    assert.deepEqual(decideBuild('ping', example('ping'), opts), { kind: 'ignored', reason: 'ping: webhook is set up' });
    const push = decideBuild('push', {}, opts);
    assert.equal(push.kind, 'ignored');
    assert.match((push as { reason: string }).reason, /event push is not built/);
    const opened = decideBuild('pull_request', example('pull_request', 'opened'), opts);
    assert.match((opened as { reason: string }).reason, /action opened is not built/);
  });

  it('ignores a pull request closed without merging', () => {
    const d = decideBuild('pull_request', merged({ merged: false }), opts);
    assert.equal(d.kind, 'ignored');
    assert.match((d as { reason: string }).reason, /closed without merging/);
  });

  it('ignores merges into a branch that is not a build branch', () => {
    const d = decideBuild('pull_request', merged({ base: 'feature/x' }), opts);
    assert.match((d as { reason: string }).reason, /branch feature\/x is not a build branch.*default branch \(master\)/);
  });

  it('honours BUILD_BRANCHES globs instead of the default branch', () => {
    const o = { deliveryId: 'd', buildBranches: ['release/*', 'develop'] };
    assert.equal(decideBuild('pull_request', merged({ base: 'release/1.2' }), o).kind, 'build');
    assert.equal(decideBuild('pull_request', merged({ base: 'develop' }), o).kind, 'build');
    assert.equal(decideBuild('pull_request', merged({ base: 'master' }), o).kind, 'ignored');
  });

  it('answers a merged delivery without a usable merge_commit_sha with a reason, not a crash', () => {
    for (const sha of [null, '', 'not-a-sha', 'A'.repeat(40)]) {
      const d = decideBuild('pull_request', merged({ sha }), opts);
      assert.deepEqual(d, { kind: 'ignored', reason: 'merged pull request has no usable merge_commit_sha' });
    }
  });

  it('survives payloads of the wrong shape', () => {
    for (const payload of [null, [], 'x', 42, { action: 'closed' }, { action: 'closed', pull_request: { merged: true }, repository: {} }]) {
      assert.equal(decideBuild('pull_request', payload, opts).kind, 'ignored');
    }
  });
});
