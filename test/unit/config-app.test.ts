import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { describe, it } from 'node:test';
import { ConfigError, loadConfig } from '../../src/config.js';

const pem = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
const base = { WEBHOOK_SECRET: 's3cret', REGISTRY: 'localhost:5000' };
const app = { ...base, APP_ID: '123456', PRIVATE_KEY: pem };
const fails = (env: Record<string, string | undefined>, text: RegExp, readSecret?: (p: string) => string) =>
  assert.throws(() => loadConfig(env, readSecret), (e: Error) => e instanceof ConfigError && text.test(e.message) && !e.message.includes('PRIVATE KEY-----\n'));

describe('loadConfig: GitHub App mode', () => {
  it('token mode stays the default', () => {
    const c = loadConfig({ ...base, GITHUB_TOKEN: 'ghp_x' });
    assert.deepEqual(c.github, { mode: 'token', token: 'ghp_x' });
    assert.equal(c.prComment, false);
    assert.equal(c.triggerPush, false);
    assert.equal(c.recoverDeliveriesMinutes, 10);
  });

  it('reads the key as a PEM, a PEM with \\n escapes, base64, or a file', () => {
    for (const key of [pem, pem.trim().replace(/\n/g, '\\n'), Buffer.from(pem).toString('base64')]) {
      const c = loadConfig({ ...app, PRIVATE_KEY: key });
      assert.equal(c.github.mode, 'app');
      if (c.github.mode === 'app') {
        assert.equal(c.github.appId, 123456);
        assert.equal(c.github.privateKey.trim(), pem.trim());
      }
    }
    const c = loadConfig({ ...base, APP_ID: '7', PRIVATE_KEY_FILE: '/run/secrets/app.pem' }, (p) => (p === '/run/secrets/app.pem' ? pem : ''));
    assert.equal(c.github.mode, 'app');
  });

  it('refuses both modes at once, naming both variables', () => {
    fails({ ...app, GITHUB_TOKEN: 'ghp_x' }, /GITHUB_TOKEN and APP_ID are both set/);
  });

  it('refuses half an App, a bad key and WEBHOOK_REPOS, saying what to do, without printing the key', () => {
    fails({ ...base, APP_ID: '1' }, /PRIVATE_KEY \(or PRIVATE_KEY_FILE\) is required with APP_ID/);
    fails({ ...base, PRIVATE_KEY: pem }, /APP_ID is required with PRIVATE_KEY/);
    fails({ ...app, APP_ID: 'my-app' }, /APP_ID must be the App's numeric ID/);
    fails({ ...app, PRIVATE_KEY: 'not a key' }, /PRIVATE_KEY is not a PEM private key/);
    fails({ ...app, PRIVATE_KEY: pem.slice(0, 200) + '\n-----END RSA PRIVATE KEY-----\n' }, /PRIVATE_KEY cannot be read as a private key/);
    fails({ ...app, WEBHOOK_REPOS: 'acme/widget' }, /WEBHOOK_REPOS cannot be used with a GitHub App/);
    fails({ ...base }, /GITHUB_TOKEN is required.*APP_ID and PRIVATE_KEY instead/);
  });

  it('reads PR_COMMENT, TRIGGER_PUSH and RECOVER_DELIVERIES_MINUTES', () => {
    const c = loadConfig({ ...app, PR_COMMENT: 'true', TRIGGER_PUSH: 'yes', RECOVER_DELIVERIES_MINUTES: '0' });
    assert.equal(c.prComment, true);
    assert.equal(c.triggerPush, true);
    assert.equal(c.recoverDeliveriesMinutes, 0);
    fails({ ...app, RECOVER_DELIVERIES_MINUTES: '-1' }, /RECOVER_DELIVERIES_MINUTES must be 0 \(off\) or more/);
  });
});
