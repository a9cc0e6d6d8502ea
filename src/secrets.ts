/**
 * Removes known secret values from text that leaves the process: build
 * failure reasons, commit status descriptions, log lines of a build. The
 * registry password could, for instance, come back inside an engine error.
 */
export function createScrubber(secrets: (string | undefined)[]): (text: string) => string {
  const values = [...new Set(secrets.filter((s): s is string => typeof s === 'string' && s.length >= 4))].sort((a, b) => b.length - a.length);
  return (text: string) => values.reduce((acc, secret) => acc.split(secret).join('[redacted]'), text);
}
