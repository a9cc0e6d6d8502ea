// strip-ansi is the maintained answer (it tracks ansi-regex); swap the import here if the version changes.
import stripAnsi from 'strip-ansi';

/**
 * The lines of a build log file that are complete. A trailing piece without
 * its newline is still being written and belongs to the next read, so line
 * numbers stay the same between a page render and the live stream.
 */
export function completeLines(text: string): string[] {
  const lines = text.split('\n');
  lines.pop(); // '' after the last newline, or an unfinished line
  return lines;
}

/** Terminal colours and cursor moves mean nothing in a browser or a JSON client. */
export function withoutAnsi(line: string): string {
  return stripAnsi(line);
}

const STAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) (.*)$/s;

/** BuildLogs writes `<ISO time> <text>`; pages show the two apart. */
export function splitStamp(line: string): { at: string | null; text: string } {
  const match = STAMP.exec(line);
  return match ? { at: match[1]!, text: match[2]! } : { at: null, text: line };
}
