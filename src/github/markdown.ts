/**
 * Markdown for GitHub (check run output, PR comments) from text that comes
 * from a repository: branch names, image names, log lines. Escaped so that it
 * renders as the text it is, and cannot open a link, an image, a mention or
 * raw HTML.
 */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/[\\`*_{}[\]()#+\-.!|~>]/g, '\\$&')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/@/g, '@\u200b') // no @mentions from a branch name
    .replace(/\r?\n/g, ' ');
}

/** A fenced block that no backtick run inside the text can close early. */
export function codeBlock(text: string, info = ''): string {
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = '`'.repeat(longest + 1);
  return `${fence}${info}\n${text}\n${fence}`;
}

/** GitHub caps check run summary and text at 65535 characters each. */
export const GITHUB_FIELD_MAX = 65535;

/** Keeps the end of a text (a log's last lines matter most) within `max` characters. */
export function keepEnd(text: string, max: number, marker = '… (earlier lines cut)\n'): string {
  if (text.length <= max) return text;
  return marker + text.slice(text.length - (max - marker.length));
}
