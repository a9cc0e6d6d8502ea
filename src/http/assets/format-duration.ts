/**
 * formatDuration(ms) for the browser scripts, written once and inlined into
 * each (same rules as page-format.ts on the server).
 */
export const FORMAT_DURATION = String.raw`function formatDuration(ms) {
    var s = ms / 1000;
    if (s < 10) return s.toFixed(1) + ' s';
    if (s < 60) return Math.round(s) + ' s';
    var m = Math.floor(s / 60);
    if (m < 60) return m + ' min ' + Math.round(s % 60) + ' s';
    return Math.floor(m / 60) + ' h ' + (m % 60) + ' min';
  }`;
