import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import { loadPullCredentials, registryHostOf } from '../../src/engine/pull-credentials.js';
import { explainBuildFailure, syntaxDirective } from '../../src/pipeline/build-failure.js';

function capture() {
  const lines: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => lines.push(line) });
  return { log, lines };
}

const load = (file: string | Error, extra: Partial<Parameters<typeof loadPullCredentials>[0]> = {}) => {
  const { log, lines } = capture();
  const credentials = loadPullCredentials({
    registry: 'localhost:5000',
    dockerConfigFile: '/home/u/.docker/config.json',
    log,
    readFile: () => {
      if (file instanceof Error) throw file;
      return file;
    },
    ...extra,
  });
  return { credentials, lines };
};

describe('pull credentials from config.json', () => {
  it('reads every auths form docker login writes: base64 auth, username/password, identitytoken', () => {
    const { credentials } = load(
      JSON.stringify({
        auths: {
          'https://index.docker.io/v1/': { auth: Buffer.from('hubuser:hub:pass').toString('base64') },
          'ghcr.io': { username: 'gh', password: 'ghpass' },
          'https://registry.example.com:8443/v2/': { identitytoken: 'id-token-1' },
          'empty.example.com': {},
        },
      }),
    );
    // A password may hold a colon: only the first one separates.
    assert.deepEqual(credentials.forHost('registry-1.docker.io'), { username: 'hubuser', password: 'hub:pass' });
    assert.deepEqual(credentials.forHost('ghcr.io'), { username: 'gh', password: 'ghpass' });
    assert.deepEqual(credentials.forHost('registry.example.com:8443'), { identitytoken: 'id-token-1' });
    assert.equal(credentials.forHost('empty.example.com'), undefined);
    assert.equal(credentials.forHost('quay.io'), undefined);
    assert.deepEqual(credentials.registryConfig()['https://index.docker.io/v1/'], { username: 'hubuser', password: 'hub:pass', serveraddress: 'https://index.docker.io/v1/' });
    assert.deepEqual(credentials.registryConfig()['registry.example.com:8443'], { identitytoken: 'id-token-1', serveraddress: 'registry.example.com:8443' });
    assert.deepEqual(credentials.hosts(), ['docker.io', 'ghcr.io', 'registry.example.com:8443']);
  });

  it("uses dockhook's own login for REGISTRY, over config.json's", () => {
    const { credentials } = load(JSON.stringify({ auths: { 'localhost:5000': { username: 'old', password: 'old' } } }), { registryAuth: { username: 'dockhook', password: 'pw' } });
    assert.deepEqual(credentials.forHost('localhost:5000'), { username: 'dockhook', password: 'pw' });
    assert.deepEqual(credentials.secrets(), ['pw']);
  });

  it('is quiet about a missing file, and names a malformed one without quoting it', () => {
    const missing = load(Object.assign(new Error('nope'), { code: 'ENOENT' }));
    assert.deepEqual(missing.credentials.hosts(), []);
    assert.equal(missing.lines.length, 0);
    const broken = load('{"auths": {"x": {"auth": "c2VjcmV0OnMzY3IzdA=="}');
    assert.equal(broken.lines.length, 1);
    assert.match(broken.lines[0]!, /not valid JSON/);
    assert.ok(!broken.lines[0]!.includes('c2VjcmV0'), 'the file content reached the log');
  });

  it('says once that credential helpers are not run, and which registries lack credentials', () => {
    const { lines } = load(JSON.stringify({ credsStore: 'desktop', credHelpers: { 'gcr.io': 'gcloud' }, auths: { 'quay.io': {} } }));
    assert.equal(lines.length, 1);
    const entry = JSON.parse(lines[0]!);
    assert.match(entry.msg, /does not run/);
    assert.deepEqual(entry.registriesWithoutCredentials.sort(), ['gcr.io', 'quay.io']);
  });

  it('reduces config.json keys to hosts', () => {
    assert.equal(registryHostOf('https://GHCR.io/v1/'), 'ghcr.io');
    assert.equal(registryHostOf('http://127.0.0.1:5000'), '127.0.0.1:5000');
    assert.equal(registryHostOf('index.docker.io'), 'docker.io');
  });
});

describe('build failures that say what to do', () => {
  const { credentials } = load(JSON.stringify({ auths: {} }), { registryAuth: { username: 'u', password: 'p' } });
  const context = { credentials, buildArgs: {}, registry: 'localhost:5000' };

  it('finds the # syntax= directive only where directives may be', () => {
    assert.equal(syntaxDirective('# syntax=docker/dockerfile:1\nFROM x\n'), 'docker/dockerfile:1');
    assert.equal(syntaxDirective('\uFEFF# escape=`\n#syntax = docker/dockerfile:1.7\nFROM x\n'), 'docker/dockerfile:1.7');
    assert.equal(syntaxDirective('FROM x\n# syntax=docker/dockerfile:1\n'), undefined);
    assert.equal(syntaxDirective('# a comment\n# syntax=docker/dockerfile:1\n'), undefined);
  });

  it('names a private registry that refused a pull, and where credentials come from', () => {
    const message = explainBuildFailure('pulling from host 10.0.0.9:5000 failed with status code [manifests 1]: 401 Unauthorized', context);
    assert.match(message ?? '', /could not pull a base image from 10\.0\.0\.9:5000/);
    assert.match(message ?? '', /DOCKER_CONFIG/);
    const refused = explainBuildFailure('Head "http://localhost:5000/v2/base/manifests/1": unauthorized: authentication required', context);
    assert.match(refused ?? '', /credentials dockhook holds for localhost:5000 were refused/);
    assert.equal(explainBuildFailure('RUN make: exit code 2', context), undefined);
  });
});
