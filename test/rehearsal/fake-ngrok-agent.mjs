#!/usr/bin/env node
// TEST STAND-IN, NOT NGROK. Baked into the local `ngrok/ngrok:latest` stand-in image
// (test/rehearsal/stand-in-images.sh) so docker-compose.yml runs without Docker Hub or
// an ngrok account. It takes the real agent's `start --all --config FILE`, refuses an
// empty NGROK_AUTHTOKEN, and serves on the config's web_addr:
//   GET /api/tunnels[/NAME]  the agent API's tunnel list; public_url is $FAKE_NGROK_PUBLIC_URL, else
//                            the endpoint's `url:`, else http://localhost:4040
//   anything else            forwarded, streamed both ways, to the first endpoint's upstream
// so the host reaches dockhook "through the tunnel" at the published 127.0.0.1:4040.
// Nothing is public: there is no ngrok cloud, TLS, inspector UI or websocket upgrade.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import { pipeline } from 'node:stream';

const fail = (...lines) => { for (const l of lines) process.stderr.write(`ERROR:  ${l}\n`); process.exit(1); };
const log = (msg, fields = {}) => console.log([`t=${new Date().toISOString()} lvl=info msg="${msg}"`,
  ...Object.entries(fields).map(([k, v]) => `${k}=${v}`)].join(' '));

