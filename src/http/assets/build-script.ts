import { FORMAT_DURATION } from './format-duration.js';

/**
 * /assets/build.js: the Copy buttons, and for a build that is not over yet the
 * live log (EventSource on /api/builds/:id/log, from the line the page already
 * shows) and its facts (polled from /api/builds/:id until the build ends).
 * Plain ES2017 without template literals; data reaches the page only through
 * textContent and attribute setters.
 */
export const BUILD_SCRIPT = String.raw`(function () {
  'use strict';
  var FACTS_MS = 3000;
  var root = document.getElementById('build');
  if (!root) return;
  var id = root.dataset.id;

  function byId(name) { return document.getElementById(name); }
  ${FORMAT_DURATION}
  function formatTime(iso) { return iso.slice(0, 10) + ' ' + iso.slice(11, 19) + ' UTC'; }
  function muted(text) {
    var span = document.createElement('span');
    span.className = 'muted';
    span.textContent = text;
    return span;
  }

  // ---- Copy: the clipboard API where the page is a secure context, else select the text for Ctrl+C.
  function flash(button, label) {
    button.textContent = label;
    setTimeout(function () { button.textContent = 'Copy'; }, 2000);
  }
  function selectText(code, button) {
    var range = document.createRange();
    range.selectNodeContents(code);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
    var copied = false;
    try { copied = document.execCommand('copy'); } catch (e) { copied = false; }
    flash(button, copied ? 'Copied' : 'Press Ctrl+C');
  }
  document.addEventListener('click', function (event) {
    var button = event.target instanceof Element ? event.target.closest('button.copy') : null;
    if (!button) return;
    var code = button.parentNode.querySelector('code');
    if (!code) return;
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(code.textContent).then(function () { flash(button, 'Copied'); }, function () { selectText(code, button); });
    } else {
      selectText(code, button);
    }
  });

  // ---- Facts, as /api/builds/:id says them.
  function setText(name, text) {
    var node = byId(name);
    if (node) node.textContent = text;
  }
  function setTime(name, iso) {
    var node = byId(name);
    if (!node) return;
    if (!iso) return node.replaceChildren(muted('—'));
    var time = document.createElement('time');
    time.setAttribute('datetime', iso);
    time.textContent = formatTime(iso);
    node.replaceChildren(time);
  }
  function pullItem(command, digest) {
    var li = document.createElement('li');
    var line = document.createElement('div');
    line.className = 'pull-line';
    var code = document.createElement('code');
    code.className = 'pull-cmd';
    code.textContent = command;
    var button = document.createElement('button');
    button.type = 'button';
    button.className = 'copy';
    button.textContent = 'Copy';
    line.appendChild(code);
    line.appendChild(button);
    var sum = document.createElement('div');
    sum.className = 'digest mono';
    sum.textContent = digest;
    li.appendChild(line);
    li.appendChild(sum);
    return li;
  }
  function showState(state) {
    var badge = byId('state');
    badge.textContent = state;
    badge.className = 'badge badge-' + state;
    root.dataset.state = state;
  }
  function updateFacts(b) {
    showState(b.state);
    setText('f-attempts', String(b.attempts));
    setText('f-latest', b.latest ? 'yes' : 'no');
    if (b.image) setText('f-image', b.image + ':' + (b.version || ''));
    setTime('f-started', b.startedAt);
    setTime('f-finished', b.finishedAt);
    if (b.durationMs !== null) setText('f-duration', formatDuration(b.durationMs));
    byId('failure').hidden = !b.failure;
    setText('failure-label', b.state === 'failed' ? 'Failed:' : 'Last attempt failed:');
    setText('failure-text', b.failure || '');
    var list = byId('pull-list');
    if (list.children.length !== b.pushed.length) {
      list.replaceChildren.apply(list, b.pushed.map(function (p, i) { return pullItem(b.pull[i], p.digest); }));
    }
    byId('pull').hidden = b.pushed.length === 0;
  }

  var over = function (state) { return state === 'succeeded' || state === 'failed'; };
  if (over(root.dataset.state)) return;

  var factsTimer;
  function refreshFacts() {
    clearTimeout(factsTimer);
    fetch('/api/builds/' + id, { headers: { accept: 'application/json' }, cache: 'no-store', credentials: 'same-origin' })
      .then(function (res) {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then(updateFacts)
      .catch(function () { /* the next poll tries again */ })
      .then(function () {
        if (!over(root.dataset.state)) factsTimer = setTimeout(refreshFacts, FACTS_MS);
      });
  }
  factsTimer = setTimeout(refreshFacts, FACTS_MS);

  // ---- The live log.
  var log = byId('log');
  var empty = byId('log-empty');
  var status = byId('log-status');
  var STAMP = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z) ([\s\S]*)$/;
  // Follow the tail while the reader is at the bottom; leave them alone once they scroll up.
  var stick = true;
  log.addEventListener('scroll', function () { stick = log.scrollTop + log.clientHeight >= log.scrollHeight - 24; });
  log.scrollTop = log.scrollHeight;

  function appendLine(raw) {
    var match = STAMP.exec(raw);
    var line = document.createElement('div');
    line.className = 'ln';
    if (match) {
      var ts = document.createElement('span');
      ts.className = 'ts';
      ts.title = match[1];
      ts.textContent = match[1].slice(11, 19);
      line.appendChild(ts);
    }
    var text = document.createElement('span');
    text.className = 'tx';
    text.textContent = match ? match[2] : raw;
    line.appendChild(text);
    log.appendChild(line);
    empty.hidden = true;
    if (stick) log.scrollTop = log.scrollHeight;
  }

  if (!window.EventSource) return;
  // after=: the lines the server already rendered. A reconnect also sends Last-Event-ID (= line number).
  var source = new EventSource('/api/builds/' + id + '/log?ansi=strip&after=' + (Number(root.dataset.lines) || 0));
  source.onopen = function () { status.textContent = 'following live…'; };
  source.onmessage = function (event) {
    if (root.dataset.state === 'queued') showState('running');
    appendLine(event.data);
  };
  source.addEventListener('end', function (event) {
    source.close();
    try { showState(JSON.parse(event.data).state); } catch (e) { /* the facts refresh says it */ }
    status.textContent = '';
    if (!log.children.length) empty.textContent = 'No output.';
    refreshFacts();
  });
  source.onerror = function () {
    status.textContent = source.readyState === EventSource.CLOSED ? 'disconnected; reload to follow' : 'reconnecting…';
  };
})();
`;
