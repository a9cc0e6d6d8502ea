import { createPrivateKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';

/**
 * Every setting dockhook reads, with its default, in one table. Nothing else in
 * src/ reads process.env: main.ts calls loadConfig() and passes the result in.
 */
const positiveInt = (name: string) =>
  z.coerce.number({ error: `${name} must be a number` }).int(`${name} must be a whole number`).positive(`${name} must be greater than 0`);

const registryHost = z
  .string()
  .regex(/^[a-zA-Z0-9.-]+(:[0-9]{1,5})?$/, 'REGISTRY must be host[:port], without a scheme or path (for example localhost:5000)');

const boolish = z.enum(['true', 'false', '1', '0', 'yes', 'no']).transform((v) => ['true', '1', 'yes'].includes(v));

const schema = z.object({
  WEBHOOK_SECRET: z.string().min(1),
  // One of the two modes: a token (the default), or a GitHub App (APP_ID + PRIVATE_KEY, Probot's names).
  GITHUB_TOKEN: z.string().min(1).optional(),
  APP_ID: z.string().regex(/^[0-9]+$/, "APP_ID must be the App's numeric ID (its settings page shows it as App ID)").optional(),
  PRIVATE_KEY: z.string().optional(),
  PR_COMMENT: boolish.default(false),
  TRIGGER_PUSH: boolish.default(false),
  RECOVER_DELIVERIES_MINUTES: z.coerce.number({ error: 'RECOVER_DELIVERIES_MINUTES must be a number' }).min(0, 'RECOVER_DELIVERIES_MINUTES must be 0 (off) or more').default(10),
  GITHUB_API_URL: z.url().default('https://api.github.com'),
  REGISTRY: registryHost,
  REGISTRY_USERNAME: z.string().optional(),
  REGISTRY_PASSWORD: z.string().optional(),
  REGISTRY_URL: z.url().optional(),
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  DATA_DIR: z.string().default('./data'),
  BUILD_BRANCHES: z.string().optional(),
  PUBLIC_URL: z.url().optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  BUILD_CONCURRENCY: positiveInt('BUILD_CONCURRENCY').default(2),
  BUILD_TIMEOUT_SECONDS: positiveInt('BUILD_TIMEOUT_SECONDS').default(1800),
  SHUTDOWN_GRACE_SECONDS: z.coerce.number().min(0).default(60),
  RETRY_WINDOW_SECONDS: z.coerce.number().min(0).default(300),
  RETRY_INITIAL_DELAY_SECONDS: z.coerce.number().positive().default(5),
  BUILDER: z.enum(['auto', 'buildkit', 'classic']).default('auto'),
  API_TOKEN: z.string().min(1).optional(),
  API_TOKEN_READS: boolish.default(false),
  KEEP_VERSIONS: positiveInt('KEEP_VERSIONS').optional(),
  // Deploys (issue 14): nothing is deployed unless the operator names the images.
  DEPLOY_IMAGES: z.string().optional(),
  DEPLOY_ALLOW_BINDS: z
    .string()
    .refine((v) => v.split(',').map((x) => x.trim()).filter(Boolean).every((x) => x.startsWith('/')), 'DEPLOY_ALLOW_BINDS must be a comma-separated list of absolute host paths (e.g. /srv/shared)')
    .optional(),
  DEPLOY_ENV_DIR: z.string().optional(),
  DEPLOY_DOCKER_HOST: z
    .string()
    .regex(/^(unix:\/\/\/.+|tcp:\/\/[^\s/]+:\d+)$/, 'DEPLOY_DOCKER_HOST must be unix:///path/to/docker.sock or tcp://host:2375')
    .optional(),
  DEPLOY_ENVIRONMENT: z.string().min(1).max(255).default('production'),
  // 1 GiB: the tar of one artifact path as the engine sends it, before gzip.
  ARTIFACT_MAX_BYTES: positiveInt('ARTIFACT_MAX_BYTES').default(1024 ** 3),
  NGROK_API_URL: z.url().optional(),
  WEBHOOK_REPOS: z.string().optional(),
  // Read from a file instead (Docker's secrets convention); compose makes REGISTRY_PASSWORD_FILE itself.
  WEBHOOK_SECRET_FILE: z.string().optional(),
  GITHUB_TOKEN_FILE: z.string().optional(),
  PRIVATE_KEY_FILE: z.string().optional(),
  REGISTRY_PASSWORD_FILE: z.string().optional(),
  API_TOKEN_FILE: z.string().optional(),
  // The Docker CLI's own: its config.json holds logins for the registries base images come from.
  DOCKER_CONFIG: z.string().optional(),
  // Unset: SQLite in DATA_DIR. Set: the PostgreSQL that receivers and workers on many hosts share.
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\/[^\s]+$/, 'DATABASE_URL must be postgres://user:password@host:5432/database')
    .optional(),
  DATABASE_URL_FILE: z.string().optional(),
  ROLE: z.enum(['all', 'receiver', 'worker'], { error: 'ROLE must be all, receiver or worker' }).default('all'),
  LEASE_SECONDS: positiveInt('LEASE_SECONDS').default(30),
  WORKER_NAME: z.string().regex(/^[A-Za-z0-9._:@-]{1,100}$/, 'WORKER_NAME: letters, digits and . _ : @ - only').optional(),
});

