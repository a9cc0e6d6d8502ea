import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import bcrypt from 'bcryptjs';
import { parse as parseEnv } from 'dotenv';
import { parse as parseYaml } from 'yaml';
import { ensureDatabaseCredentials } from '../../src/cli/init-db-auth.js';
import { loadConfig } from '../../src/config.js';
import { findCompose } from '../support/compose.js';

/**
 * The deployment files, checked without starting anything: nothing can be
 * pulled from Docker Hub here. `docker-compose config` validates and resolves
 * docker-compose.yml (and docker-compose.yml + docker-compose.scale.yml) as
 * compose itself reads them; the Dockerfile, ngrok.yml and .env.example are
 * read as text.
 */

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (file: string) => readFile(join(ROOT, file), 'utf8');

type Obj = Record<string, any>;

interface Port {
  hostIp?: string;
  published?: string;
  target: string;
}

/** Ports in either syntax compose may print: "127.0.0.1:4040:4040/tcp" or { host_ip, published, target }. */
function portsOf(service: Obj): Port[] {
  return (service.ports ?? []).map((p: string | Obj) => {
    if (typeof p !== 'string') return { hostIp: p.host_ip || undefined, published: p.published === undefined ? undefined : String(p.published), target: String(p.target) };
    const parts = p.replace(/\/(tcp|udp)$/, '').split(':');
    const target = parts.pop()!;
    const published = parts.pop();
    return { hostIp: parts.pop() || undefined, published, target };
  });
}

interface Mount {
  source?: string;
  target: string;
  readOnly: boolean;
}

/** Volumes in either syntax: "src:target:ro" or { type, source, target, read_only }. */
function mountsOf(service: Obj): Mount[] {
  return (service.volumes ?? []).map((v: string | Obj) => {
    if (typeof v !== 'string') return { source: v.source, target: v.target, readOnly: Boolean(v.read_only) };
    const [source, target, mode] = v.split(':');
    return { source, target, readOnly: mode === 'ro' };
  });
}

/** .env.example with the values a person must fill, filled. */
async function filledEnv(overrides: Record<string, string> = {}): Promise<Record<string, string>> {
  const env = parseEnv(await read('.env.example'));
  return { ...env, WEBHOOK_SECRET: 'compose-test-secret-0123456789', GITHUB_TOKEN: 'ghp_composetest', NGROK_AUTHTOKEN: 'ngrok-test-token', ...overrides };
}