// The YAML subset agent configs use: nested maps by indentation, lists of maps, scalars, comments.
function parseYaml(text) {
  const root = {};
  const stack = [{ indent: -1, node: root }];
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.replace(/(^|\s)#.*$/, '').trimEnd();
    if (!line.trim()) continue;
    let indent = line.search(/\S/), body = line.slice(indent);
    const dash = body.startsWith('- ');
    for (let top = stack.at(-1); indent < top.indent || (indent === top.indent && !(dash && (top.list || top.pending))); top = stack.at(-1)) stack.pop();
    const top = stack.at(-1);
    if (top.pending) Object.assign(top, { pending: false, list: dash, node: (top.owner[top.key] = dash ? [] : {}) });
    let owner = top.node;
    if (dash) { owner = {}; top.node.push(owner); stack.push({ indent, node: owner }); indent += 2; body = body.slice(2); }
    const m = /^([^:]+):(?:\s+(.*))?$/.exec(body);
    if (!m) fail(`fake ngrok: cannot parse config line: ${raw.trim()}`);
    if (m[2]) owner[m[1].trim()] = m[2].trim().replace(/^(["'])(.*)\1$/, '$2');
    else { owner[m[1].trim()] = null; stack.push({ indent, owner, key: m[1].trim(), pending: true }); }
  }
  return root;
}

// Arguments as the real binary takes them: start (--all | NAME...) [--config FILE[,FILE]]...
const [command, ...args] = process.argv.slice(2);
if (command === 'version' || command === '--version') { console.log('ngrok version 3 (dockhook test stand-in)'); process.exit(0); }
if (command !== 'start') fail(`fake ngrok (a test stand-in) only implements: ngrok start --all --config FILE; got: ${command ?? '(nothing)'}`);
const configFiles = [], names = [];
let all = false;
for (let i = 0; i < args.length; i++) {
  const [flag, inline] = args[i].split(/=(.*)/s);
  if (flag === '--all') all = true;
  else if (flag === '--config') configFiles.push(...(inline ?? args[++i] ?? '').split(','));
  else if (flag.startsWith('--')) { if (inline === undefined && args[i + 1] && !args[i + 1].startsWith('-')) i++; } // --log stdout etc.: ignored
  else names.push(flag);
}
const config = { agent: {} };
for (const file of configFiles) {
  let text;
  try { text = readFileSync(file, 'utf8'); } catch (err) { fail(`open ${file}: ${err.code === 'ENOENT' ? 'no such file or directory' : err.message}`); }
  const c = parseYaml(text);
  Object.assign(config, c, { agent: { ...config.agent, ...c.agent } });
}

const authtoken = process.env.NGROK_AUTHTOKEN || config.agent.authtoken || config.authtoken;
if (!authtoken) fail('authentication failed: Usage of ngrok requires a verified account and authtoken.', '',
  'Sign up for an account: https://dashboard.ngrok.com/signup', 'Install your authtoken: https://dashboard.ngrok.com/get-started/your-authtoken',
  '', 'ERR_NGROK_4018', 'https://ngrok.com/docs/errors/err_ngrok_4018', '(this is the dockhook test stand-in, not ngrok: any non-empty token is accepted)');

// v3 `endpoints:` (upstream.url) and the older `tunnels:` (addr); "3000" and "host:3000" mean http://.
const toUrl = (addr) => (/^\d+$/.test(addr) ? `http://localhost:${addr}` : /^[a-z]+:\/\//i.test(addr) ? addr : `http://${addr}`);
const defined = [
  ...(Array.isArray(config.endpoints) ? config.endpoints : []).map((e) => ({ name: e.name, addr: e.upstream?.url, url: e.url })),
  ...Object.entries(config.tunnels ?? {}).map(([name, t]) => ({ name, addr: t?.addr })),
].filter((e) => e.name && e.addr).map((e) => ({ ...e, addr: toUrl(String(e.addr)) }));
const started = all ? defined : defined.filter((e) => names.includes(e.name));
if (started.length === 0) fail(all ? 'no endpoints defined in the configuration' : 'Specify the names of endpoints to start or use --all');

const zero = { count: 0, rate1: 0, rate5: 0, rate15: 0, p50: 0, p90: 0, p95: 0, p99: 0 };
const tunnels = started.map((e) => {
  const publicUrl = (process.env.FAKE_NGROK_PUBLIC_URL || e.url || 'http://localhost:4040').replace(/\/+$/, '');
  return { name: e.name, ID: randomBytes(16).toString('hex'), uri: `/api/tunnels/${encodeURIComponent(e.name)}`,
    public_url: publicUrl, proto: new URL(publicUrl).protocol.slice(0, -1), config: { addr: e.addr, inspect: true },
    metrics: { conns: { ...zero, gauge: 0 }, http: { ...zero } } };
});
const upstream = new URL(started[0].addr);
const agent = new http.Agent({ keepAlive: true });
const HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'transfer-encoding', 'te', 'trailer', 'upgrade']);
const pass = (headers) => Object.fromEntries(Object.entries(headers).filter(([k]) => !HOP.has(k)));
const json = (res, status, body) => res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(body));

const server = http.createServer((req, res) => {
  const path = req.url.split('?')[0].replace(/\/+$/, '');
  if (path === '/api/tunnels' || path.startsWith('/api/tunnels/')) {
    if (req.method !== 'GET') return json(res, 405, { status_code: 405, msg: 'the test stand-in only lists tunnels' });
    if (path === '/api/tunnels') return json(res, 200, { tunnels, uri: '/api/tunnels' });
    const t = tunnels.find((x) => x.uri === path);
    return t ? json(res, 200, t) : json(res, 404, { error_code: 100, status_code: 404, msg: 'Tunnel not found', details: {} });
  }
  tunnels[0].metrics.http.count++;
  tunnels[0].metrics.conns.count++;
  // Like ngrok: the Host header stays the client's, X-Forwarded-* say where the request came from.
  const headers = { ...pass(req.headers), 'x-forwarded-for': req.socket.remoteAddress ?? '',
    'x-forwarded-host': req.headers.host ?? '', 'x-forwarded-proto': tunnels[0].proto };
  const options = { host: upstream.hostname, port: upstream.port || 80, path: req.url, method: req.method, headers, agent };
  const out = http.request(options, (up) => {
    res.writeHead(up.statusCode, up.statusMessage, pass(up.headers));
    res.flushHeaders(); // server-sent events: the headers go out before the first event does
    pipeline(up, res, () => {});
  });
  out.on('error', (err) => {
    if (res.headersSent) return res.destroy();
    res.writeHead(502, { 'content-type': 'text/plain' })
      .end(`ERR_NGROK_8012 (test stand-in): the upstream ${upstream.origin} failed: ${err.code ?? err.message}\n`);
  });
  res.on('close', () => { if (!res.writableFinished) out.destroy(); }); // the client left (e.g. closed an event stream)
  req.pipe(out);
});
server.requestTimeout = 0; // long uploads and event streams are not cut off

const webAddr = String(config.agent.web_addr ?? config.web_addr ?? '127.0.0.1:4040');
const [, host, port] = /^(?:(.*):)?(\d+)$/.exec(webAddr) ?? fail(`web_addr must be host:port, got ${webAddr}`);
server.listen(Number(port), host || '127.0.0.1', () => {
  log('starting web service', { obj: 'web', addr: webAddr });
  for (const t of tunnels) log('started tunnel', { obj: 'tunnels', name: t.name, addr: t.config.addr, url: t.public_url });
});
server.on('error', (err) => fail(`web service: ${err.message}`));
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, () => process.exit(0));
