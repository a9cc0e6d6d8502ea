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

  it("finds the Docker CLI's config.json the way the CLI does: DOCKER_CONFIG, else ~/.docker", () => {
    assert.equal(loadConfig({ ...base, HOME: '/home/builder' }).dockerConfigFile, '/home/builder/.docker/config.json');
    assert.equal(loadConfig({ ...base, HOME: '/home/builder', DOCKER_CONFIG: '/etc/dockhook/docker' }).dockerConfigFile, '/etc/dockhook/docker/config.json');
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
    assert.throws(() => loadConfig({ ...base, REGISTRY_USERNAME: 'u' }), /REGISTRY_USERNAME and REGISTRY_PASSWORD \(or REGISTRY_PASSWORD_FILE\) must be set together/);
  });

  it('reads the deploy and artifact settings, refusing what cannot work, naming the variable', () => {
    const d = loadConfig(base);
    assert.deepEqual([d.deployImages, d.deployAllowBinds, d.deployEnvironment, d.artifactMaxBytes], [[], [], 'production', 1024 ** 3]);
    const c = loadConfig({ ...base, DEPLOY_IMAGES: 'api, web', DEPLOY_ALLOW_BINDS: '/srv/shared,/data', DEPLOY_DOCKER_HOST: 'tcp://deploy-host:2375', DEPLOY_ENVIRONMENT: 'staging', ARTIFACT_MAX_BYTES: '1048576' });
    assert.deepEqual([c.deployImages, c.deployAllowBinds, c.deployDockerHost, c.deployEnvironment, c.artifactMaxBytes], [['api', 'web'], ['/srv/shared', '/data'], 'tcp://deploy-host:2375', 'staging', 1048576]);
    assert.throws(() => loadConfig({ ...base, DEPLOY_ALLOW_BINDS: 'srv/shared' }), /DEPLOY_ALLOW_BINDS must be a comma-separated list of absolute host paths/);
    assert.throws(() => loadConfig({ ...base, DEPLOY_DOCKER_HOST: 'ssh://me@host' }), /DEPLOY_DOCKER_HOST must be unix:\/\/\/path\/to\/docker.sock or tcp:\/\/host:2375/);
    assert.throws(() => loadConfig({ ...base, ARTIFACT_MAX_BYTES: '0' }), /ARTIFACT_MAX_BYTES must be greater than 0/);
  });

  it('DATABASE_URL selects PostgreSQL; without it ROLE=all with SQLite, and a split role is refused', () => {
    const embedded = loadConfig(base);
    assert.equal(embedded.databaseUrl, undefined);
    assert.equal(embedded.role, 'all');
    assert.equal(embedded.leaseSeconds, 30);
    const shared = loadConfig({ ...base, DATABASE_URL: 'postgres://dh:pw@db:5432/dockhook', ROLE: 'worker', LEASE_SECONDS: '12', WORKER_NAME: 'builder-2' });
    assert.deepEqual([shared.databaseUrl, shared.role, shared.leaseSeconds, shared.workerName], ['postgres://dh:pw@db:5432/dockhook', 'worker', 12, 'builder-2']);
    for (const role of ['receiver', 'worker']) {
      assert.throws(() => loadConfig({ ...base, ROLE: role }), new RegExp(`ROLE=${role} needs DATABASE_URL`));
    }
    assert.throws(() => loadConfig({ ...base, ROLE: 'builder' }), /ROLE must be all, receiver or worker/);
    assert.throws(() => loadConfig({ ...base, DATABASE_URL: 'mysql://u:topsecret@h/db' }), (e: Error) => /DATABASE_URL must be postgres:/.test(e.message) && !e.message.includes('topsecret'));
    assert.throws(() => loadConfig({ ...base, LEASE_SECONDS: '0' }), /LEASE_SECONDS must be greater than 0/);
  });

  it('reads DATABASE_URL from DATABASE_URL_FILE, as the other secrets', () => {
    const c = loadConfig({ ...base, DATABASE_URL_FILE: '/run/secrets/db' }, () => 'postgresql://dh:pw@db/dockhook\n');
    assert.equal(c.databaseUrl, 'postgresql://dh:pw@db/dockhook');
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

  describe('NAME_FILE secrets', () => {
    const files: Record<string, string> = { '/run/secrets/registry': 'from-the-file\n', '/run/secrets/empty': '\n' };
    const readSecret = (path: string) => {
      if (path in files) return files[path];
      throw Object.assign(new Error(`ENOENT: no such file, open '${path}'`), { code: 'ENOENT' });
    };

    it('reads a secret from the file NAME_FILE names, without its final newline', () => {
      const c = loadConfig({ ...base, REGISTRY_USERNAME: 'dockhook', REGISTRY_PASSWORD_FILE: '/run/secrets/registry' }, readSecret);
      assert.deepEqual(c.registryAuth, { username: 'dockhook', password: 'from-the-file' });
      const { WEBHOOK_SECRET: _s, ...noSecret } = base;
      assert.equal(loadConfig({ ...noSecret, WEBHOOK_SECRET_FILE: '/run/secrets/registry' }, readSecret).webhookSecret, 'from-the-file');
    });

    it('reads a real file by default', async () => {
      const { mkdtemp, writeFile, rm } = await import('node:fs/promises');
      const { join } = await import('node:path');
      const { tmpdir } = await import('node:os');
      const dir = await mkdtemp(join(tmpdir(), 'dockhook-config-'));
      try {
        await writeFile(join(dir, 'password'), 'on-disk\n');
        const c = loadConfig({ ...base, REGISTRY_USERNAME: 'u', REGISTRY_PASSWORD_FILE: join(dir, 'password') });
        assert.equal(c.registryAuth?.password, 'on-disk');
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });

    it('names the variable and the path when the file is missing or empty, or both forms are set', () => {
      assert.throws(
        () => loadConfig({ ...base, REGISTRY_USERNAME: 'u', REGISTRY_PASSWORD_FILE: '/nope' }, readSecret),
        (e: Error) => e instanceof ConfigError && e.message.includes('REGISTRY_PASSWORD_FILE: cannot read /nope (ENOENT)') && !e.message.includes('must be set together'),
      );
      assert.throws(() => loadConfig({ ...base, API_TOKEN_FILE: '/run/secrets/empty' }, readSecret), /API_TOKEN_FILE: \/run\/secrets\/empty is empty/);
      assert.throws(
        () => loadConfig({ ...base, REGISTRY_USERNAME: 'u', REGISTRY_PASSWORD: 'p', REGISTRY_PASSWORD_FILE: '/run/secrets/registry' }, readSecret),
        /REGISTRY_PASSWORD and REGISTRY_PASSWORD_FILE are both set: keep one of them/,
      );
      // The file's problem and the other settings' problems come in one answer.
      assert.throws(
        () => loadConfig({ ...base, PORT: 'abc', REGISTRY_USERNAME: 'u', REGISTRY_PASSWORD_FILE: '/nope' }, readSecret),
        (e: Error) => /REGISTRY_PASSWORD_FILE/.test(e.message) && /PORT/.test(e.message),
      );
    });

    it('says a missing secret may come from a file', () => {
      const { GITHUB_TOKEN: _t, ...noToken } = base;
      assert.throws(() => loadConfig(noToken), /GITHUB_TOKEN is required but missing or empty \(or name a file holding it in GITHUB_TOKEN_FILE\)/);
    });

    it('never puts the file content in an error', () => {
      assert.throws(
        () => loadConfig({ ...base, PORT: 'abc', REGISTRY_USERNAME: 'u', REGISTRY_PASSWORD_FILE: '/run/secrets/registry' }, readSecret),
        (e: Error) => !e.message.includes('from-the-file'),
      );
    });
  });
});
