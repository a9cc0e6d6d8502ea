import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { X509Certificate, randomBytes, sign } from 'node:crypto';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import bcrypt from 'bcryptjs';
import { freePort } from './ports.js';
import { stopProcess } from './processes.js';

/**
 * Real registries for tests: Debian's registry:2 server binary (distribution
 * 2.8.2), one process per call, its data in a temp dir. Nothing is mocked so
 * that the client is tested against the real API's quirks.
 */

const execFileP = promisify(execFile);
const REGISTRY_BIN = process.env.DOCKER_REGISTRY_BIN ?? 'docker-registry';
const READY_TIMEOUT_MS = 10_000;

export interface TestRegistryOptions {
  /** htpasswd (Basic) auth with this single user. */
  auth?: { username: string; password: string };
  /**
   * With `auth`: token (Bearer) auth instead of htpasswd, through a small
   * token service run in this process. The registry verifies its JWTs for
   * real, against a throwaway certificate made with the openssl CLI.
   */
  tokenAuth?: boolean;
  /** storage.delete.enabled; default true. */
  deleteEnabled?: boolean;
  /** htpasswd auth from this existing file (made by the code under test) instead of one made from `auth`. */
  htpasswdFile?: string;
}

export interface TestRegistry {
  /** '127.0.0.1:PORT': the engine treats 127.0.0.0/8 as plain-HTTP, so `docker push <host>/x:y` works. */
  host: string;
  /** http://host */
  url: string;
  /** Kill the process; the data and the port stay, for start(). */
  stop(): Promise<void>;
  /** Start again on the same port with the same data. */
  start(): Promise<void>;
  /** stop() and delete the temp dir. */
  close(): Promise<void>;
}

/** Registry processes still running, killed if the test process exits without closing them. */
const live = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of live) child.kill('SIGKILL');
});

