import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import Docker from 'dockerode';
import { pino } from 'pino';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import type { BuildRecord } from '../../src/store/store.js';
import { startService, type Service } from '../../src/service.js';
import { ensureBusyboxImage } from './base-image.js';
import { mergedPullRequestPayload, postDelivery, type SignOptions } from './deliveries.js';
import { startFakeGitHub, type FakeGitHub } from './fake-github.js';
import type { CreateAppOptions, FakeApp } from './fake-github-app.js';
import { createGitRepo, type GitRepo } from './git-repo.js';
import { startRegistry, type TestRegistry, type TestRegistryOptions } from './registry-server.js';

const run = promisify(execFile);

export const SECRET = 'test-webhook-secret-5f2a';
export const TOKEN = 'ghp_testtoken0123456789';

export interface HarnessOptions {
  registry?: TestRegistryOptions;
  /** Use this registry instead of starting one (closed by its owner). */
  sharedRegistry?: TestRegistry;
  /** Reach the engine through this unix socket instead of the default one. */
  dockerSocket?: string;
  /** Extra environment for loadConfig, e.g. { BUILD_CONCURRENCY: '1' }. */
  env?: Record<string, string>;
  /**
   * GitHub App mode: the fake GitHub gets an App whose key dockhook is given
   * (APP_ID + PRIVATE_KEY, no GITHUB_TOKEN), installed on each owner that
   * createRepo names; merge() deliveries carry that installation.
   */
  app?: CreateAppOptions;
}

export interface Harness {
  url: string;
  service: Service;
  github: FakeGitHub;
  /** App mode: the App, and the installation of each owner createRepo named. */
  app?: FakeApp;
  installations: Map<string, number>;
  registry: TestRegistry;
  config: Config;
  dataDir: string;
  /** A real git repository served by the fake GitHub as owner/name. */
  createRepo(owner: string, name: string, files: Record<string, string | Buffer>): Promise<GitRepo>;
  deliver(payload: unknown, opts?: SignOptions & { headers?: Record<string, string> }): ReturnType<typeof postDelivery>;
  /** Delivers a merged pull request of `sha` (default: the repo's head) and returns the answer. */
  merge(owner: string, name: string, sha: string, opts?: { number?: number; mergedAt?: string; branch?: string; id?: string }): ReturnType<typeof postDelivery>;
  waitForBuild(id: number, timeoutMs?: number): Promise<BuildRecord>;
  /** dockhook's own JSON log lines so far. */
  logText(): Promise<string>;
  close(): Promise<void>;
}

export function dockhookEnv(github: FakeGitHub, registry: TestRegistry, dataDir: string, extra: Record<string, string> = {}): Record<string, string> {
  return {
    WEBHOOK_SECRET: SECRET,
    GITHUB_TOKEN: TOKEN,
    GITHUB_API_URL: github.apiUrl,
    REGISTRY: registry.host,
    PORT: '0',
    HOST: '127.0.0.1',
    DATA_DIR: dataDir,
    LOG_LEVEL: 'debug',
    RETRY_INITIAL_DELAY_SECONDS: '0.5',
    RETRY_WINDOW_SECONDS: '20',
    ...extra,
  };
}

export async function startHarness(opts: HarnessOptions = {}): Promise<Harness> {
  await ensureBusyboxImage();
  const dataDir = await mkdtemp(join(tmpdir(), 'dockhook-data-'));
  const github = await startFakeGitHub({ token: TOKEN });
  const registry = opts.sharedRegistry ?? (await startRegistry(opts.registry));
  const app = opts.app ? github.createApp(opts.app) : undefined;
  const installations = new Map<string, number>();
  const appEnv: Record<string, string> = app ? { GITHUB_TOKEN: '', APP_ID: String(app.appId), PRIVATE_KEY: app.privateKey } : {};
  const config = loadConfig(dockhookEnv(github, registry, dataDir, { ...appEnv, ...opts.env }));
  const logFile = join(dataDir, 'dockhook.log');
  const log = createLogger(config.logLevel, pino.destination({ dest: logFile, sync: true }));
  const service = await startService(config, { log, docker: opts.dockerSocket ? new Docker({ socketPath: opts.dockerSocket }) : undefined });
  const repos: GitRepo[] = [];

  const harness: Harness = {
    url: service.url,
    service,
    github,
    app,
    installations,
    registry,
    config,
    dataDir,
    async createRepo(owner, name, files) {
      const repo = await createGitRepo(files);
      repos.push(repo);
      github.addRepo(owner, name, repo);
      if (app && !installations.has(owner)) installations.set(owner, github.installApp(app.appId, { account: owner, repositories: 'all' }).installationId);
      return repo;
    },
    deliver: (payload, signOpts) => postDelivery(`${service.url}/webhook`, SECRET, payload, signOpts),
    merge: (owner, name, sha, o = {}) => {
      const payload = mergedPullRequestPayload({ owner, repo: name, sha, number: o.number, mergedAt: o.mergedAt, branch: o.branch });
      const installation = installations.get(owner);
      if (installation !== undefined) payload.installation = { id: installation, node_id: `MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9u${installation}` };
      return postDelivery(`${service.url}/webhook`, SECRET, payload, { id: o.id });
    },
    async waitForBuild(id, timeoutMs = 120_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const build = await service.store.get(id);
        if (build && (build.state === 'succeeded' || build.state === 'failed') && !service.worker?.isRunning(id)) return (await service.store.get(id))!;
        if (Date.now() > deadline) throw new Error(`build ${id} still ${build?.state} after ${timeoutMs} ms: ${build?.failure ?? ''}\n${await service.logs.read(id)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    },
    logText: () => readFile(logFile, 'utf8'),
    async close() {
      await service.stop(0);
      await github.close();
      if (!opts.sharedRegistry) await registry.close();
      await Promise.all(repos.map((r) => r.cleanup()));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
  return harness;
}

/** The docker CLI, for checks a person would make by hand (pull, run, inspect). */
export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await run('docker', args, { maxBuffer: 16 * 1024 * 1024 });
  return stdout.trim();
}

export async function dockerFails(...args: string[]): Promise<string> {
  try {
    await run('docker', args);
  } catch (err) {
    return String((err as { stderr?: string }).stderr ?? err);
  }
  throw new Error(`docker ${args.join(' ')} succeeded but was expected to fail`);
}
