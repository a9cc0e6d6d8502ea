import type { BuildRecord } from '../store/store.js';
import { codeBlock, escapeMarkdown, GITHUB_FIELD_MAX, keepEnd } from './markdown.js';

/** How long the build ran, as people say it: 1 m 05 s. */
export function formatDuration(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  return s < 60 ? `${s} s` : `${Math.floor(s / 60)} m ${String(s % 60).padStart(2, '0')} s`;
}

function durationOf(build: BuildRecord): string | undefined {
  const start = build.firstStartedAt ?? build.startedAt;
  return start !== undefined && build.finishedAt !== undefined ? formatDuration(build.finishedAt - start) : undefined;
}

/** `docker pull` of each reference pushed (the sha- tag first, as it was pushed), one per line. */
export function pullLines(build: BuildRecord): string[] {
  return [...new Set(build.pushed.map((p) => p.ref))].map((ref) => `docker pull ${ref}`);
}

/** A successful build in Markdown: tags and digests, pull lines, duration and what came from the layer cache. */
export function successMarkdown(build: BuildRecord, cacheLine: string | undefined, pageUrl: string | undefined): string {
  const parts: string[] = [];
  if (build.pushed.length) {
    parts.push('| Tag | Digest |\n| --- | --- |\n' + build.pushed.map((p) => `| \`${p.tag}\` | \`${p.digest}\` |`).join('\n'));
    parts.push(codeBlock(pullLines(build).join('\n'), 'sh'));
  }
  if (build.platforms.length) parts.push('Platforms: ' + build.platforms.map((p) => `\`${p.platform}\` \`${p.digest}\``).join(', '));
  if (build.artifacts.length) parts.push('Artifacts: ' + build.artifacts.map((a) => `\`${a.name}\`${a.platform ? ` (${a.platform})` : ''}, ${a.size} bytes`).join('; '));
  const facts = [durationOf(build) && `took ${durationOf(build)}`, cacheLine && escapeMarkdown(cacheLine)].filter(Boolean);
  if (facts.length) parts.push(facts.join(' · '));
  for (const note of build.notes) parts.push(`> ${escapeMarkdown(note)}`);
  if (pageUrl) parts.push(`[Build log](${pageUrl})`);
  return keepEnd(parts.join('\n\n'), GITHUB_FIELD_MAX);
}

/** A failed build's reason in Markdown, with where to read the whole log. */
export function failureMarkdown(build: BuildRecord, reason: string, pageUrl: string | undefined): string {
  const duration = durationOf(build);
  return keepEnd(
    [codeBlock(reason), duration ? `failed after ${duration} (attempt ${build.attempts})` : undefined, pageUrl ? `[Build log](${pageUrl})` : 'The whole log is on the build page of dockhook.']
      .filter(Boolean)
      .join('\n\n'),
    GITHUB_FIELD_MAX,
  );
}

/** The last log lines as check run text: a code block within GitHub's cap. */
export function logTailText(lines: string[]): string {
  const fenceRoom = 64;
  return codeBlock(keepEnd(lines.join('\n'), GITHUB_FIELD_MAX - fenceRoom));
}