export async function startRegistry(opts: TestRegistryOptions = {}): Promise<TestRegistry> {
  if (opts.tokenAuth && !opts.auth) throw new Error('startRegistry: tokenAuth needs auth (the user the token service accepts)');
  const dir = await mkdtemp(join(tmpdir(), 'dockhook-registry-'));
  const configPath = join(dir, 'config.yml');
  let port = 0;
  let child: ChildProcess | undefined;
  const tokens = opts.tokenAuth && opts.auth ? await startTokenService(dir, opts.auth) : undefined;

  const writeConfig = async (): Promise<void> => {
    if (opts.auth && !tokens) {
      // The registry only accepts bcrypt entries in htpasswd files.
      await writeFile(join(dir, 'htpasswd'), `${opts.auth.username}:${bcrypt.hashSync(opts.auth.password, 4)}\n`);
    }
    await writeFile(configPath, renderConfig(dir, port, opts, tokens));
  };

  const launch = async (): Promise<void> => {
    child = await spawnRegistry(configPath, `http://127.0.0.1:${port}`);
  };

  const stop = async (): Promise<void> => {
    const c = child;
    child = undefined;
    if (c) await stopProcess(c);
  };

  // freePort() can race with another process grabbing the port before the registry binds it: retry with a new one.
  for (let attempt = 1; ; attempt++) {
    port = await freePort();
    await writeConfig();
    try {
      await launch();
      break;
    } catch (err) {
      if (attempt >= 3) {
        await tokens?.close();
        await rm(dir, { recursive: true, force: true });
        throw err;
      }
    }
  }

  const host = `127.0.0.1:${port}`;
  return {
    host,
    url: `http://${host}`,
    stop,
    async start() {
      if (!child) await launch();
    },
    async close() {
      await stop();
      await tokens?.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function renderConfig(dir: string, port: number, opts: TestRegistryOptions, tokens?: TokenService): string {
  // JSON strings are valid YAML double-quoted scalars: no escaping surprises from temp paths.
  const q = (s: string) => JSON.stringify(s);
  const lines = [
    'version: 0.1',
    'log:',
    '  level: warn',
    '  accesslog:',
    '    disabled: true',
    'storage:',
    '  filesystem:',
    `    rootdirectory: ${q(join(dir, 'data'))}`,
    '  delete:',
    `    enabled: ${opts.deleteEnabled ?? true}`,
    'http:',
    `  addr: ${q(`127.0.0.1:${port}`)}`,
    // A fixed secret silences the "No HTTP secret provided" warning and keeps uploads valid across stop()/start().
    `  secret: ${q(randomBytes(16).toString('hex'))}`,
  ];
  if (tokens) {
    lines.push(
      'auth:',
      '  token:',
      `    realm: ${q(tokens.realm)}`,
      `    service: ${q(TOKEN_SERVICE)}`,
      `    issuer: ${q(TOKEN_ISSUER)}`,
      `    rootcertbundle: ${q(tokens.certPath)}`,
    );
  } else if (opts.auth || opts.htpasswdFile) {
    lines.push('auth:', '  htpasswd:', '    realm: dockhook-test', `    path: ${q(opts.htpasswdFile ?? join(dir, 'htpasswd'))}`);
  }
  return lines.join('\n') + '\n';
}

const TOKEN_SERVICE = 'dockhook-test';
const TOKEN_ISSUER = 'dockhook-test-issuer';

interface TokenService {
  realm: string;
  certPath: string;
  close(): Promise<void>;
}

/**
 * The token service side of distribution's token auth spec: checks Basic
 * credentials and signs an RS256 JWT granting the scopes asked for. The
 * certificate travels in the JWT's x5c header; the registry trusts it because
 * it is the rootcertbundle. Anonymous callers get a token that grants nothing,
 * as public token services do; wrong credentials get 401.
 */
async function startTokenService(dir: string, auth: { username: string; password: string }): Promise<TokenService> {
  const keyPath = join(dir, 'token-key.pem');
  const certPath = join(dir, 'token-cert.pem');
  await execFileP('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', keyPath, '-out', certPath, '-days', '2', '-subj', '/CN=dockhook-test-token']);
  const key = await readFile(keyPath, 'utf8');
  const x5c = [new X509Certificate(await readFile(certPath)).raw.toString('base64')];

  const server = createServer((req, res) => {
    const given = basicCredentials(req);
    if (given && (given.username !== auth.username || given.password !== auth.password)) {
      res.writeHead(401, { 'www-authenticate': 'Basic realm="dockhook-test-token"' }).end();
      return;
    }
    const scopes = given ? new URL(req.url ?? '/', 'http://token').searchParams.getAll('scope') : [];
    const access = scopes.map((scope) => {
      // type:name:actions; the name itself never holds a colon here (no registry host in it).
      const [type, name, actions] = scope.split(':');
      return { type, name, actions: (actions ?? '').split(',') };
    });
    const now = Math.floor(Date.now() / 1000);
    const claims = { iss: TOKEN_ISSUER, sub: given?.username ?? '', aud: TOKEN_SERVICE, iat: now, nbf: now - 10, exp: now + 300, jti: randomBytes(8).toString('hex'), access };
    const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
    const unsigned = `${b64({ alg: 'RS256', typ: 'JWT', x5c })}.${b64(claims)}`;
    const token = `${unsigned}.${sign('sha256', Buffer.from(unsigned), key).toString('base64url')}`;
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    realm: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`,
    certPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function basicCredentials(req: IncomingMessage): { username: string; password: string } | undefined {
  const m = /^Basic (.+)$/i.exec(req.headers.authorization ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString();
  const colon = decoded.indexOf(':');
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Spawns the registry and resolves once GET /v2/ answers 200 or 401; rejects with its output if it dies first. */
async function spawnRegistry(configPath: string, url: string): Promise<ChildProcess> {
  const child = spawn(REGISTRY_BIN, ['serve', configPath], { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let output = '';
  const collect = (b: Buffer) => {
    output = (output + b.toString()).slice(-4000);
  };
  child.stdout!.on('data', collect);
  child.stderr!.on('data', collect);
  let exited: string | undefined;
  child.once('error', (err) => (exited = `could not run ${REGISTRY_BIN}: ${err.message}`));
  child.once('exit', (code, signal) => {
    live.delete(child);
    exited ??= `${REGISTRY_BIN} exited (${signal ?? code}) before it was ready:\n${output}`;
  });

  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (exited) throw new Error(exited);
    try {
      const res = await fetch(`${url}/v2/`, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      if (res.status === 200 || res.status === 401) return child;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await stopProcess(child);
  throw new Error(`${REGISTRY_BIN} did not answer ${url}/v2/ within ${READY_TIMEOUT_MS / 1000} s:\n${output}`);
}


export interface PushTestImageOptions {
  labels?: Record<string, string>;
  /** Content of the file that makes the image unique (default: random). Same content → same image digest. */
  content?: string;
  auth?: { username: string; password: string };
}

/**
 * Builds a tiny image FROM busybox:latest (the only base available offline),
 * pushes it as <registryHost>/<name>:<tag> and returns the manifest digest.
 * The local tag is removed afterwards so repeated runs leave nothing behind.
 * A private DOCKER_CONFIG keeps `docker login` away from the machine's config.
 */
export async function pushTestImage(
  registryHost: string,
  name: string,
  tag: string,
  opts: PushTestImageOptions = {},
): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'dockhook-image-'));
  const ref = `${registryHost}/${name}:${tag}`;
  // DOCKER_BUILDKIT=0: the classic builder uses the local busybox as is; BuildKit (when installed) may try Docker Hub.
  const env = { ...process.env, DOCKER_CONFIG: join(dir, 'docker-config'), DOCKER_BUILDKIT: '0' };
  try {
    // COPY rather than RUN: no container has to start, so a build takes a fraction of a second.
    // The build context is its own folder so the login's config.json never ends up in it.
    const context = join(dir, 'context');
    await mkdir(context);
    await writeFile(join(context, 'Dockerfile'), 'FROM busybox:latest\nCOPY content.txt /dockhook-test-content\n');
    await writeFile(join(context, 'content.txt'), opts.content ?? randomBytes(16).toString('hex'));
    const labelArgs = Object.entries(opts.labels ?? {}).flatMap(([k, v]) => ['--label', `${k}=${v}`]);
    await docker(['build', '-q', '-t', ref, ...labelArgs, context], env);
    if (opts.auth) {
      await docker(['login', registryHost, '-u', opts.auth.username, '--password-stdin'], env, opts.auth.password);
    }
    const { stdout } = await docker(['push', ref], env);
    const digest = /digest: (sha256:[a-f0-9]{64})/.exec(stdout)?.[1];
    if (!digest) throw new Error(`docker push ${ref} printed no digest:\n${stdout}`);
    return digest;
  } finally {
    await docker(['rmi', ref], env).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  }
}

export interface ManifestListEntry {
  /** Tag or digest of an image already pushed to the same repository. */
  reference: string;
  platform: { os: string; architecture: string; variant?: string };
}

/**
 * PUTs a Docker manifest list (multi-platform image) over HTTP. Done by hand
 * rather than with `docker manifest` because the engine here can only build
 * for its own platform anyway; the list just claims other platforms.
 */
export async function pushTestManifestList(
  registryUrl: string,
  name: string,
  tag: string,
  entries: ManifestListEntry[],
  opts: { auth?: { username: string; password: string } } = {},
): Promise<string> {
  const headers: Record<string, string> = {};
  if (opts.auth) headers.authorization = `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}`;
  const manifests = [];
  for (const e of entries) {
    const res = await fetch(`${registryUrl}/v2/${name}/manifests/${e.reference}`, {
      headers: { ...headers, accept: 'application/vnd.docker.distribution.manifest.v2+json' },
    });
    if (!res.ok) throw new Error(`GET manifest ${name}:${e.reference}: ${res.status}`);
    const raw = Buffer.from(await res.arrayBuffer());
    manifests.push({
      mediaType: res.headers.get('content-type'),
      size: raw.length,
      digest: res.headers.get('docker-content-digest'),
      platform: e.platform,
    });
  }
  const listType = 'application/vnd.docker.distribution.manifest.list.v2+json';
  const res = await fetch(`${registryUrl}/v2/${name}/manifests/${tag}`, {
    method: 'PUT',
    headers: { ...headers, 'content-type': listType },
    body: JSON.stringify({ schemaVersion: 2, mediaType: listType, manifests }),
  });
  if (res.status !== 201) throw new Error(`PUT manifest list ${name}:${tag}: ${res.status} ${await res.text()}`);
  return res.headers.get('docker-content-digest')!;
}

async function docker(args: string[], env: NodeJS.ProcessEnv, stdin?: string): Promise<{ stdout: string; stderr: string }> {
  const p = execFileP('docker', args, { env, maxBuffer: 10 * 1024 * 1024 });
  p.child.stdin?.end(stdin ?? '');
  try {
    return await p;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`docker ${args[0]} failed: ${e.stderr?.trim() || e.message}`);
  }
}
