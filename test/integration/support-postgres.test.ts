import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { test } from 'node:test';
import pg from 'pg';
import { startPostgres } from '../support/postgres.js';

async function one(url: string, sql: string): Promise<unknown> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5000 });
  await client.connect();
  try {
    return (await client.query(sql)).rows[0];
  } finally {
    await client.end();
  }
}

test('startPostgres: isolated databases on one server, which can go away and come back', async () => {
  const t0 = Date.now();
  const server = await startPostgres();
  const startedMs = Date.now() - t0;
  try {
    assert.match(server.url, /^postgres:\/\/dockhook:secret-pw@127\.0\.0\.1:\d+\/dockhook$/);
    assert.notEqual(server.port, 5432, "never Debian's own cluster");
    assert.deepEqual(await one(server.url, 'SELECT current_user AS u'), { u: 'dockhook' });

    const a = await server.createDatabase();
    const b = await server.createDatabase('support_pg_b');
    assert.notEqual(a, b);
    assert.match(b, /\/support_pg_b$/);
    await one(a, 'CREATE TABLE t (v text)');
    await one(a, "INSERT INTO t VALUES ('in a')");
    assert.deepEqual(await one(a, 'SELECT v FROM t'), { v: 'in a' });
    assert.deepEqual(await one(b, 'SELECT current_database() AS db'), { db: 'support_pg_b' });
    await assert.rejects(one(b, 'SELECT v FROM t'), /relation "t" does not exist/, 'b does not see a');

    await server.stop();
    await assert.rejects(one(a, 'SELECT 1'), /ECONNREFUSED/);
    await server.start();
    assert.deepEqual(await one(a, 'SELECT v FROM t'), { v: 'in a' }, 'same port, same data');
    console.log(`startPostgres took ${startedMs} ms`);
  } finally {
    await server.destroy();
  }
  await assert.rejects(one(server.url, 'SELECT 1'), /ECONNREFUSED/);
});

test('startPostgres: destroy() removes the server and its folder', async () => {
  const server = await startPostgres();
  const dir = (await one(server.url, "SELECT setting FROM pg_settings WHERE name = 'data_directory'")) as { setting: string };
  assert.ok(existsSync(dir.setting));
  await server.destroy();
  assert.equal(existsSync(dir.setting), false);
});
