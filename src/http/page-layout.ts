import type { RequestHandler } from 'express';
import { html, type SafeHtml } from './html.js';

/**
 * Scripts and styles only from our own /assets: no inline script, no inline
 * event handler, no third party. An injected <script> in a PR title would be
 * dead even if escaping ever failed.
 */
const CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const pageHeaders: RequestHandler = (_req, res, next) => {
  res.set({
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'Referrer-Policy': 'same-origin',
    'X-Frame-Options': 'DENY',
    // Pages show live state: always ask again.
    'Cache-Control': 'no-cache',
  });
  next();
};

export interface PageOptions {
  title: string;
  body: SafeHtml;
  /** A file under /assets, loaded deferred. */
  script?: string;
}

export function renderPage(options: PageOptions): string {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${options.title} · dockhook</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/dockhook.css">
${options.script ? html`<script src="/assets/${options.script}" defer></script>` : ''}
</head>
<body>
<header class="top"><a class="brand" href="/">dockhook</a><span class="tagline">merged pull requests → images</span></header>
<main>
${options.body}
</main>
</body>
</html>
`.value;
}