/** The secrets that may come from a file named by NAME_FILE. */
const SECRETS_FROM_FILES = ['WEBHOOK_SECRET', 'GITHUB_TOKEN', 'PRIVATE_KEY', 'REGISTRY_PASSWORD', 'API_TOKEN', 'DATABASE_URL'] as const;

export interface Config {
  webhookSecret: string;
  /** How dockhook authenticates to GitHub: a token (GITHUB_TOKEN), or as a GitHub App (APP_ID + PRIVATE_KEY). */
  github: GitHubAuthConfig;
  githubApiUrl: string;
  registry: string;
  /** Where dockhook itself reaches the registry's HTTP API (default http://REGISTRY, https for non-local hosts). */
  registryUrl: string;
  registryAuth?: { username: string; password: string };
  port: number;
  host: string;
  dataDir: string;
  /** Globs; empty means "the repository's default branch". */
  buildBranches: string[];
  publicUrl?: string;
  logLevel: string;
  buildConcurrency: number;
  buildTimeoutSeconds: number;
  shutdownGraceSeconds: number;
  retryWindowSeconds: number;
  retryInitialDelaySeconds: number;
  /** auto = BuildKit where the engine supports it, else classic. */
  builder: 'auto' | 'buildkit' | 'classic';
  apiToken?: string;
  apiTokenReads: boolean;
  keepVersions?: number;
  /** DEPLOY_IMAGES: the service_names that may be deployed; [] deploys nothing. */
  deployImages: string[];
  /** DEPLOY_ALLOW_BINDS: absolute host paths a repository may bind-mount. */
  deployAllowBinds: string[];
  deployEnvDir?: string;
  /** Where deploys run; undefined: the engine that builds. */
  deployDockerHost?: string;
  deployEnvironment: string;
  /** The largest artifact (the tar of one path, before gzip) a build may copy out, in bytes. */
  artifactMaxBytes: number;
  /** PR_COMMENT: one comment per pull request, updated with each build's images. */
  prComment: boolean;
  /** TRIGGER_PUSH: build pushes to build branches, not only merged pull requests. */
  triggerPush: boolean;
  /** How often failed deliveries are looked for and redelivered; 0 = never. */
  recoverDeliveriesMinutes: number;
  ngrokApiUrl?: string;
  webhookRepos: string[];
  /** $DOCKER_CONFIG/config.json (default ~/.docker/config.json): pull credentials for other registries. */
  dockerConfigFile: string;
  /** PostgreSQL, shared by every receiver and worker; undefined means SQLite in dataDir. */
  databaseUrl?: string;
  /** receiver: webhook, API and pages; worker: builds (and /healthz, /readyz, /metrics); all: both. */
  role: 'all' | 'receiver' | 'worker';
  leaseSeconds: number;
  /** This process's name on the builds it claims (default host name and pid). */
  workerName?: string;
}

export type GitHubAuthConfig = { mode: 'token'; token: string } | { mode: 'app'; appId: number; privateKey: string };

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

function isLocalHost(host: string): boolean {
  const name = host.replace(/:\d+$/, '');
  return name === 'localhost' || name.startsWith('127.') || name === '[::1]';
}

export type ReadSecret = (path: string) => string;

