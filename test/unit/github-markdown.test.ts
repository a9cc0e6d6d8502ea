import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { commentBody, COMMENT_MARKER } from '../../src/github/pr-comment.js';
import { codeBlock, escapeMarkdown, keepEnd } from '../../src/github/markdown.js';
import type { BuildRecord } from '../../src/store/store.js';

const build = (o: Partial<BuildRecord>): BuildRecord =>
  ({ id: 9, owner: 'acme', repo: 'widget', sha: 'c'.repeat(40), state: 'failed', pushed: [], platforms: [], artifacts: [], notes: [], needs: [], force: false, attempts: 1, ...o }) as BuildRecord;

describe('Markdown from repository text', () => {
  it('escapes links, images, mentions and HTML so they render as the text they are', () => {
    const text = escapeMarkdown('feat/[click](https://evil.example) ![x](y) @org/team <img src=x> **bold**');
    assert.ok(!/\[click\]\(/.test(text));
    assert.ok(!text.includes('<img'));
    assert.ok(!/@org/.test(text), 'no @mention');
    assert.ok(!text.includes('**'));
  });

  it('a code block cannot be closed by backticks inside it', () => {
    const block = codeBlock('before ``` after ```` end');
    const fence = block.split('\n')[0]!;
    assert.equal(fence, '`````');
    assert.ok(block.endsWith(`\n${fence}`));
  });

  it('keeps the end of a long log within GitHub’s cap', () => {
    const cut = keepEnd('x'.repeat(70_000) + 'THE END', 65535);
    assert.equal(cut.length, 65535);
    assert.ok(cut.endsWith('THE END'));
  });

  it('the PR comment starts with the marker and escapes an image name and a failure from the repository', () => {
    const body = commentBody([build({ service: 'api_<b>x</b>', failure: 'boom ``` [link](http://x) @here' })], (id) => `https://d.example/builds/${id}`);
    assert.ok(body.startsWith(`${COMMENT_MARKER}\n`));
    assert.ok(!body.includes('<b>'));
    assert.match(body, /\[log\]\(https:\/\/d\.example\/builds\/9\)/);
    // The failure sits in a fence longer than its own backticks.
    assert.match(body, /````\nboom ``` \[link\]\(http:\/\/x\) @here\n````/);
  });
});
