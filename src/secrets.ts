/**
 * Removes known secret values from text that leaves the process: build
 * failure reasons, commit status descriptions, log lines of a build. The
 * registry password could, for instance, come back inside an engine error.
 */
/**
 * GitHub's token formats (ghp_ personal, ghs_ installation, gho_/ghu_/ghr_ OAuth, github_pat_
 * fine-grained): App mode's installation tokens change every hour, so no list of values can hold them.
 */
const GITHUB_TOKEN_SHAPE = /\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})\b/g;

export function createScrubber(secrets: (string | undefined)[]): (text: string) => string {
  const values = [...new Set(secrets.filter((s): s is string => typeof s === 'string' && s.length >= 4))].sort((a, b) => b.length - a.length);
  return (text: string) => values.reduce((acc, secret) => acc.split(secret).join('[redacted]'), text).replace(GITHUB_TOKEN_SHAPE, '[redacted]');
}
