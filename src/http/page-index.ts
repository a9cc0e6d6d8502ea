import type { BuildView } from './build-view.js';
import { html, safeUrl, type SafeHtml } from './html.js';
import { formatAge, formatDuration } from './page-format.js';

export interface IndexModel {
  builds: BuildView[];
  /** Query string of the next page, or null. */
  next: string | null;
  filters: { repo?: string; state?: string };
  /** Where GitHub must send deliveries, for the empty state. */
  webhookUrl: string;
  now: number;
}

/*
 * The row layout is mirrored by assets/index-script.ts, which re-renders the
 * rows from /api/builds every few seconds: keep the two in step.
 */

function tags(b: BuildView): SafeHtml {
  const svc = b.service ? html`<span class="svc mono">${b.service}</span> ` : '';
  if (b.pushed.length) return html`${svc}${b.pushed.map((p) => html`<code class="tag">${p.tag}</code> `)}`;
  if (b.image && b.version) return html`${svc}<span class="muted">${b.version}</span>`;
  if (b.group === null && b.state === 'succeeded' && !b.image) return html`<span class="muted">several images</span>`;
  return html`${svc}<span class="muted">—</span>`;
}

function duration(b: BuildView, now: number): SafeHtml {
  if (b.durationMs !== null) return html`<td class="duration">${formatDuration(b.durationMs)}</td>`;
  if (b.state === 'running' && b.startedAt) {
    return html`<td class="duration muted" data-started="${b.startedAt}">running ${formatDuration(Math.max(now - Date.parse(b.startedAt), 0))}</td>`;
  }
  return html`<td class="duration muted">waiting</td>`;
}

export function buildRow(b: BuildView, now: number): SafeHtml {
  const pr = b.pullRequest;
  return html`<tr data-id="${b.id}">
<td><a class="badge badge-${b.state}" href="/builds/${b.id}">${b.state}</a></td>
<td class="num"><a href="/builds/${b.id}">#${b.id}</a></td>
<td><a class="repo" href="${safeUrl(b.repository.url)}">${b.repository.fullName}</a><div class="sub mono">${b.branch}</div></td>
<td class="pr">${pr ? html`<a href="${safeUrl(pr.url)}">#${pr.number}</a> <span class="pr-title">${pr.title}</span>` : html`<span class="muted">${b.trigger}</span>`}</td>
<td><a class="mono sha" href="${safeUrl(b.links.commit)}" title="${b.sha}">${b.shortSha}</a></td>
<td class="tags">${tags(b)}</td>
${duration(b, now)}
<td class="age"><time datetime="${b.createdAt}" title="${b.createdAt}">${formatAge(b.createdAt, now)}</time></td>
</tr>`;
}

function filterNote(filters: IndexModel['filters']): SafeHtml {
  const parts = [filters.repo ? `repo ${filters.repo}` : '', filters.state ? `state ${filters.state}` : ''].filter(Boolean);
  if (!parts.length) return html``;
  return html`<p class="filters">Showing ${parts.join(', ')} · <a href="/">all builds</a></p>`;
}

export function renderIndexBody(model: IndexModel): SafeHtml {
  const filtered = Boolean(model.filters.repo || model.filters.state);
  const empty = model.builds.length === 0;
  return html`<div class="heading"><h1>Builds</h1><span class="live" id="live" title="refreshes every few seconds">live</span></div>
${filterNote(model.filters)}
<div class="table-wrap" id="table-wrap"${empty ? html` hidden` : ''}>
<table class="builds">
<thead><tr><th>State</th><th>Build</th><th>Repository</th><th>Pull request</th><th>Commit</th><th>Image tags</th><th>Duration</th><th>Age</th></tr></thead>
<tbody id="rows">
${model.builds.map((b) => buildRow(b, model.now))}
</tbody>
</table>
</div>
<div class="empty" id="empty"${empty ? '' : html` hidden`}>
${filtered
  ? html`<p>No builds match these filters. <a href="/">Show all builds</a>.</p>`
  : html`<p><strong>No builds yet.</strong> Merge a pull request in a repository whose webhook points at <code>${model.webhookUrl}</code> (content type <code>application/json</code>, event <em>Pull requests</em>).</p>
<p class="muted">The repository needs a <code>dockerInfo.json</code> with <code>service_name</code> and <code>version</code> next to its Dockerfile. Builds appear here as soon as GitHub delivers.</p>`}
</div>
${model.next ? html`<nav class="pager"><a href="/?${model.next}">Older builds →</a></nav>` : ''}`;
}
