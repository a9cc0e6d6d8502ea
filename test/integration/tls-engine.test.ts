import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:tls';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { pack } from 'tar-fs';
import { loadPullCredentials, type PullCredentials } from '../../src/engine/pull-credentials.js';
import { createLogger } from '../../src/log.js';
import { buildImage } from '../../src/pipeline/build.js';
import { ensureBusyboxImage } from '../support/base-image.js';
import { freePort } from '../support/ports.js';

/**
 * An engine reached over TLS (DOCKER_HOST=tcp://…:2376, DOCKER_TLS_VERIFY=1):
 * a mutual-TLS front on 127.0.0.1 for the real local engine, as dockerd
 * --tlsverify would be. BuildKit's session then runs over a TLS socket that
 * negotiated no ALPN protocol; the classic builder is covered too.
 */

const run = promisify(execFile);
const ENGINE_SOCKET = '/var/run/docker.sock';

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  await run('openssl', args, { cwd });
}

/** A CA, a server cert for 127.0.0.1 and a client cert, all signed by the CA. */
async function makeCerts(dir: string): Promise<{ ca: Buffer; serverKey: Buffer; serverCert: Buffer; clientKey: Buffer; clientCert: Buffer }> {
  await openssl(dir, 'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '1', '-subj', '/CN=dockhook-test-ca');
  await writeFile(join(dir, 'server-ext.cnf'), 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n');
  await writeFile(join(dir, 'client-ext.cnf'), 'extendedKeyUsage=clientAuth\n');
  for (const [name, subj] of [
    ['server', '/CN=127.0.0.1'],
    ['client', '/CN=dockhook-client'],
  ] as const) {
    await openssl(dir, 'req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}-key.pem`, '-out', `${name}.csr`, '-subj', subj);
    await openssl(dir, 'x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', `${name}.pem`, '-days', '1', '-extfile', `${name}-ext.cnf`);
  }
  const read = (f: string) => readFile(join(dir, f));
  return { ca: await read('ca.pem'), serverKey: await read('server-key.pem'), serverCert: await read('server.pem'), clientKey: await read('client-key.pem'), clientCert: await read('client.pem') };
}

describe('an engine reached over TLS', () => {
  let dir: string;
  let server: Server;
  const open = new Set<Socket>();
  let docker: Docker;
  let credentials: PullCredentials;
  const tags: string[] = [];

  before(async () => {
    await ensureBusyboxImage();
    dir = await mkdtemp(join(tmpdir(), 'dockhook-tls-engine-'));
    const certs = await makeCerts(dir);
    server = createServer({ key: certs.serverKey, cert: certs.serverCert, ca: certs.ca, requestCert: true, rejectUnauthorized: true }, (tlsSocket) => {
      const engine = connect({ path: ENGINE_SOCKET });
      open.add(tlsSocket);
      open.add(engine);
      const done = () => {
        tlsSocket.destroy();
        engine.destroy();
        open.delete(tlsSocket);
        open.delete(engine);
      };
      tlsSocket.on('error', done).on('close', done);
      engine.on('error', done).on('close', done);
      tlsSocket.pipe(engine).pipe(tlsSocket);
    });
    const port = await freePort();
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(port, '127.0.0.1', resolve));
    docker = new Docker({ host: '127.0.0.1', port, protocol: 'https', ca: certs.ca, cert: certs.clientCert, key: certs.clientKey });
    credentials = loadPullCredentials({ registry: '127.0.0.1:1', dockerConfigFile: join(dir, 'no-such-config', 'config.json'), log: createLogger('silent') });
    await mkdir(contextDir());
    await writeFile(join(contextDir(), 'Dockerfile'), 'FROM busybox:latest\nRUN echo over-tls > /x\n');
  });

  after(async () => {
    for (const tag of tags) await docker.getImage(tag).remove({ force: true }).catch(() => {});
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      for (const s of open) s.destroy();
    });
    await rm(dir, { recursive: true, force: true });
  });

  // The context is a folder of its own: the temp folder also holds the certs.
  const contextDir = () => join(dir, 'context');

  for (const builder of ['buildkit', 'classic'] as const) {
    it(`builds with ${builder === 'buildkit' ? 'BuildKit' : 'the classic builder'}`, async () => {
      const tag = `dockhook-tls-${builder}:${randomBytes(4).toString('hex')}`;
      tags.push(tag);
      const lines: string[] = [];
      const imageId = await buildImage(docker, {
        context: builder === 'buildkit' ? { dirs: { context: contextDir(), dockerfile: contextDir() } } : { tar: Readable.from(pack(contextDir())) },
        dockerfile: 'Dockerfile',
        tags: [tag],
        labels: {},
        buildArgs: {},
        credentials,
        signal: AbortSignal.timeout(120_000),
        onLine: (line) => lines.push(line),
      });
      assert.match(imageId, /^sha256:[0-9a-f]{64}$/, lines.join('\n'));
      const info = await docker.getImage(tag).inspect();
      assert.equal(info.Id, imageId);
    });
  }
});
