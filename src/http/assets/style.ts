/** The pages' one stylesheet, served as /assets/dockhook.css (CSP allows styles only from 'self'). */
export const STYLE = `
:root {
  --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #ffffff; --soft: #f6f8fa;
  --link: #0969da; --ok: #1a7f37; --ok-bg: #dafbe1; --bad: #cf222e; --bad-bg: #ffebe9;
  --run: #0969da; --run-bg: #ddf4ff; --wait: #57606a; --wait-bg: #eaeef2;
  --mono: ui-monospace, SFMono-Regular, "SF Mono", Menlo, Consolas, "Liberation Mono", monospace;
}
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); font: 14px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
a { color: var(--link); text-decoration: none; }
a:hover { text-decoration: underline; }
code, .mono { font-family: var(--mono); font-size: 12.5px; }
.top { display: flex; align-items: baseline; gap: 12px; padding: 12px 24px; border-bottom: 1px solid var(--line); background: var(--soft); }
.brand { font-weight: 600; font-size: 16px; color: var(--fg); }
.tagline { color: var(--muted); font-size: 13px; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 24px 48px; }
h1 { font-size: 20px; margin: 0; }
h2 { font-size: 15px; margin: 0 0 8px; }
.heading { display: flex; align-items: center; gap: 12px; margin: 8px 0 12px; }
.muted { color: var(--muted); }
.live { font-size: 12px; color: var(--muted); }
.live::before { content: ""; display: inline-block; width: 7px; height: 7px; border-radius: 50%; background: var(--ok); margin-right: 5px; vertical-align: 1px; }
.live.offline::before { background: var(--bad); }
.filters { color: var(--muted); margin: 0 0 12px; }

.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px; font-weight: 600; line-height: 18px; border: 1px solid transparent; white-space: nowrap; }
a.badge:hover { text-decoration: none; filter: brightness(0.95); }
.badge-succeeded { color: var(--ok); background: var(--ok-bg); border-color: #aceebb; }
.badge-failed { color: var(--bad); background: var(--bad-bg); border-color: #ffcecb; }
.badge-running { color: var(--run); background: var(--run-bg); border-color: #b6e3ff; }
.badge-running::before { content: ""; display: inline-block; width: 6px; height: 6px; border-radius: 50%; background: currentColor; margin-right: 5px; vertical-align: 1px; animation: pulse 1.2s ease-in-out infinite; }
.badge-queued { color: var(--wait); background: var(--wait-bg); border-color: #d0d7de; }
@keyframes pulse { 50% { opacity: 0.3; } }

.table-wrap { overflow-x: auto; border: 1px solid var(--line); border-radius: 6px; }
table.builds { width: 100%; border-collapse: collapse; }
.builds th { text-align: left; font-weight: 600; font-size: 12px; color: var(--muted); background: var(--soft); padding: 8px 10px; border-bottom: 1px solid var(--line); white-space: nowrap; }
.builds td { padding: 8px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
.builds tr:last-child td { border-bottom: 0; }
.builds tbody tr:hover { background: #fafbfc; }
.builds .sub { color: var(--muted); font-size: 12px; }
.builds .num, .builds .duration, .builds .age { white-space: nowrap; }
.builds .pr { max-width: 320px; }
.pr-title { overflow-wrap: anywhere; }
.tag { display: inline-block; background: var(--soft); border: 1px solid var(--line); border-radius: 4px; padding: 0 5px; margin: 0 2px 2px 0; }
.empty { border: 1px dashed var(--line); border-radius: 6px; padding: 16px 20px; background: var(--soft); }
.empty p { margin: 4px 0; }
.pager { margin-top: 12px; }

.lead { margin: 0 0 16px; color: var(--muted); }
.failure { border: 1px solid #ffcecb; background: var(--bad-bg); color: #82071e; border-radius: 6px; padding: 10px 14px; margin: 0 0 16px; overflow-wrap: anywhere; }
.pull { margin: 0 0 16px; }
.pull-list { list-style: none; margin: 0; padding: 0; }
.pull-list li { margin: 0 0 8px; }
.pull-line { display: flex; gap: 8px; align-items: stretch; max-width: 760px; }
.pull-cmd { flex: 1; display: block; padding: 6px 10px; background: var(--soft); border: 1px solid var(--line); border-radius: 6px; overflow-x: auto; white-space: nowrap; user-select: all; }
.copy { font: inherit; font-size: 12px; padding: 0 12px; border: 1px solid var(--line); border-radius: 6px; background: var(--bg); cursor: pointer; min-width: 64px; }
.copy:hover { background: var(--soft); }
.digest { color: var(--muted); font-size: 11.5px; margin: 2px 0 0 2px; overflow-wrap: anywhere; }
.facts { display: grid; grid-template-columns: max-content 1fr; align-items: baseline; gap: 4px 16px; margin: 0 0 20px; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.notes { margin: 0; padding-left: 18px; }
.log-head { display: flex; align-items: baseline; gap: 12px; }
.log-head .raw { margin-left: auto; font-size: 12px; }
.log { font-family: var(--mono); font-size: 12px; line-height: 1.55; background: #0d1117; color: #e6edf3; border-radius: 6px; padding: 10px 0; max-height: 70vh; overflow: auto; }
.log:empty { display: none; }
.ln { display: flex; padding: 0 12px; white-space: pre-wrap; overflow-wrap: anywhere; }
.ln:hover { background: #161b22; }
.ts { color: #7d8590; flex: none; margin-right: 12px; user-select: none; }
.tx { min-width: 0; }
.log-empty { margin: 4px 0; }
@media (max-width: 720px) { main, .top { padding-left: 12px; padding-right: 12px; } .builds .pr-title { display: none; } }
`;
