import { downloadFileName, type ArtifactView, type BuildView } from './build-view.js';
import { html, safeUrl, type SafeHtml } from './html.js';
import { splitStamp, withoutAnsi } from './log-lines.js';
import { formatDuration, formatTime } from './page-format.js';

/*
 * Element ids here (state, failure, pull-list, f-*, log) are what
 * assets/build-script.ts updates while the build runs: keep them in step.
 */

export function logLine(raw: string): SafeHtml {
  const { at, text } = splitStamp(withoutAnsi(raw));
  return html`<div class="ln">${at ? html`<span class="ts" title="${at}">${at.slice(11, 19)}</span>` : ''}<span class="tx">${text}</span></div>`;
}

function pullItems(b: BuildView): SafeHtml {
  return html`${b.pushed.map(
    (p, i) => html`<li><div class="pull-line"><code class="pull-cmd">${b.pull[i]}</code><button type="button" class="copy">Copy</button></div><div class="digest mono" title="digest of ${p.ref}">${p.digest}</div></li>`,
  )}`;
}

const time = (iso: string | null) => (iso ? html`<time datetime="${iso}">${formatTime(iso)}</time>` : html`<span class="muted">—</span>`);

function facts(b: BuildView): SafeHtml {
  const pr = b.pullRequest;
  return html`<dl class="facts">
<dt>Repository</dt><dd><a href="${safeUrl(b.repository.url)}">${b.repository.fullName}</a></dd>
<dt>Branch</dt><dd class="mono">${b.branch}</dd>
<dt>Commit</dt><dd><a class="mono" href="${safeUrl(b.links.commit)}">${b.sha}</a></dd>
<dt>Pull request</dt><dd>${pr ? html`<a href="${safeUrl(pr.url)}">#${pr.number}</a> ${pr.title}` : html`<span class="muted">none (${b.trigger})</span>`}</dd>
<dt>Image</dt><dd class="mono" id="f-image">${b.image ? `${b.image}:${b.version ?? ''}` : html`<span class="muted">not known yet</span>`}</dd>
<dt>Moved latest</dt><dd id="f-latest">${b.latest ? 'yes' : 'no'}</dd>
<dt>Attempts</dt><dd id="f-attempts">${b.attempts}</dd>
<dt>Created</dt><dd>${time(b.createdAt)}</dd>
<dt>Started</dt><dd id="f-started">${time(b.startedAt)}</dd>
<dt>Finished</dt><dd id="f-finished">${time(b.finishedAt)}</dd>
<dt>Duration</dt><dd id="f-duration">${b.durationMs === null ? html`<span class="muted">—</span>` : formatDuration(b.durationMs)}</dd>
${b.notes.length ? html`<dt>Notes</dt><dd><ul class="notes">${b.notes.map((n) => html`<li>${n}</li>`)}</ul></dd>` : ''}
</dl>`;
}

/** A merge's images together: one row per image build, base before app. */
function groupSection(b: BuildView): SafeHtml {
  if (b.group) {
    return html`<p class="group-link">Image <code>${b.service}</code> of <a href="${safeUrl(b.group.page)}">merge build #${b.group.id}</a>${b.needs.length ? html`, built after ${b.needs.join(', ')}` : ''}${b.force ? ' (forced)' : ''}</p>`;
  }
  if (!b.images) return html``;
  return html`<section class="group" id="group">
<h2>Images of this merge</h2>
<table class="builds"><thead><tr><th>Image</th><th>State</th><th>Build</th><th>Reference</th><th>After</th></tr></thead>
<tbody>${b.images.map(
    (i) => html`<tr data-id="${i.id}"><td class="mono">${i.service}</td><td><a class="badge badge-${i.state}" href="${safeUrl(i.page)}">${i.state}</a></td><td class="num"><a href="${safeUrl(i.page)}">#${i.id}</a></td>
<td>${i.ref ? html`<code>${i.ref}</code><div class="digest mono">${i.digest}</div>` : i.failure ? html`<span class="failure-text">${i.failure}</span>` : html`<span class="muted">—</span>`}</td><td class="mono">${i.needs.join(', ')}</td></tr>`,
  )}</tbody></table>
</section>`;
}

