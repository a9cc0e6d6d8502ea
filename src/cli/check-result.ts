/** One line of `dockhook doctor`: what was checked, how it went, and what to do about it. */
export type Level = 'ok' | 'warn' | 'FAIL';

export interface CheckResult {
  level: Level;
  name: string;
  message: string;
  fix?: string;
}

export const ok = (name: string, message: string): CheckResult => ({ level: 'ok', name, message });
export const warn = (name: string, message: string, fix?: string): CheckResult => ({ level: 'warn', name, message, fix });
export const fail = (name: string, message: string, fix?: string): CheckResult => ({ level: 'FAIL', name, message, fix });
