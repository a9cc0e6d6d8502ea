/**
 * Numbers only: percentiles of one sample set, and the median with min and max
 * over rounds. Every figure the bench prints goes through here.
 */

export interface Summary {
  median: number;
  min: number;
  max: number;
  n: number;
}

/** Nearest-rank percentile of `values` (0 < p ≤ 100). Sorts a copy. */
export function percentile(values: ArrayLike<number>, p: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = Float64Array.from(values).sort();
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(Math.max(rank, 1), sorted.length) - 1]!;
}

/** Median (the mean of the middle two for an even count), min and max. */
export function summarize(values: number[]): Summary {
  const finite = values.filter((v) => Number.isFinite(v));
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  const sorted = [...finite].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  const median = sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
  return { median, min: sorted[0]!, max: sorted[sorted.length - 1]!, n: sorted.length };
}

/** Per-round ratios a[i]/b[i] of rounds measured side by side, summarized. */
export function ratios(a: number[], b: number[]): Summary {
  const n = Math.min(a.length, b.length);
  const r: number[] = [];
  for (let i = 0; i < n; i++) r.push(a[i]! / b[i]!);
  return summarize(r);
}

function fixed(v: number, digits: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  return v.toFixed(digits);
}

/** "12.3 (11.9–13.0)": median with min–max. */
export function fmt(s: Summary, digits = 1, unit = ''): string {
  if (s.n === 0) return 'n/a';
  const u = unit ? ` ${unit}` : '';
  if (s.n === 1) return `${fixed(s.median, digits)}${u}`;
  return `${fixed(s.median, digits)}${u} (${fixed(s.min, digits)}–${fixed(s.max, digits)})`;
}

/** A ratio as "0.93× (0.90–0.97)". */
export function fmtRatio(s: Summary): string {
  if (s.n === 0) return 'n/a';
  if (s.n === 1) return `${fixed(s.median, 2)}×`;
  return `${fixed(s.median, 2)}× (${fixed(s.min, 2)}–${fixed(s.max, 2)})`;
}

export const mib = (bytes: number): number => bytes / (1024 * 1024);