/** "812 B", "4.2 KiB", "51.3 MiB", "1.1 GiB". */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** Quoted for a POSIX shell unless plainly safe: `?` is a glob to zsh, `&` ends a command everywhere. */
const shellWord = (s: string) => (/^[A-Za-z0-9_./:@%+=,-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

export interface BuildPageOptions {
  /** API_TOKEN_READS=true: a download needs the token, so the curl lines send it. */
  tokenForReads?: boolean;
}

/** `curl -fLo dist.tar.gz <url>`: what downloads the artifact from a shell (-f: an error answer is not saved as the file). */
export function curlLine(a: ArtifactView, o: BuildPageOptions = {}): string {
  const auth = o.tokenForReads ? ' -H "Authorization: Bearer $API_TOKEN"' : '';
  return `curl -fLo ${downloadFileName(a)}${auth} ${shellWord(a.url)}`;
}

function platformsSection(b: BuildView): SafeHtml {
  if (!b.platforms.length) return html``;
  return html`<section class="platforms" id="platforms">
<h2>Platforms</h2>
<table class="builds"><thead><tr><th>Platform</th><th>Digest</th></tr></thead>
<tbody>${b.platforms.map(
    (p) => html`<tr><td class="mono">${p.platform}</td><td><div class="digest mono" title="${b.image ? `${b.image}@${p.digest}` : p.tag}">${p.digest}</div></td></tr>`,
  )}</tbody></table>
</section>`;
}

function deploymentsSection(b: BuildView): SafeHtml {
  if (!b.deployments.length) return html``;
  return html`<section class="deployments" id="deployments">
<h2>Deploys</h2>
<ul class="deploy-list">${b.deployments.map(
    (d) => html`<li data-state="${d.state}"><div><strong>${d.service} ${d.version}</strong> <span class="state ${d.state}">${d.state.replace('_', ' ')}</span> <span class="muted">${d.environment} · ${d.trigger} · ${d.createdAt}</span></div>${d.reason ? html`<div>${d.reason}</div>` : ''}${d.log.length ? html`<pre class="log">${d.log.join('\n')}</pre>` : ''}</li>`,
  )}</ul>
</section>`;
}

function artifactsSection(b: BuildView, o: BuildPageOptions): SafeHtml {
  if (!b.artifacts.length) return html``;
  return html`<section class="artifacts" id="artifacts">
<h2>Artifacts</h2>
<ul class="pull-list artifact-list">${b.artifacts.map(
    (a) => html`<li data-name="${a.name}"${a.platform ? html` data-platform="${a.platform}"` : ''}><div><a href="${safeUrl(a.url)}" download="${downloadFileName(a)}">${downloadFileName(a)}</a> <span class="muted">${formatBytes(a.size)} · <code>${a.path}</code>${a.platform ? html` · ${a.platform}` : ''}</span></div>
<div class="pull-line"><code class="pull-cmd">${curlLine(a, o)}</code><button type="button" class="copy">Copy</button></div><div class="digest mono" title="sha256 of the .tar.gz; oras pull ${a.reference}">${a.digest}</div></li>`,
  )}</ul>
</section>`;
}

export function renderBuildBody(b: BuildView, log: string[], o: BuildPageOptions = {}): SafeHtml {
  const pr = b.pullRequest;
  const live = b.state === 'queued' || b.state === 'running';
  return html`<div id="build" data-id="${b.id}" data-state="${b.state}" data-lines="${log.length}">
<div class="heading"><h1>Build #${b.id}</h1><span class="badge badge-${b.state}" id="state">${b.state}</span></div>
<p class="lead"><a href="${safeUrl(b.repository.url)}">${b.repository.fullName}</a>${pr ? html` · <a href="${safeUrl(pr.url)}">#${pr.number}</a> <span class="pr-title">${pr.title}</span>` : ''}</p>
<div class="failure" id="failure"${b.failure ? '' : html` hidden`}><strong id="failure-label">${b.state === 'failed' ? 'Failed' : 'Last attempt failed'}:</strong> <span id="failure-text">${b.failure}</span></div>
<section class="pull" id="pull"${b.pushed.length ? '' : html` hidden`}>
<h2>Pull the image</h2>
<ul class="pull-list" id="pull-list">${pullItems(b)}</ul>
</section>
${platformsSection(b)}
${artifactsSection(b, o)}
${deploymentsSection(b)}
${groupSection(b)}
${facts(b)}
<section class="log-section">
<div class="log-head"><h2>Log</h2><span class="muted" id="log-status">${live ? 'following live…' : ''}</span><a class="raw" href="/api/builds/${b.id}/log">raw</a></div>
<div class="log" id="log">${log.map(logLine)}</div>
<p class="muted log-empty" id="log-empty"${log.length ? html` hidden` : ''}>${b.state === 'queued' ? 'Waiting for the build to start.' : 'No output.'}</p>
</section>
</div>`;
}

export function renderNotFoundBody(idText: string): SafeHtml {
  return html`<div class="heading"><h1>Build not found</h1></div>
<p>There is no build <code>${idText}</code>. It may never have existed, or the data directory was reset.</p>
<p><a href="/">← All builds</a></p>`;
}
