import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { completeLines } from '../../src/logs/build-logs.js';
import { mergedPullRequestPayload } from '../support/deliveries.js';
import { startHarness, type Harness } from '../support/harness.js';

const CHROMIUM = '/usr/bin/chromium';
const OWNER = 'octo-org';
const XSS = '<script>alert(1)</script>';
const RESULTS = 'test-results';
// The engine caches a RUN step with the same text on the same parent: a cached step prints nothing. This makes each run's steps new.
const NONCE = `${process.pid}-${Date.now()}`;

const repoFiles = (name: string, version: string, dockerfile: string) => ({
  'dockerInfo.json': JSON.stringify({ service_name: name, version }),
  Dockerfile: dockerfile,
});

/** Fails the test on any dialog (an injected alert), page error or console error (a CSP violation is one). */
function watch(page: Page): { dialogs: string[]; errors: string[] } {
  const seen = { dialogs: [] as string[], errors: [] as string[] };
  page.on('dialog', (dialog) => {
    seen.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('pageerror', (err) => seen.errors.push(err.message));
  page.on('console', (msg) => {
    if (msg.type() === 'error') seen.errors.push(msg.text());
  });
  return seen;
}

describe('pages in a real browser', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: install Debian's chromium to run the browser tests` }, () => {
  let h: Harness;
  let browser: Browser;
  let context: BrowserContext;
  const ids = { web: 0, xss: 0, broken: 0 };
  const shas = { web: '' };

  before(async () => {
    await mkdir(RESULTS, { recursive: true });
    [h, browser] = await Promise.all([
      startHarness(),
      chromium.launch({
        executablePath: CHROMIUM,
        // Root needs --no-sandbox; the rest keep Chromium from reaching for a network that is closed here.
        args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
      }),
    ]);
    context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.url });

    const web = await h.createRepo(OWNER, 'web', repoFiles('web', '1.2.0', `FROM busybox:latest\nRUN echo web built && echo ${NONCE}\n`));
    shas.web = web.head();
    ids.web = (await h.merge(OWNER, 'web', web.head(), { number: 21 })).body.build;

    // Markup in the PR title and the branch, ANSI colours and markup in the log.
    const xss = await h.createRepo(OWNER, 'xss', repoFiles('xss', '0.0.1', `FROM busybox:latest\nRUN printf '\\033[31mred\\033[0m <b>bold</b>\\n' && echo ${NONCE}\n`));
    const payload = mergedPullRequestPayload({ owner: OWNER, repo: 'xss', sha: xss.head(), number: 22, branch: `feat${XSS}` }) as any;
    payload.pull_request.title = `Fix ${XSS} & "quotes"`;
    const answer = await h.deliver(payload);
    assert.equal(answer.status, 202, JSON.stringify(answer.body));
    ids.xss = answer.body.build;

    const broken = await h.createRepo(OWNER, 'broken', repoFiles('broken', '0.1.0', 'FROM busybox:latest\nRUN exit 3\n'));
    ids.broken = (await h.merge(OWNER, 'broken', broken.head(), { number: 23 })).body.build;
    await Promise.all(Object.values(ids).map((id) => h.waitForBuild(id)));
  });

  after(async () => {
    await context?.close();
    await browser?.close();
    await h?.close();
  });

  it('lists every build with its state, PR link and short SHA, escaping markup', async () => {
    const page = await context.newPage();
    const seen = watch(page);
    const res = await page.goto(h.url);
    assert.equal(res?.status(), 200);
    assert.match(res?.headers()['content-security-policy'] ?? '', /script-src 'self'/);
    assert.equal(res?.headers()['x-content-type-options'], 'nosniff');

    assert.equal(await page.locator('#rows tr').count(), 3);
    const web = page.locator(`tr[data-id="${ids.web}"]`);
    assert.equal(await web.locator('.badge').textContent(), 'succeeded');
    assert.equal(await web.locator('.pr a').textContent(), '#21');
    assert.equal(await web.locator('.pr a').getAttribute('href'), `https://github.com/${OWNER}/web/pull/21`);
    assert.equal(await web.locator('.sha').textContent(), shas.web.slice(0, 7));
    assert.equal(await web.locator('.sha').getAttribute('href'), `https://github.com/${OWNER}/web/commit/${shas.web}`);
    assert.deepEqual(await web.locator('.tag').allTextContents(), ['1.2.0', `sha-${shas.web.slice(0, 7)}`, 'latest']);
    assert.equal(await page.locator(`tr[data-id="${ids.broken}"] .badge`).textContent(), 'failed');

    const xss = page.locator(`tr[data-id="${ids.xss}"]`);
    assert.equal(await xss.locator('.pr-title').textContent(), `Fix ${XSS} & "quotes"`);
    assert.equal(await xss.locator('.sub').textContent(), `feat${XSS}`);
    assert.equal(await page.locator('#rows script').count(), 0);

    // The client re-render (every 3 s) must show the same, still as text.
    await page.waitForTimeout(3500);
    assert.equal(await xss.locator('.pr-title').textContent(), `Fix ${XSS} & "quotes"`);
    assert.equal(await page.locator('#rows script').count(), 0);
    await page.screenshot({ path: `${RESULTS}/index.png`, fullPage: true });
    assert.deepEqual(seen, { dialogs: [], errors: [] });
    await page.close();
  });

  it('shows a build page with the docker pull line, and Copy copies it', async () => {
    const page = await context.newPage();
    const seen = watch(page);
    await page.goto(`${h.url}/builds/${ids.web}`);
    const pulls = await page.locator('.pull-cmd').allTextContents();
    assert.deepEqual(pulls, ['1.2.0', `sha-${shas.web.slice(0, 7)}`, 'latest'].map((t) => `docker pull ${h.registry.host}/web:${t}`));
    const button = page.locator('.pull-list li').first().locator('button.copy');
    await button.click();
    await page.waitForFunction(() => document.querySelector('button.copy')?.textContent === 'Copied');
    assert.equal(await page.evaluate(() => navigator.clipboard.readText()), pulls[0]);
    assert.match((await page.locator('#log').textContent()) ?? '', /web built/);
    assert.equal(await page.locator('#log-status').textContent(), '');
    assert.deepEqual(seen, { dialogs: [], errors: [] });
    await page.close();
  });

  it('falls back to selecting the pull line where the clipboard API is missing', async () => {
    const page = await context.newPage();
    // As on plain http to a non-local host, where browsers offer no navigator.clipboard.
    await page.addInitScript(() => Object.defineProperty(navigator, 'clipboard', { value: undefined, configurable: true }));
    await page.goto(`${h.url}/builds/${ids.web}`);
    await page.locator('button.copy').nth(1).click();
    assert.equal(await page.evaluate(() => window.getSelection()?.toString()), (await page.locator('.pull-cmd').nth(1).textContent()) ?? 'missing');
    assert.match((await page.locator('button.copy').nth(1).textContent()) ?? '', /Copied|Press Ctrl\+C/);
    await page.close();
  });

  it('shows markup and ANSI-coloured log lines as plain text', async () => {
    const page = await context.newPage();
    const seen = watch(page);
    await page.goto(`${h.url}/builds/${ids.xss}`);
    assert.equal(await page.locator('.lead .pr-title').textContent(), `Fix ${XSS} & "quotes"`);
    const lines = await page.locator('#log .ln .tx').allTextContents();
    assert.ok(lines.includes('red <b>bold</b>'), 'the coloured line, as text without escape codes');
    assert.ok(!lines.some((l) => l.includes('\u001b')));
    assert.equal(await page.locator('#log b, main script').count(), 0);
    assert.ok(await page.getByText('red <b>bold</b>').isVisible());
    assert.deepEqual(seen, { dialogs: [], errors: [] });
    await page.close();

    const failed = await context.newPage();
    await failed.goto(`${h.url}/builds/${ids.broken}`);
    assert.match((await failed.locator('#failure').textContent()) ?? '', /Failed:.*(non-zero code: 3|exit code: 3)/);
    assert.equal(await failed.locator('#pull').isVisible(), false);
    await failed.close();

    const missing = await context.newPage();
    const res = await missing.goto(`${h.url}/builds/424242`);
    assert.equal(res?.status(), 404);
    assert.match((await missing.locator('h1').textContent()) ?? '', /Build not found/);
    await missing.close();
  });

  it('shows a new build without a reload, and follows its log live until it ends', async () => {
    const index = await context.newPage();
    const seenIndex = watch(index);
    await index.goto(h.url);
    const slow = await h.createRepo(OWNER, 'slow', repoFiles('slow', '3.0.0', `FROM busybox:latest\nRUN echo start && sleep 5 && echo finish && echo ${NONCE}\n`));
    const id = (await h.merge(OWNER, 'slow', slow.head(), { number: 24 })).body.build as number;

    // Open its page while it runs; the index tab meanwhile must pick it up by itself.
    const page = await context.newPage();
    const seen = watch(page);
    await page.goto(`${h.url}/builds/${id}`);
    const state = await page.locator('#state').textContent();
    assert.ok(state === 'queued' || state === 'running', `opened while ${state}`);
    await index.locator(`tr[data-id="${id}"]`).waitFor({ timeout: 10_000 });
    assert.match((await index.locator(`tr[data-id="${id}"] .badge`).textContent()) ?? '', /queued|running/);

    const lines = page.locator('#log .ln .tx');
    await lines.getByText('start', { exact: true }).waitFor({ timeout: 30_000 });
    assert.equal(await lines.getByText('finish', { exact: true }).count(), 0, 'finish comes later, live');
    await lines.getByText('finish', { exact: true }).waitFor({ timeout: 30_000 });
    await page.waitForFunction(() => document.getElementById('state')?.textContent === 'succeeded', undefined, { timeout: 30_000 });
    await h.waitForBuild(id);

    // Every line once, in order: the page's lines are the file's.
    const shown = await lines.allTextContents();
    const file = completeLines(await h.service.logs.read(id)).map((l) => l.replace(/^\S+ /, ''));
    assert.deepEqual(shown, file);
    // The facts catch up at the end: pull lines appear, the status stops.
    await page.locator('.pull-cmd').first().waitFor({ timeout: 10_000 });
    assert.equal(await page.locator('#log-status').textContent(), '');
    await page.screenshot({ path: `${RESULTS}/build.png`, fullPage: true });

    await index.locator(`tr[data-id="${id}"] .badge`, { hasText: 'succeeded' }).waitFor({ timeout: 10_000 });
    assert.deepEqual(seen, { dialogs: [], errors: [] });
    assert.deepEqual(seenIndex, { dialogs: [], errors: [] });
    await page.close();
    await index.close();
  });
});