/**
 * NAME_FILE → NAME: the file's content without its final newline. Both set is
 * an error rather than a silent choice. Problems name the variable and the
 * path, never the content.
 */
function readSecretFiles(present: Record<string, string>, readSecret: ReadSecret): { name: string; text: string }[] {
  const problems: { name: string; text: string }[] = [];
  const problem = (name: string, text: string) => problems.push({ name, text });
  for (const name of SECRETS_FROM_FILES) {
    const path = present[`${name}_FILE`];
    if (path === undefined) continue;
    if (present[name] !== undefined) {
      problem(name, `${name} and ${name}_FILE are both set: keep one of them`);
      continue;
    }
    let value: string;
    try {
      value = readSecret(path).replace(/\r?\n$/, '');
    } catch (err) {
      problem(name, `${name}_FILE: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
      continue;
    }
    if (value === '') problem(name, `${name}_FILE: ${path} is empty`);
    else present[name] = value;
  }
  return problems;
}

/** Reads the environment (already merged with .env by main.ts) and fails naming every bad variable. */
export function loadConfig(env: Record<string, string | undefined> = process.env, readSecret: ReadSecret = (path) => readFileSync(path, 'utf8')): Config {
  // An empty value is as good as missing: `WEBHOOK_SECRET=` in .env must not start a server that accepts anything.
  const present = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''));
  const fileProblems = readSecretFiles(present, readSecret);
  const parsed = schema.safeParse(present);
  const lines = [...fileProblems.map((p) => p.text)];
  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      const name = String(issue.path[0] ?? '');
      // A secret whose file could not be read is already on the list.
      if (fileProblems.some((p) => p.name === name)) continue;
      const missing = issue.code === 'invalid_type' && present[name] === undefined;
      const orFile = (SECRETS_FROM_FILES as readonly string[]).includes(name) ? ` (or name a file holding it in ${name}_FILE)` : '';
      lines.push(missing ? `${name} is required but missing or empty${orFile}` : `${name}: ${issue.message}`);
    }
  }
  if (lines.length || !parsed.success) {
    throw new ConfigError(`invalid configuration:\n  ${lines.join('\n  ')}\nSet it in the environment or in .env (see .env.example).`);
  }
  const e = parsed.data;
  if ((e.REGISTRY_USERNAME === undefined) !== (e.REGISTRY_PASSWORD === undefined)) {
    throw new ConfigError('invalid configuration:\n  REGISTRY_USERNAME and REGISTRY_PASSWORD (or REGISTRY_PASSWORD_FILE) must be set together');
  }
  if (e.ROLE !== 'all' && e.DATABASE_URL === undefined) {
    throw new ConfigError(
      `invalid configuration:\n  ROLE=${e.ROLE} needs DATABASE_URL: receivers and workers on different processes share their builds through PostgreSQL (SQLite serves ROLE=all only)`,
    );
  }
  const github = githubAuth(e);
  const scheme = isLocalHost(e.REGISTRY) ? 'http' : 'https';
  return {
    webhookSecret: e.WEBHOOK_SECRET,
    github,
    prComment: e.PR_COMMENT,
    triggerPush: e.TRIGGER_PUSH,
    recoverDeliveriesMinutes: e.RECOVER_DELIVERIES_MINUTES,
    githubApiUrl: e.GITHUB_API_URL.replace(/\/+$/, ''),
    registry: e.REGISTRY,
    registryUrl: (e.REGISTRY_URL ?? `${scheme}://${e.REGISTRY}`).replace(/\/+$/, ''),
    registryAuth:
      e.REGISTRY_USERNAME !== undefined && e.REGISTRY_PASSWORD !== undefined
        ? { username: e.REGISTRY_USERNAME, password: e.REGISTRY_PASSWORD }
        : undefined,
    port: e.PORT,
    host: e.HOST,
    dataDir: e.DATA_DIR,
    buildBranches: splitList(e.BUILD_BRANCHES),
    publicUrl: e.PUBLIC_URL?.replace(/\/+$/, ''),
    logLevel: e.LOG_LEVEL,
    buildConcurrency: e.BUILD_CONCURRENCY,
    buildTimeoutSeconds: e.BUILD_TIMEOUT_SECONDS,
    shutdownGraceSeconds: e.SHUTDOWN_GRACE_SECONDS,
    retryWindowSeconds: e.RETRY_WINDOW_SECONDS,
    retryInitialDelaySeconds: e.RETRY_INITIAL_DELAY_SECONDS,
    builder: e.BUILDER,
    apiToken: e.API_TOKEN,
    apiTokenReads: e.API_TOKEN_READS,
    keepVersions: e.KEEP_VERSIONS,
    artifactMaxBytes: e.ARTIFACT_MAX_BYTES,
    deployImages: splitList(e.DEPLOY_IMAGES),
    deployAllowBinds: splitList(e.DEPLOY_ALLOW_BINDS),
    deployEnvDir: e.DEPLOY_ENV_DIR,
    deployDockerHost: e.DEPLOY_DOCKER_HOST,
    deployEnvironment: e.DEPLOY_ENVIRONMENT,
    ngrokApiUrl: e.NGROK_API_URL,
    webhookRepos: splitList(e.WEBHOOK_REPOS),
    // HOME is the user's, not a dockhook setting: read as the docker CLI reads it.
    dockerConfigFile: join(e.DOCKER_CONFIG ?? join(present.HOME ?? homedir(), '.docker'), 'config.json'),
    databaseUrl: e.DATABASE_URL,
    role: e.ROLE,
    leaseSeconds: e.LEASE_SECONDS,
    workerName: e.WORKER_NAME,
  };
}

type Parsed = z.infer<typeof schema>;

/** Token or App: exactly one of them, with a key that parses, named by the variables the user set. */
function githubAuth(e: Parsed): GitHubAuthConfig {
  const fail = (line: string) => {
    throw new ConfigError(`invalid configuration:\n  ${line}`);
  };
  const app = e.APP_ID !== undefined || e.PRIVATE_KEY !== undefined;
  if (e.GITHUB_TOKEN !== undefined && app) {
    fail(`GITHUB_TOKEN and ${e.APP_ID !== undefined ? 'APP_ID' : 'PRIVATE_KEY'} are both set: use a token (GITHUB_TOKEN) or a GitHub App (APP_ID + PRIVATE_KEY), not both`);
  }
  if (!app) {
    if (e.GITHUB_TOKEN === undefined) fail('GITHUB_TOKEN is required but missing or empty (or name a file holding it in GITHUB_TOKEN_FILE); for a GitHub App set APP_ID and PRIVATE_KEY instead');
    return { mode: 'token', token: e.GITHUB_TOKEN! };
  }
  if (e.APP_ID === undefined) fail("APP_ID is required with PRIVATE_KEY: the App's numeric ID, on its settings page");
  if (e.PRIVATE_KEY === undefined) fail("PRIVATE_KEY (or PRIVATE_KEY_FILE) is required with APP_ID: the App's private key, generated on its settings page");
  if (e.WEBHOOK_REPOS !== undefined) {
    fail("WEBHOOK_REPOS cannot be used with a GitHub App: the App's own webhook delivers every installed repository's events; unset WEBHOOK_REPOS and set the App's webhook URL instead");
  }
  return { mode: 'app', appId: Number(e.APP_ID), privateKey: decodePrivateKey(e.PRIVATE_KEY!, fail) };
}

/** A PEM, a PEM on one line with \n escapes (how .env files and CI secrets carry it), or the PEM in base64. */
function decodePrivateKey(text: string, fail: (line: string) => never): string {
  let pem = text.trim();
  if (!pem.startsWith('-----BEGIN')) {
    const decoded = Buffer.from(pem, 'base64').toString('utf8').trim();
    if (decoded.startsWith('-----BEGIN')) pem = decoded;
  }
  pem = pem.replace(/\\n/g, '\n');
  if (!pem.startsWith('-----BEGIN')) fail("PRIVATE_KEY is not a PEM private key: give the .pem file GitHub generated (PRIVATE_KEY_FILE=path), its text, or its base64");
  try {
    const key = createPrivateKey(pem);
    if (key.asymmetricKeyType !== 'rsa') fail(`PRIVATE_KEY is a ${key.asymmetricKeyType} key; GitHub Apps sign with RSA keys: generate one on the App's settings page`);
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    fail("PRIVATE_KEY cannot be read as a private key (is it cut short?): generate a new one on the App's settings page if in doubt");
  }
  return `${pem}\n`;
}
