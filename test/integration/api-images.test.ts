import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { pino } from 'pino';
import { FileBuildLogs } from '../../src/logs/file-logs.js';
import { loadConfig } from '../../src/config.js';
import { createGitHubAccess } from '../../src/github/access.js';
import { createApp } from '../../src/http/app.js';
import { createMetrics } from '../../src/metrics.js';
import { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { createRegistryClient, type RegistryClientOptions } from '../../src/registry/client.js';
import { docker, dockerFails } from '../support/harness.js';
import { pushTestImage, pushTestManifestList, startRegistry, type TestRegistry } from '../support/registry-server.js';

/**
 * /api/images and DELETE …/tags/… against real registry 2.8 processes, through
 * dockhook's real app. The app is built here rather than with the harness so
 * each case can pick its registry client (a small page size, credentials, a
 * fetch that records what reached the registry) and its API settings.
 */

const TOKEN = 'api-token-for-tests-0123';
const WRITE = { authorization: `Bearer ${TOKEN}` };
const REVISION = 'c0ffee0123456789abcdef0123456789abcdef01';
const CREATED = '2026-03-01T10:00:00Z';

interface Api {
  url: string;
  /** Every URL dockhook asked the registry for. */
  registryUrls: string[];
  close(): Promise<void>;
}

async function startApi(
  reg: TestRegistry,
  env: Record<string, string> = {},
  client: Partial<RegistryClientOptions> = {},
): Promise<Api> {
  const dataDir = await mkdtemp(join(tmpdir(), 'dockhook-api-images-'));
  const config = loadConfig({ WEBHOOK_SECRET: 's', GITHUB_TOKEN: 'ghp_unused', REGISTRY: reg.host, DATA_DIR: dataDir, ...env });
  const registryUrls: string[] = [];
  const recording: typeof fetch = (input, init) => {
    registryUrls.push(String(input instanceof Request ? input.url : input));
    return fetch(input, init);
  };
  const log = pino({ level: 'silent' });
  const store = new SqliteStore(dataDir);
  const app = createApp({
    config,
    store,
    logs: new FileBuildLogs(dataDir),
    docker: new Docker(),
    registry: createRegistryClient({ url: config.registryUrl, auth: config.registryAuth, fetch: recording, ...client }),
    // Never reached by these routes: a closed port makes any call fail loudly.
    github: createGitHubAccess({ auth: { mode: 'token', token: 'ghp_unused' }, baseUrl: 'http://127.0.0.1:9', log }),
    log,
    metrics: createMetrics(),
    onQueued: () => {},
    isStopping: () => false,
  });
  const server: Server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    registryUrls,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await store.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The path sent byte for byte: fetch would resolve `..` and `%2E%2E` segments before they ever left the client. */
function rawCall(api: Api, method: string, path: string, headers: Record<string, string> = {}): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const req = request(api.url + '/', { method, path, headers }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text || '{}') }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function call(api: Api, method: string, path: string, headers: Record<string, string> = {}, body?: unknown) {
  const res = await fetch(api.url + path, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  let json: any;
  try {
    json = JSON.parse(text);
  } catch {
    json = { raw: text };
  }
  return { status: res.status, body: json };
}

/** Another tag for an existing manifest, byte for byte: same digest, as `docker tag` + push would give. */
async function retag(reg: TestRegistry, name: string, from: string, to: string): Promise<void> {
  const type = 'application/vnd.docker.distribution.manifest.v2+json';
  const got = await fetch(`${reg.url}/v2/${name}/manifests/${from}`, { headers: { accept: type } });
  assert.equal(got.status, 200);
  const put = await fetch(`${reg.url}/v2/${name}/manifests/${to}`, { method: 'PUT', headers: { 'content-type': type }, body: Buffer.from(await got.arrayBuffer()) });
  assert.equal(put.status, 201, await put.text());
}

describe('GET /api/images and DELETE /api/images/<name>/tags/<tag>', () => {
  let reg: TestRegistry;
  let api: Api;
  const digests: Record<string, string> = {};

  before(async () => {
    reg = await startRegistry();
    const labels = { 'org.opencontainers.image.revision': REVISION, 'org.opencontainers.image.created': CREATED, 'org.opencontainers.image.version': '1.0.0' };
    digests['team/api:1.0.0'] = await pushTestImage(reg.host, 'team/api', '1.0.0', { labels });
    digests['team/api:1.0.1'] = await pushTestImage(reg.host, 'team/api', '1.0.1', {
      labels: { ...labels, 'org.opencontainers.image.version': '1.0.1', 'org.opencontainers.image.created': '2026-03-02T10:00:00Z' },
    });
    await retag(reg, 'team/api', '1.0.1', '1.0.1-alias');
    await retag(reg, 'team/api', '1.0.1', 'sha-c0ffee0');
    digests['plain:v1'] = await pushTestImage(reg.host, 'plain', 'v1');
    await pushTestImage(reg.host, 'multi', 'arm64', { labels: { 'org.opencontainers.image.revision': 'arm' } });
    await pushTestImage(reg.host, 'multi', 'amd64', { labels: { 'org.opencontainers.image.revision': 'amd', 'org.opencontainers.image.created': CREATED } });
    digests['multi:2.0'] = await pushTestManifestList(reg.url, 'multi', '2.0', [
      { reference: 'amd64', platform: { os: 'linux', architecture: 'amd64' } },
      { reference: 'arm64', platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ]);
    // Page size 2: the five repositories take three catalog pages.
    api = await startApi(reg, { API_TOKEN: TOKEN }, { pageSize: 2 });
  });
  after(async () => {
    await api?.close();
    await reg?.close();
  });

  it('lists every repository (across catalog pages) with each tag: digest, created and revision from the labels, pull line', async () => {
    const { status, body } = await call(api, 'GET', '/api/images');
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.registry, reg.host);
    assert.deepEqual(
      body.images.map((i: any) => i.name),
      ['multi', 'plain', 'team/api'],
    );
    assert.ok(api.registryUrls.some((u) => /_catalog\?last=.*&n=2$/.test(u)), 'followed the catalog Link header');

    const teamApi = body.images.find((i: any) => i.name === 'team/api');
    assert.deepEqual(teamApi.tags.map((t: any) => t.tag), ['1.0.0', '1.0.1', '1.0.1-alias', 'sha-c0ffee0']);
    const v100 = teamApi.tags[0];
    assert.equal(v100.digest, digests['team/api:1.0.0']);
    assert.equal(v100.created, CREATED, 'the org.opencontainers.image.created label, not the config time');
    assert.equal(v100.revision, REVISION);
    assert.equal(v100.version, '1.0.0');
    assert.equal(v100.pull, `docker pull ${reg.host}/team/api:1.0.0`);
    assert.equal(teamApi.tags[2].digest, digests['team/api:1.0.1']);
  });

  it('a plain image without labels: digest and the config created time, no revision', async () => {
    const { body } = await call(api, 'GET', '/api/images/plain');
    assert.equal(body.name, 'plain');
    const [v1] = body.tags;
    assert.equal(v1.digest, digests['plain:v1']);
    assert.equal(v1.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(v1.revision, undefined);
    assert.ok(Math.abs(Date.parse(v1.created) - Date.now()) < 10 * 60_000, `created ${v1.created}`);
  });

  it('a multi-platform image: the list digest and its platforms, labels from linux/amd64', async () => {
    const { status, body } = await call(api, 'GET', '/api/images/multi');
    assert.equal(status, 200);
    const list = body.tags.find((t: any) => t.tag === '2.0');
    assert.equal(list.digest, digests['multi:2.0']);
    assert.equal(list.mediaType, 'application/vnd.docker.distribution.manifest.list.v2+json');
    assert.deepEqual(list.platforms, ['linux/amd64', 'linux/arm64/v8']);
    assert.equal(list.revision, 'amd');
    assert.equal(list.created, CREATED);
    assert.equal(list.pull, `docker pull ${reg.host}/multi:2.0`);
  });

  it('one repository whose name has a slash', async () => {
    const { status, body } = await call(api, 'GET', '/api/images/team/api');
    assert.equal(status, 200);
    assert.equal(body.name, 'team/api');
    assert.equal(body.tags.length, 4);
  });

  it('an unknown repository: 404', async () => {
    const { status, body } = await call(api, 'GET', '/api/images/no/such-image');
    assert.equal(status, 404);
    assert.match(body.error, /no image no\/such-image/);
  });

  it('malformed names and tags: 400, and nothing reaches the registry', async () => {
    const before = api.registryUrls.length;
    const cases: Array<[string, string, RegExp]> = [
      ['GET', '/api/images/Team/API', /invalid repository name/],
      ['GET', '/api/images/a..b', /invalid repository name/],
      ['GET', '/api/images/team/%2E%2E/api', /invalid repository name/],
      ['GET', '/api/images/team/../api', /invalid repository name/],
      ['DELETE', '/api/images/team/api/tags/..', /invalid tag/],
      ['GET', '/api/images/team%3Fx=1', /invalid repository name/],
      ['GET', '/api/images/team/-api', /invalid repository name/],
      ['GET', `/api/images/${'a'.repeat(256)}`, /invalid repository name/],
      ['GET', '/api/images/%E0%A4%A', /percent-encoding/],
      ['DELETE', '/api/images/team/api/tags/-bad', /invalid tag/],
      ['DELETE', '/api/images/team/api/tags/.hidden', /invalid tag/],
      ['DELETE', `/api/images/team/api/tags/${'x'.repeat(129)}`, /invalid tag/],
      ['DELETE', '/api/images/team/api/tags/a%3Ab', /invalid tag/],
      ['DELETE', '/api/images/Team/tags/v1', /invalid repository name/],
    ];
    for (const [method, path, error] of cases) {
      const { status, body } = await rawCall(api, method, path, WRITE);
      assert.equal(status, 400, `${method} ${path}: ${JSON.stringify(body)}`);
      assert.match(body.error, error, path);
    }
    assert.deepEqual(api.registryUrls.slice(before), []);
  });

  it('DELETE needs the API token: none or a wrong one is 401, and the tag stays', async () => {
    assert.equal((await call(api, 'DELETE', '/api/images/plain/tags/v1')).status, 401);
    const wrong = await call(api, 'DELETE', '/api/images/plain/tags/v1', { authorization: 'Bearer nope' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.body.error, 'wrong API token');
    assert.equal((await call(api, 'GET', '/api/images/plain')).body.tags.length, 1);
  });

  it('DELETE an unknown tag: 404', async () => {
    const { status, body } = await call(api, 'DELETE', '/api/images/team/api/tags/9.9.9', WRITE);
    assert.equal(status, 404);
    assert.match(body.error, /team\/api:9\.9\.9 not found/);
    assert.equal((await call(api, 'DELETE', '/api/images/no/such/tags/v1', WRITE)).status, 404);
  });

  it('DELETE a tag: gone by its manifest digest, with the other tags of that digest, and docker pull fails', async () => {
    const { status, body } = await call(api, 'DELETE', '/api/images/team/api/tags/1.0.1', WRITE);
    assert.equal(status, 200, JSON.stringify(body));
    assert.equal(body.deleted, 'team/api:1.0.1');
    assert.equal(body.digest, digests['team/api:1.0.1']);
    assert.deepEqual(body.alsoRemoved, ['1.0.1-alias', 'sha-c0ffee0']);
    assert.match(body.note, /garbage-collect/);

    const left = await call(api, 'GET', '/api/images/team/api');
    assert.deepEqual(left.body.tags.map((t: any) => t.tag), ['1.0.0']);
    const ref = `${reg.host}/team/api:1.0.1`;
    await docker('rmi', ref).catch(() => ''); // pushTestImage removed it already; be sure no local copy answers the pull
    assert.match(await dockerFails('pull', ref), /manifest unknown|not found/i);
    await docker('pull', `${reg.host}/team/api:1.0.0`);
    await docker('rmi', `${reg.host}/team/api:1.0.0`);
  });
});

describe('DELETE with deletion disabled on the registry', () => {
  let reg: TestRegistry;
  let api: Api;
  before(async () => {
    reg = await startRegistry({ deleteEnabled: false });
    await pushTestImage(reg.host, 'app', 'v1');
    api = await startApi(reg, { API_TOKEN: TOKEN });
  });
  after(async () => {
    await api?.close();
    await reg?.close();
  });

  it('409 with the registry\'s reason and the setting that enables it; the tag stays', async () => {
    const { status, body } = await call(api, 'DELETE', '/api/images/app/tags/v1', WRITE);
    assert.equal(status, 409, JSON.stringify(body));
    assert.match(body.error, /deletion disabled/);
    assert.match(`${body.error} ${body.hint}`, /REGISTRY_STORAGE_DELETE_ENABLED=true/);
    assert.deepEqual((await call(api, 'GET', '/api/images/app')).body.tags.map((t: any) => t.tag), ['v1']);
  });
});

describe('registry with htpasswd auth', () => {
  const auth = { username: 'dockhook', password: 'right-password' };
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry({ auth });
    await pushTestImage(reg.host, 'secured/app', 'v1', { auth });
  });
  after(() => reg?.close());

  it('the right credentials: the 401 challenge is answered and the images are listed', async () => {
    const api = await startApi(reg, { REGISTRY_USERNAME: auth.username, REGISTRY_PASSWORD: auth.password });
    try {
      const { status, body } = await call(api, 'GET', '/api/images');
      assert.equal(status, 200, JSON.stringify(body));
      assert.deepEqual(body.images.map((i: any) => `${i.name}:${i.tags.map((t: any) => t.tag)}`), ['secured/app:v1']);
    } finally {
      await api.close();
    }
  });

  it('a wrong password: 502 naming REGISTRY_PASSWORD (dockhook\'s credentials, not the caller\'s token)', async () => {
    const api = await startApi(reg, { REGISTRY_USERNAME: auth.username, REGISTRY_PASSWORD: 'wrong', API_TOKEN: TOKEN });
    try {
      for (const [method, path] of [['GET', '/api/images'], ['GET', '/api/images/secured/app'], ['DELETE', '/api/images/secured/app/tags/v1']]) {
        const { status, body } = await call(api, method!, path!, WRITE);
        assert.equal(status, 502, `${method} ${path}: ${JSON.stringify(body)}`);
        assert.match(body.error, /REGISTRY_PASSWORD/);
        assert.ok(body.hint, 'says what to check');
      }
    } finally {
      await api.close();
    }
  });

  it('no credentials configured: 502 saying which settings to set', async () => {
    const api = await startApi(reg);
    try {
      const { status, body } = await call(api, 'GET', '/api/images');
      assert.equal(status, 502);
      assert.match(body.error, /set REGISTRY_USERNAME and REGISTRY_PASSWORD/);
    } finally {
      await api.close();
    }
  });
});

describe('registry down', () => {
  it('502 with the reason and what to check', async () => {
    const reg = await startRegistry();
    const api = await startApi(reg);
    try {
      await reg.stop();
      const { status, body } = await call(api, 'GET', '/api/images');
      assert.equal(status, 502);
      assert.match(body.error, /registry unreachable at/);
      assert.match(body.hint, /registry is running/);
    } finally {
      await api.close();
      await reg.close();
    }
  });
});

describe('API tokens on the image and trigger routes', () => {
  let reg: TestRegistry;
  before(async () => {
    reg = await startRegistry();
    await pushTestImage(reg.host, 'tok', 'v1');
  });
  after(() => reg?.close());

  it('API_TOKEN unset: writes answer 403 "write API disabled"; reads are open', async () => {
    const api = await startApi(reg);
    try {
      for (const [method, path, body] of [
        ['DELETE', '/api/images/tok/tags/v1', undefined],
        ['POST', '/api/builds', { repo: 'o/r', ref: 'main' }],
      ] as const) {
        const res = await call(api, method, path, WRITE, body);
        assert.equal(res.status, 403, `${method} ${path}`);
        assert.equal(res.body.error, 'write API disabled');
        assert.match(res.body.hint, /API_TOKEN/);
      }
      assert.equal((await call(api, 'GET', '/api/images')).status, 200);
      assert.equal((await call(api, 'GET', '/api/images/tok')).status, 200);
      assert.deepEqual((await call(api, 'GET', '/api/images/tok')).body.tags.map((t: any) => t.tag), ['v1']);
    } finally {
      await api.close();
    }
  });

  it('API_TOKEN_READS=true: reads need the token too', async () => {
    const api = await startApi(reg, { API_TOKEN: TOKEN, API_TOKEN_READS: 'true' });
    try {
      for (const path of ['/api/images', '/api/images/tok']) {
        assert.equal((await call(api, 'GET', path)).status, 401, path);
        assert.equal((await call(api, 'GET', path, { authorization: 'Bearer wrong' })).status, 401, path);
        assert.equal((await call(api, 'GET', path, WRITE)).status, 200, path);
      }
    } finally {
      await api.close();
    }
  });

  it('POST /api/builds without or with a wrong token: 401 before the body is looked at', async () => {
    const api = await startApi(reg, { API_TOKEN: TOKEN });
    try {
      assert.equal((await call(api, 'POST', '/api/builds', {}, { repo: 'o/r', ref: 'main' })).status, 401);
      assert.equal((await call(api, 'POST', '/api/builds', { authorization: 'Bearer nope' }, 'not even an object')).status, 401);
    } finally {
      await api.close();
    }
  });
});
