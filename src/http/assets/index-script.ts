import { FORMAT_DURATION } from './format-duration.js';

/**
 * /assets/index.js: keeps the builds table current by fetching /api/builds
 * every few seconds and re-rendering the rows (same layout as page-index.ts).
 * Plain ES2017, no template literals (this file is one), and data only ever
 * goes into the page through textContent and attribute setters.
 */
export const INDEX_SCRIPT = String.raw`(function () {
  'use strict';
  var REFRESH_MS = 3000;
  var rows = document.getElementById('rows');
  var wrap = document.getElementById('table-wrap');
  var empty = document.getElementById('empty');
  var live = document.getElementById('live');
  if (!rows || !wrap || !empty) return;

  // Same rules as page-format.ts.
  ${FORMAT_DURATION}
  function formatAge(iso, now) {
    var s = Math.max(0, Math.floor((now - Date.parse(iso)) / 1000));
    if (s < 5) return 'just now';
    if (s < 60) return s + ' s ago';
    if (s < 3600) return Math.floor(s / 60) + ' min ago';
    if (s < 86400) return Math.floor(s / 3600) + ' h ago';
    return Math.floor(s / 86400) + ' d ago';
  }
  function safeUrl(url) {
    try {
      var parsed = new URL(url, location.href);
      return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : '#';
    } catch (e) {
      return '#';
    }
  }

  // el('a', { href: x, className: 'y' }, [children]): children are nodes or plain text.
  function el(tag, props, children) {
    var node = document.createElement(tag);
    Object.keys(props || {}).forEach(function (key) {
      if (key === 'className') node.className = props[key];
      else if (key === 'dataset') Object.keys(props.dataset).forEach(function (d) { node.dataset[d] = props.dataset[d]; });
      else node.setAttribute(key, props[key]);
    });
    (children || []).forEach(function (child) {
      node.appendChild(typeof child === 'string' ? document.createTextNode(child) : child);
    });
    return node;
  }

  function durationCell(b, now) {
    if (b.durationMs !== null) return el('td', { className: 'duration' }, [formatDuration(b.durationMs)]);
    if (b.state === 'running' && b.startedAt) {
      return el('td', { className: 'duration muted', dataset: { started: b.startedAt } }, ['running ' + formatDuration(Math.max(now - Date.parse(b.startedAt), 0))]);
    }
    return el('td', { className: 'duration muted' }, ['waiting']);
  }

  function tagsCell(b) {
    var children = [];
    if (b.service) children.push(el('span', { className: 'svc mono' }, [b.service]), ' ');
    if (b.pushed.length) {
      b.pushed.forEach(function (p) {
        children.push(el('code', { className: 'tag' }, [p.tag]), ' ');
      });
    } else {
      children.push(el('span', { className: 'muted' }, [b.image && b.version ? b.version : b.group === null && b.state === 'succeeded' && !b.image ? 'several images' : '—']));
    }
    return el('td', { className: 'tags' }, children);
  }

  function row(b, now) {
    var page = '/builds/' + b.id;
    var pr = b.pullRequest;
    return el('tr', { 'data-id': String(b.id) }, [
      el('td', {}, [el('a', { className: 'badge badge-' + b.state, href: page }, [b.state])]),
      el('td', { className: 'num' }, [el('a', { href: page }, ['#' + b.id])]),
      el('td', {}, [
        el('a', { className: 'repo', href: safeUrl(b.repository.url) }, [b.repository.fullName]),
        el('div', { className: 'sub mono' }, [b.branch]),
      ]),
      el('td', { className: 'pr' }, pr
        ? [el('a', { href: safeUrl(pr.url) }, ['#' + pr.number]), ' ', el('span', { className: 'pr-title' }, [pr.title])]
        : [el('span', { className: 'muted' }, [b.trigger])]),
      el('td', {}, [el('a', { className: 'mono sha', href: safeUrl(b.links.commit), title: b.sha }, [b.shortSha])]),
      tagsCell(b),
      durationCell(b, now),
      el('td', { className: 'age' }, [el('time', { datetime: b.createdAt, title: b.createdAt }, [formatAge(b.createdAt, now)])]),
    ]);
  }

  // Between changes only the clocks move; rebuilding rows would also drop a reader's text selection.
  function tick(now) {
    rows.querySelectorAll('time[datetime]').forEach(function (t) { t.textContent = formatAge(t.getAttribute('datetime'), now); });
    rows.querySelectorAll('td[data-started]').forEach(function (td) {
      td.textContent = 'running ' + formatDuration(Math.max(now - Date.parse(td.dataset.started), 0));
    });
  }

  var shown = null;
  function render(builds) {
    var now = Date.now();
    var json = JSON.stringify(builds);
    if (json !== shown) {
      shown = json;
      var fragment = document.createDocumentFragment();
      builds.forEach(function (b) { fragment.appendChild(row(b, now)); });
      rows.replaceChildren(fragment);
      wrap.hidden = builds.length === 0;
      empty.hidden = builds.length !== 0;
    }
    tick(now);
  }

  function status(ok) {
    if (!live) return;
    live.classList.toggle('offline', !ok);
    live.textContent = ok ? 'live' : 'offline, retrying';
  }

  var timer;
  function schedule() {
    clearTimeout(timer);
    timer = setTimeout(refresh, REFRESH_MS);
  }
  function refresh() {
    if (document.hidden) return schedule();
    fetch('/api/builds' + location.search, { headers: { accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(function (body) {
        render(body.builds);
        status(true);
      })
      .catch(function () { status(false); })
      .then(schedule);
  }
  document.addEventListener('visibilitychange', function () { if (!document.hidden) refresh(); });
  schedule();
})();
`;
