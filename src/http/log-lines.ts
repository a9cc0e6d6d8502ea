// strip-ansi is the maintained answer (it tracks ansi-regex); swap the import here if the version changes.
import stripAnsi from 'strip-ansi';

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