describe('docker-compose.yml as docker-compose resolves it', () => {
  let compose: string[];
  let dir: string;

  before(async () => {
    compose = await findCompose();
    // A temp copy with its own .env: the repository gets no .env, and a developer's real one is not read.
    dir = await mkdtemp(join(tmpdir(), 'dockhook-compose-'));
    await copyFile(join(ROOT, 'docker-compose.yml'), join(dir, 'docker-compose.yml'));
  });
  after(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function resolved(env: Record<string, string>): Promise<Obj> {
    const envFile = join(dir, '.env');
    await writeFile(envFile, Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
    // Variables of the machine would win over .env in interpolation: leave out the ones this file uses.
    const { NGROK_AUTHTOKEN: _n, REGISTRY_BIND: _b, ...processEnv } = process.env;
    const { stdout } = await run(compose[0], [...compose.slice(1), '--env-file', envFile, '-f', join(dir, 'docker-compose.yml'), 'config'], { cwd: dir, env: processEnv });
    return parseYaml(stdout) as Obj;
  }

  it('has dockhook, registry and ngrok (and the one-shot registry-auth), wired as the README of the file says', async () => {
    const env = await filledEnv();
    const config = await resolved(env);
    assert.deepEqual(Object.keys(config.services).sort(), ['dockhook', 'ngrok', 'registry', 'registry-auth']);
    const { dockhook, registry, ngrok, 'registry-auth': registryAuth } = config.services as Record<string, Obj>;

    // dockhook: built here, the host's engine through its socket, state in a named volume.
    assert.equal(typeof dockhook.build === 'string' ? dockhook.build : dockhook.build.context, dir);
    const dm = mountsOf(dockhook);
    assert.ok(dm.some((m) => m.source === '/var/run/docker.sock' && m.target === '/var/run/docker.sock'), 'Docker socket mounted');
    assert.ok(dm.some((m) => m.source === 'dockhook-data' && m.target === '/data'), 'named volume for /data');
    assert.ok('dockhook-data' in config.volumes);
    assert.equal(dockhook.restart, 'unless-stopped');
    assert.equal(dockhook.group_add, undefined, "no group id to configure: the image's entrypoint adds the socket's group");
    // env_file .env reached the container (compose v1 prints it merged into environment).
    const denv = dockhook.environment as Obj;
    if (dockhook.env_file === undefined) assert.equal(denv.WEBHOOK_SECRET, env.WEBHOOK_SECRET);
    else assert.match(JSON.stringify(dockhook.env_file), /\.env/);
    // Pinned by the compose file over whatever .env says.
    assert.equal(denv.DATA_DIR, '/data');
    assert.equal(denv.HOST, '0.0.0.0');
    assert.equal(String(denv.PORT), '3000');
    assert.equal(denv.REGISTRY_URL, 'http://registry:5000');
    assert.equal(denv.NGROK_API_URL, 'http://ngrok:4040');
    assert.ok(portsOf(dockhook).some((p) => p.target === '3000' && p.published === '3000'));
    // The registry's login comes from registry-auth's volume, not from .env.
    assert.equal(denv.REGISTRY_USERNAME, 'dockhook');
    assert.equal(denv.REGISTRY_PASSWORD_FILE, '/auth/password');
    assert.ok(dm.some((m) => m.source === 'registry-auth' && m.target === '/auth' && m.readOnly));
    assert.equal(dockhook.depends_on['registry-auth'].condition, 'service_completed_successfully');
    assert.ok('registry' in dockhook.depends_on);

    // registry-auth: dockhook's own image, run once, writing the volume; no .env, so no secret.
    assert.equal(typeof registryAuth.build === 'string' ? registryAuth.build : registryAuth.build.context, dir);
    assert.deepEqual(registryAuth.command, ['node', 'dist/cli.js', 'init-registry-auth', '--dir', '/auth', '--user', 'dockhook']);
    assert.equal(String(registryAuth.restart), 'no');
    assert.ok(mountsOf(registryAuth).some((m) => m.source === 'registry-auth' && m.target === '/auth' && !m.readOnly));
    assert.equal(registryAuth.environment?.WEBHOOK_SECRET, undefined);
    assert.ok('registry-auth' in config.volumes);

    // registry: deletion on (retention), htpasswd auth from the file registry-auth made, its data in a named volume.
    assert.equal(registry.image, 'registry:2');
    assert.equal(String(registry.environment.REGISTRY_STORAGE_DELETE_ENABLED), 'true');
    assert.equal(registry.environment.REGISTRY_AUTH, 'htpasswd');
    assert.ok(registry.environment.REGISTRY_AUTH_HTPASSWD_REALM);
    assert.equal(registry.environment.REGISTRY_AUTH_HTPASSWD_PATH, '/auth/htpasswd');
    const registryMounts = mountsOf(registry);
    assert.ok(registryMounts.some((m) => m.source === 'registry-auth' && m.target === '/auth' && m.readOnly), 'htpasswd mounted from the registry-auth volume');
    assert.equal(registry.depends_on['registry-auth'].condition, 'service_completed_successfully', 'started only once the htpasswd exists');
    assert.ok(registryMounts.some((m) => m.source === 'registry-data' && m.target === '/var/lib/registry'));
    assert.ok('registry-data' in config.volumes);
    assert.equal(registry.restart, 'unless-stopped');
    // The host's engine pushes to localhost:5000: published on the host, on loopback by default.
    assert.deepEqual(portsOf(registry), [{ hostIp: '127.0.0.1', published: '5000', target: '5000' }]);

    // ngrok: the official image, its token from .env, ngrok.yml mounted, the inspector on loopback only.
    assert.match(ngrok.image, /^ngrok\/ngrok(:|$)/);
    assert.equal(ngrok.environment.NGROK_AUTHTOKEN, env.NGROK_AUTHTOKEN);
    assert.deepEqual(ngrok.command, ['start', '--all', '--config', '/etc/ngrok.yml']);
    assert.ok(mountsOf(ngrok).some((m) => m.source === join(dir, 'ngrok.yml') && m.target === '/etc/ngrok.yml' && m.readOnly));
    assert.deepEqual(portsOf(ngrok), [{ hostIp: '127.0.0.1', published: '4040', target: '4040' }]);
    assert.equal(ngrok.environment.WEBHOOK_SECRET, undefined, "dockhook's secrets stay out of the ngrok container");
  });

  it('defaults REGISTRY_BIND to loopback when .env leaves it out', async () => {
    const { REGISTRY_BIND: _b, ...env } = await filledEnv();
    const config = await resolved(env);
    assert.equal(portsOf(config.services.registry)[0].hostIp, '127.0.0.1');
  });

  /** dockhook's environment in the container: .env plus compose's pins (v1 prints env_file merged in; v2 may not). */
  async function containerEnv(env: Record<string, string>): Promise<Record<string, string>> {
    const config = await resolved(env);
    return { ...(config.services.dockhook.env_file === undefined ? {} : env), ...config.services.dockhook.environment };
  }
  const passwordFile = (path: string) => {
    if (path === '/auth/password') return 'made-by-registry-auth\n';
    throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  };

  it('gives dockhook a valid configuration from the three filled values, the registry login included', async () => {
    const config = loadConfig(await containerEnv(await filledEnv()), passwordFile);
    assert.deepEqual(config.registryAuth, { username: 'dockhook', password: 'made-by-registry-auth' });
    assert.equal(config.registry, 'localhost:5000');
    assert.equal(config.registryUrl, 'http://registry:5000');
    assert.equal(config.ngrokApiUrl, 'http://ngrok:4040');
  });

  it('refuses an old .env that still sets REGISTRY_PASSWORD, saying why', async () => {
    const env = await containerEnv(await filledEnv({ REGISTRY_PASSWORD: 'from-an-old-env' }));
    assert.throws(() => loadConfig(env, passwordFile), /REGISTRY_PASSWORD and REGISTRY_PASSWORD_FILE are both set: keep one of them/);
  });

  it('declares env_file .env for dockhook only', async () => {
    const raw = parseYaml(await read('docker-compose.yml')) as Obj;
    assert.deepEqual([raw.services.dockhook.env_file].flat(), ['.env']);
    assert.equal(raw.services.ngrok.env_file, undefined);
    assert.equal(raw.services.registry.env_file, undefined);
    assert.equal(raw.services['registry-auth'].env_file, undefined);
  });
});

describe('docker-compose.yml + docker-compose.scale.yml as docker-compose merges them', () => {
  let compose: string[];
  let dir: string;
  /** What the one-shot db-auth writes, made by the same code with the arguments the file gives it. */
  let dbAuth: string;

  before(async () => {
    compose = await findCompose();
    dir = await mkdtemp(join(tmpdir(), 'dockhook-compose-scale-'));
    for (const f of ['docker-compose.yml', 'docker-compose.scale.yml']) await copyFile(join(ROOT, f), join(dir, f));
    dbAuth = await mkdtemp(join(tmpdir(), 'dockhook-compose-db-auth-'));
  });
  after(async () => {
    for (const d of [dir, dbAuth]) if (d) await rm(d, { recursive: true, force: true });
  });

  async function resolved(env: Record<string, string>): Promise<Obj> {
    const envFile = join(dir, '.env');
    await writeFile(envFile, Object.entries(env).map(([k, v]) => `${k}=${v}`).join('\n') + '\n');
    const { NGROK_AUTHTOKEN: _n, REGISTRY_BIND: _b, ...processEnv } = process.env;
    const files = ['-f', join(dir, 'docker-compose.yml'), '-f', join(dir, 'docker-compose.scale.yml')];
    const { stdout } = await run(compose[0], [...compose.slice(1), '--env-file', envFile, ...files, 'config'], { cwd: dir, env: processEnv });
    return parseYaml(stdout) as Obj;
  }
  const contextOf = (service: Obj) => (typeof service.build === 'string' ? service.build : service.build?.context);
  /** A service's environment in its container: .env plus the files' pins (v1 prints env_file merged in; v2 may not). */
  const envOf = (service: Obj, env: Record<string, string>) => ({ ...(service.env_file === undefined ? {} : env), ...service.environment }) as Record<string, string>;
  /** The password files as the one-shots leave them: registry-auth's and db-auth's volumes. */
  const readVolumes = (path: string) => {
    if (path === '/auth/password') return 'made-by-registry-auth\n';
    if (path.startsWith('/db-auth/')) return readFileSync(join(dbAuth, path.slice('/db-auth/'.length)), 'utf8');
    throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
  };

  it('adds postgres:16 (named volume, pg_isready healthcheck), the one-shot db-auth and a scalable worker; dockhook becomes the receiver', async () => {
    const env = await filledEnv();
    const config = await resolved(env);
    assert.deepEqual(Object.keys(config.services).sort(), ['db-auth', 'dockhook', 'ngrok', 'postgres', 'registry', 'registry-auth', 'worker']);
    const { dockhook, worker, postgres, 'db-auth': dbAuthService } = config.services as Record<string, Obj>;

    // db-auth: dockhook's own image, once, writing its volume at /auth (the image's dockhook-owned folder); no .env.
    assert.equal(contextOf(dbAuthService), dir);
    assert.equal(String(dbAuthService.restart), 'no');
    assert.equal(dbAuthService.env_file, undefined);
    assert.equal(dbAuthService.environment, undefined);
    assert.ok(mountsOf(dbAuthService).some((m) => m.source === 'db-auth' && m.target === '/auth' && !m.readOnly));
    const cmd = dbAuthService.command as string[];
    assert.deepEqual(cmd.slice(0, 3), ['node', 'dist/cli.js', 'init-db-auth']);
    const arg = (name: string) => cmd[cmd.indexOf(`--${name}`) + 1];
    assert.equal(arg('dir'), '/auth');
    assert.equal(arg('host'), 'postgres', 'the compose service name');

    // postgres: the official image, its data in a named volume, the password only from db-auth's file.
    assert.equal(postgres.image, 'postgres:16');
    assert.ok(mountsOf(postgres).some((m) => m.source === 'postgres-data' && m.target === '/var/lib/postgresql/data' && !m.readOnly));
    assert.ok('postgres-data' in config.volumes && 'db-auth' in config.volumes);
    assert.ok(mountsOf(postgres).some((m) => m.source === 'db-auth' && m.target === '/db-auth' && m.readOnly));
    assert.equal(postgres.environment.POSTGRES_PASSWORD_FILE, '/db-auth/password');
    assert.equal(postgres.environment.POSTGRES_PASSWORD, undefined);
    assert.equal(postgres.environment.POSTGRES_USER, arg('user'), "db-auth's --user is the role postgres makes");
    assert.equal(postgres.environment.POSTGRES_DB, arg('database'));
    assert.equal(postgres.depends_on['db-auth'].condition, 'service_completed_successfully');
    assert.equal(postgres.ports, undefined, 'not published');
    assert.equal(postgres.env_file, undefined);
    const test = [postgres.healthcheck.test].flat().join(' ');
    assert.match(test, /\bpg_isready\b/);
    assert.match(test, /-h 127\.0\.0\.1/, 'over TCP: the first-start temporary server listens on the socket only');
    assert.match(test, new RegExp(`-U ${arg('user')}\\b`));

    // worker: the same build, ROLE=worker, the host's engine, the two logins; nothing published, so it scales.
    assert.equal(contextOf(worker), contextOf(dockhook));
    const wenv = envOf(worker, env);
    assert.equal(wenv.ROLE, 'worker');
    assert.equal(wenv.DATABASE_URL_FILE, '/db-auth/database-url');
    assert.equal(wenv.DATABASE_URL, undefined);
    assert.equal(wenv.REGISTRY_USERNAME, 'dockhook');
    assert.equal(wenv.REGISTRY_PASSWORD_FILE, '/auth/password');
    assert.equal(wenv.REGISTRY_URL, 'http://registry:5000');
    assert.equal(String(wenv.PORT), '3000');
    assert.equal(wenv.HOST, '0.0.0.0');
    assert.equal(wenv.WORKER_NAME, undefined, 'each replica names itself (host name and pid)');
    assert.equal(worker.ports, undefined, 'no published ports: replicas would fight over them');
    assert.equal(worker.container_name, undefined, 'a fixed name cannot scale');
    const wm = mountsOf(worker);
    assert.ok(wm.some((m) => m.source === '/var/run/docker.sock' && m.target === '/var/run/docker.sock'), 'its engine');
    assert.ok(wm.some((m) => m.source === 'registry-auth' && m.target === '/auth' && m.readOnly));
    assert.ok(wm.some((m) => m.source === 'db-auth' && m.target === '/db-auth' && m.readOnly));
    assert.equal(worker.depends_on.postgres.condition, 'service_healthy');
    assert.equal(worker.depends_on['registry-auth'].condition, 'service_completed_successfully');
    assert.equal(worker.depends_on['db-auth'].condition, 'service_completed_successfully');
    assert.equal(worker.restart, 'unless-stopped');

    // dockhook: the receiver, on the same database, still the one with the published port and ngrok's upstream.
    const denv = envOf(dockhook, env);
    assert.equal(denv.ROLE, 'receiver');
    assert.equal(denv.DATABASE_URL_FILE, '/db-auth/database-url');
    assert.ok(mountsOf(dockhook).some((m) => m.source === 'db-auth' && m.target === '/db-auth' && m.readOnly));
    assert.equal(dockhook.depends_on.postgres.condition, 'service_healthy');
    assert.equal(dockhook.depends_on['db-auth'].condition, 'service_completed_successfully');
    assert.equal(dockhook.depends_on['registry-auth'].condition, 'service_completed_successfully', "the base file's dependencies stay");
    assert.ok(portsOf(dockhook).some((p) => p.target === '3000' && p.published === '3000'));
    assert.equal(denv.NGROK_API_URL, 'http://ngrok:4040');
  });

  it("gives the receiver and the worker a valid configuration from the three filled values and db-auth's files", async () => {
    const env = await filledEnv();
    const config = await resolved(env);
    const cmd = config.services['db-auth'].command as string[];
    const arg = (name: string) => cmd[cmd.indexOf(`--${name}`) + 1];
    await ensureDatabaseCredentials({ dir: dbAuth, user: arg('user'), database: arg('database'), host: arg('host'), port: Number(arg('port') ?? 5432) });
    const password = readFileSync(join(dbAuth, 'password'), 'utf8').trim();
    for (const [name, role] of [['worker', 'worker'], ['dockhook', 'receiver']] as const) {
      const c = loadConfig(envOf(config.services[name], env), readVolumes);
      assert.equal(c.role, role);
      assert.equal(c.databaseUrl, `postgres://${arg('user')}:${password}@postgres:5432/${arg('database')}`, `${name} reaches postgres by its service name`);
      assert.deepEqual(c.registryAuth, { username: 'dockhook', password: 'made-by-registry-auth' });
      assert.equal(c.registryUrl, 'http://registry:5000');
    }
  });

  it('refuses a DATABASE_URL left in .env, saying why', async () => {
    const env = await filledEnv({ DATABASE_URL: 'postgres://me:old@db:5432/dockhook' });
    const config = await resolved(env);
    assert.throws(() => loadConfig(envOf(config.services.worker, env), readVolumes), /DATABASE_URL and DATABASE_URL_FILE are both set: keep one of them/);
  });

  it('has no password, URL with credentials, or default for a secret in either file', async () => {
    for (const file of ['docker-compose.yml', 'docker-compose.scale.yml']) {
      const text = await read(file);
      assert.doesNotMatch(text, /postgres(ql)?:\/\/[^\s/]*:[^\s/]*@/, `${file}: no URL with a password`);
      // ${SECRET:-default} or ${SECRET-default} would be a password nobody chose.
      assert.doesNotMatch(text, /\$\{[A-Z_]*(PASSWORD|SECRET|TOKEN|DATABASE_URL)[A-Z_]*:?[-?=]/, `${file}: no default for a secret`);
      const raw = parseYaml(text) as Obj;
      for (const [name, service] of Object.entries(raw.services as Record<string, Obj>)) {
        const environment = Array.isArray(service.environment)
          ? Object.fromEntries((service.environment as string[]).map((e) => [e.split('=')[0], e.slice(e.indexOf('=') + 1)]))
          : (service.environment ?? {});
        for (const [key, value] of Object.entries(environment as Record<string, unknown>)) {
          if (!/(PASSWORD|SECRET|TOKEN|DATABASE_URL)$/.test(key)) continue;
          // Only interpolation from .env (the person's own value) may name a secret's value here.
          assert.match(String(value), /^\$\{[A-Z_]+\}$/, `${file}: ${name}.${key} is set literally`);
        }
      }
    }
    const scale = parseYaml(await read('docker-compose.scale.yml')) as Obj;
    assert.equal(scale.services['db-auth'].env_file, undefined, 'the one-shot gets no .env');
    assert.equal(scale.services.postgres.env_file, undefined, "dockhook's secrets stay out of the postgres container");
    assert.deepEqual([scale.services.worker.env_file].flat(), ['.env']);
  });
});

describe('Dockerfile', () => {
  const stages = async () => {
    const text = (await read('Dockerfile')).replace(/\\\n/g, ' ');
    const lines = text.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    const out: { from: string; lines: string[] }[] = [];
    for (const line of lines) {
      if (/^FROM\s/i.test(line)) out.push({ from: line, lines: [] });
      else out.at(-1)?.lines.push(line);
    }
    return out;
  };

  it('builds in stages and runs node dist/main.js through the entrypoint that drops to dockhook, with a healthcheck on /healthz', async () => {
    const all = await stages();
    assert.ok(all.length >= 2, 'multi-stage');
    for (const s of all) {
      const image = s.from.split(/\s+/)[1];
      assert.ok(/^node:.*-slim$/.test(image.replace('${NODE_VERSION}', '24')) || all.some((o) => o.from.endsWith(` AS ${image}`)), `${s.from}: based on node:*-slim or an earlier stage`);
    }
    const final = all.at(-1)!;
    // The entrypoint starts as root to read the socket's group, then switches (see the next test).
    assert.ok(final.lines.some((l) => l === 'ENTRYPOINT ["docker-entrypoint.sh"]'));
    assert.ok(final.lines.some((l) => /^COPY deploy\/docker-entrypoint\.sh \/usr\/local\/bin\/docker-entrypoint\.sh$/.test(l)));
    assert.ok(final.lines.some((l) => /useradd .*--uid 10001 .*dockhook/.test(l)));
    const health = final.lines.find((l) => /^HEALTHCHECK\s/i.test(l));
    assert.ok(health, 'HEALTHCHECK present');
    assert.match(health, /\/healthz/);
    assert.match(health, /\bnode\b/);
    assert.ok(final.lines.some((l) => /^ENV\s.*DATA_DIR=\/data/.test(l)));
    assert.ok(final.lines.some((l) => /^VOLUME\s+\/data$/.test(l)));
    // node flags may come before the script (the Dockerfile sets a smaller young generation, see bench/).
    assert.ok(final.lines.some((l) => /^CMD \["node",( "--[^"]+",)* "dist\/main\.js"\]$/.test(l)), 'CMD runs node dist/main.js');
    assert.ok(final.lines.some((l) => l.includes('--max-semi-space-size=4')), 'the measured memory setting is kept');
    // The runtime gets node_modules from a stage and installs no compilers itself.
    assert.ok(final.lines.some((l) => /^COPY --from=\S+ \/app\/node_modules/.test(l)));
    assert.ok(!final.lines.some((l) => /apt-get install|g\+\+|python3/.test(l)), 'no build tools in the runtime stage');
    assert.ok(all.some((s) => s.lines.some((l) => /npm ci --omit=dev/.test(l))));
    assert.ok(all.some((s) => s.lines.some((l) => /npm run build/.test(l))));
  });

  it('has an entrypoint that never execs the command as root', async () => {
    const script = (await read('deploy/docker-entrypoint.sh')).split('\n').filter((l) => !l.trim().startsWith('#'));
    const execs = script.filter((l) => /\bexec\b/.test(l)).map((l) => l.trim());
    // Only two ways out as root, both through setpriv to dockhook with no capabilities and no setuid escalation.
    const rootExecs = execs.filter((l) => l !== 'exec "$@"');
    assert.equal(rootExecs.length, 2);
    for (const l of rootExecs) {
      assert.match(l, /^exec setpriv --reuid=dockhook --regid=dockhook /);
      assert.match(l, /--inh-caps=-all --bounding-set=-all --no-new-privs -- "\$@"$/);
    }
    // The plain exec is reached only when not root.
    const text = script.join('\n');
    assert.match(text, /if \[ "\$\(id -u\)" != 0 \]; then\s+exec "\$@"\s+fi/);
  });

  it('has a .dockerignore that keeps local state and secrets out of the build context', async () => {
    const entries = (await read('.dockerignore')).split('\n').map((l) => l.trim());
    for (const e of ['node_modules', 'dist', 'data', '.git', 'test-results', 'bench/results', '.env', 'auth']) assert.ok(entries.includes(e), `.dockerignore lists ${e}`);
  });
});

describe('ngrok.yml', () => {
  it('is an agent config v3 whose one endpoint forwards to dockhook:3000, with the API reachable from the compose network', async () => {
    const cfg = parseYaml(await read('ngrok.yml')) as Obj;
    assert.equal(String(cfg.version), '3');
    assert.equal(cfg.agent.web_addr, '0.0.0.0:4040');
    assert.equal(cfg.agent.authtoken, undefined, 'the token comes from NGROK_AUTHTOKEN, not the file');
    assert.equal(cfg.endpoints.length, 1);
    assert.equal(cfg.endpoints[0].upstream.url, 'http://dockhook:3000');
  });
});

describe('.env.example', () => {
  it('lists every setting of src/config.ts, with REGISTRY=localhost:5000 and no secret filled in', async () => {
    const source = await read('src/config.ts');
    const schema = source.slice(source.indexOf('const schema = z.object({'), source.indexOf('});', source.indexOf('const schema = z.object({')));
    const settings = [...schema.matchAll(/^ {2}([A-Z][A-Z0-9_]+):/gm)].map((m) => m[1]);
    assert.ok(settings.length > 20, 'found the schema');
    const example = await read('.env.example');
    // Set, or present as a commented-out example line.
    for (const name of settings) assert.match(example, new RegExp(`^(# )?${name}=`, 'm'), `${name} is in .env.example`);
    const env = parseEnv(example);
    assert.equal(env.REGISTRY, 'localhost:5000');
    // Exactly three values to fill; the registry's login is compose's business.
    const toFill = Object.entries(env).filter(([, v]) => v === '').map(([k]) => k).sort();
    assert.deepEqual(toFill, ['GITHUB_TOKEN', 'NGROK_AUTHTOKEN', 'WEBHOOK_SECRET']);
    assert.equal((example.match(/^# REQUIRED/gm) ?? []).length, 3);
    assert.equal(env.REGISTRY_PASSWORD, undefined);
  });

  it('is a valid configuration once the secrets are filled', async () => {
    const config = loadConfig(await filledEnv());
    assert.equal(config.registry, 'localhost:5000');
    assert.equal(config.registryAuth, undefined, 'outside compose, an open registry unless REGISTRY_USERNAME/PASSWORD are set');
  });
});

describe('scripts/make-htpasswd.sh', () => {
  it('writes a bcrypt entry the password verifies against, replacing the user and keeping others', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dockhook-htpasswd-'));
    const file = join(dir, 'htpasswd');
    const script = join(ROOT, 'scripts', 'make-htpasswd.sh');
    const make = (user: string, password: string) =>
      new Promise<void>((resolve, reject) => {
        // node + bcryptjs: always here after npm ci, unlike apache2-utils or Docker Hub's httpd image.
        const child = execFile('bash', [script, user], { env: { ...process.env, HTPASSWD_FILE: file, HTPASSWD_TOOL: 'node' } }, (err) => (err ? reject(err) : resolve()));
        child.stdin!.end(`${password}\n`);
      });
    try {
      await make('dockhook', 'first password');
      await make('other', 'x');
      await make('dockhook', 'second: password');
      const lines = (await readFile(file, 'utf8')).trim().split('\n');
      assert.deepEqual(lines.map((l) => l.split(':')[0]).sort(), ['dockhook', 'other']);
      const hash = lines.find((l) => l.startsWith('dockhook:'))!.slice('dockhook:'.length);
      assert.match(hash, /^\$2[aby]\$10\$/);
      assert.ok(bcrypt.compareSync('second: password', hash));
      assert.ok(!bcrypt.compareSync('first password', hash));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
