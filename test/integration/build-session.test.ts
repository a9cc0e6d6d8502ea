import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import Docker from 'dockerode';
import { openBuildSession } from '../../src/engine/build-session.js';
import { loadPullCredentials } from '../../src/engine/pull-credentials.js';
import { createLogger } from '../../src/log.js';
import { ensureBusyboxImage } from '../support/base-image.js';

const docker = new Docker();

/** POST /build against an open session, as dockhook's BuildKit path does; resolves with the engine's whole progress output. */
function buildWith(sessionId: string, tag: string): Promise<string> {
  return new Promise((resolve, reject) =>
    docker.modem.dial(
      {
        path: '/build?',
        method: 'POST',
        options: { t: [tag], dockerfile: 'Dockerfile', version: '2', session: sessionId, remote: 'client-session', rm: true },
        file: Readable.from([]),
        isStream: true,
        statusCodes: { 200: true, 400: 'bad parameter', 500: 'server error' },
      } as never,
      (err: Error | null, stream: unknown) => {
        if (err) return reject(err);
        let out = '';
        (stream as NodeJS.ReadableStream).on('data', (c: Buffer) => (out += c.toString()));
        (stream as NodeJS.ReadableStream).on('end', () => resolve(out));
        (stream as NodeJS.ReadableStream).on('error', reject);
      },
    ),
  );
}

describe('the BuildKit session (real engine)', () => {
  let dir: string;
  before(async () => {
    await ensureBusyboxImage();
    dir = await mkdtemp(join(tmpdir(), 'dockhook-session-'));
    await writeFile(join(dir, 'Dockerfile'), `FROM busybox:latest\nCOPY hello.txt /hello.txt\nRUN echo ${randomUUID()} > /run.txt\n`);
    await writeFile(join(dir, 'hello.txt'), 'hello\n');
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('stays open while the engine checks its health: a build that reaches for it seconds later still gets the context', async () => {
    const credentials = loadPullCredentials({ registry: '127.0.0.1:1', dockerConfigFile: join(dir, 'no-config.json'), log: createLogger('silent') });
    const session = await openBuildSession(docker, { credentials, dirs: { context: dir, dockerfile: dir } });
    const tag = `dockhook-test/session:${randomUUID().slice(0, 8)}`;
    try {
      // The engine health-checks a session every second and drops one whose check fails.
      await new Promise((r) => setTimeout(r, 3500));
      const out = await buildWith(session.id, tag);
      assert.doesNotMatch(out, /no active session|context canceled|errorDetail/, out);
      const run = await docker.getImage(tag).inspect();
      assert.ok(run.Id);
    } finally {
      session.close();
      await docker.getImage(tag).remove({ force: true }).catch(() => undefined);
    }
  });
});
