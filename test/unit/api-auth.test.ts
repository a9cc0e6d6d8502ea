import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import { requireApiToken } from '../../src/http/api-auth.js';
import { errorHandler } from '../../src/http/error-handler.js';
import { createLogger } from '../../src/log.js';

const TOKEN = 'api-token-for-tests-123';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

function appWith(settings: { apiToken?: string; apiTokenReads: boolean }) {
  const app = express();
  app.get('/read', requireApiToken(settings, 'read'), (_req, res) => void res.json({ ok: true }));
  app.post('/write', requireApiToken(settings, 'write'), (_req, res) => void res.status(202).json({ ok: true }));
  app.use(errorHandler(createLogger('silent')));
  return app;
}

describe('requireApiToken', () => {
  const servers: { url: string; close: () => void }[] = [];
  const start = async (settings: { apiToken?: string; apiTokenReads: boolean }) => {
    const server = appWith(settings).listen(0, '127.0.0.1');
    await new Promise((r) => server.once('listening', r));
    const entry = { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => server.close() };
    servers.push(entry);
    return entry.url;
  };
  let locked: string;
  let open: string;
  let disabled: string;
  before(async () => {
    locked = await start({ apiToken: TOKEN, apiTokenReads: true });
    open = await start({ apiToken: TOKEN, apiTokenReads: false });
    disabled = await start({ apiTokenReads: false });
  });
  after(() => servers.forEach((s) => s.close()));

  it('writes: 403 while API_TOKEN is unset, 401 without or with a wrong token, through with the right bearer', async () => {
    const off = await fetch(`${disabled}/write`, { method: 'POST' });
    assert.equal(off.status, 403);
    assert.equal((await off.json()).error, 'write API disabled');
    assert.equal((await fetch(`${open}/write`, { method: 'POST' })).status, 401);
    assert.equal((await fetch(`${open}/write`, { method: 'POST', headers: { authorization: 'Bearer nope' } })).status, 401);
    assert.equal((await fetch(`${open}/write`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status, 202);
    assert.equal((await fetch(`${open}/write`, { method: 'POST', headers: { authorization: basic('x', TOKEN) } })).status, 401, 'writes take only the bearer form');
  });

  it('reads are open by default, and need the token with API_TOKEN_READS=true (bearer, or Basic for a browser)', async () => {
    assert.equal((await fetch(`${open}/read`)).status, 200);
    const challenge = await fetch(`${locked}/read`);
    assert.equal(challenge.status, 401);
    assert.match(challenge.headers.get('www-authenticate') ?? '', /^Basic realm="dockhook"/);
    assert.equal((await fetch(`${locked}/read`, { headers: { authorization: `Bearer ${TOKEN}` } })).status, 200);
    assert.equal((await fetch(`${locked}/read`, { headers: { authorization: basic('anyone', TOKEN) } })).status, 200);
    assert.equal((await fetch(`${locked}/read`, { headers: { authorization: basic('anyone', 'wrong') } })).status, 401);
  });
});
