import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.js';

const base = { WEBHOOK_SECRET: 's3cret', GITHUB_TOKEN: 'ghp_x', REGISTRY: 'localhost:5000' };

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const c = loadConfig(base);
    assert.equal(c.port, 3000);
    assert.equal(c.dataDir, './data');
    assert.equal(c.githubApiUrl, 'https://api.github.com');
    assert.equal(c.logLevel, 'info');
    assert.equal(c.registryUrl, 'http://localhost:5000');
    assert.equal(c.buildConcurrency, 2);
    assert.equal(c.buildTimeoutSeconds, 1800);
    assert.equal(c.shutdownGraceSeconds, 60);
    assert.equal(c.retryWindowSeconds, 300);
    assert.deepEqual(c.buildBranches, []);
    assert.equal(c.registryAuth, undefined);
  });

  it('names each missing or empty required variable', () => {
    for (const name of ['WEBHOOK_SECRET', 'GITHUB_TOKEN', 'REGISTRY']) {
      assert.throws(() => loadConfig({ ...base, [name]: undefined }), (e: Error) => e instanceof ConfigError && e.message.includes(`${name} is required`));
      assert.throws(() => loadConfig({ ...base, [name]: '' }), (e: Error) => e instanceof ConfigError && e.message.includes(`${name} is required`));
    }
  });

  it('rejects bad values naming the variable', () => {
    assert.throws(() => loadConfig({ ...base, REGISTRY: 'http://localhost:5000' }), /REGISTRY must be host\[:port\]/);
    assert.throws(() => loadConfig({ ...base, PORT: 'abc' }), /PORT/);
    assert.throws(() => loadConfig({ ...base, BUILD_CONCURRENCY: '0' }), /BUILD_CONCURRENCY must be greater than 0/);
    assert.throws(() => loadConfig({ ...base, PUBLIC_URL: 'not a url' }), /PUBLIC_URL/);
    assert.throws(() => loadConfig({ ...base, REGISTRY_USERNAME: 'u' }), /REGISTRY_USERNAME and REGISTRY_PASSWORD must be set together/);
  });

  it('reads lists and a remote registry over https', () => {
    const c = loadConfig({ ...base, BUILD_BRANCHES: 'main, release/*', REGISTRY: 'registry.example.com', REGISTRY_USERNAME: 'u', REGISTRY_PASSWORD: 'p', PUBLIC_URL: 'https://x.ngrok.app/' });
    assert.deepEqual(c.buildBranches, ['main', 'release/*']);
    assert.equal(c.registryUrl, 'https://registry.example.com');
    assert.deepEqual(c.registryAuth, { username: 'u', password: 'p' });
    assert.equal(c.publicUrl, 'https://x.ngrok.app');
  });

  it('never echoes a secret value in its error', () => {
    try {
      loadConfig({ ...base, PORT: 'hunter2-secret', WEBHOOK_SECRET: 'topsecretvalue' });
      assert.fail('should throw');
    } catch (err) {
      assert.doesNotMatch((err as Error).message, /topsecretvalue/);
    }
  });
});
