import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import Docker from 'dockerode';
import type { Config } from './config.js';
import { createGitHubAccess, type GitHubAccess } from './github/access.js';
import { createApp } from './http/app.js';
import type { Logger } from './log.js';
import type { BuildLogs } from './logs/build-logs.js';
import { FileBuildLogs } from './logs/file-logs.js';
import { PgBuildLogs } from './logs/pg-logs.js';
import { createMetrics, type Metrics } from './metrics.js';
import { loadPullCredentials } from './engine/pull-credentials.js';
import { createBuilderChooser } from './pipeline/builder-choice.js';
import { runPipeline } from './pipeline/run-build.js';
import { createBuildReporter, LogTap } from './github/build-reporter.js';
import { AppError, BuildError } from './errors.js';
import { openStore } from './store/open-store.js';
import { PgStore } from './store/postgres/pg-store.js';
import { withWriteRetries } from './store/retrying-store.js';
import type { Store } from './store/store.js';
import { Worker } from './worker/worker.js';
import { createRegistryClient, type RegistryClient } from './registry/client.js';
import { retentionAfterSuccess } from './registry/retention-hook.js';
import { createScrubber } from './secrets.js';
import { databasePassword } from './store/postgres/errors.js';
import { deployEngine, recoverDeploys } from './deploy/deploy-engine.js';
import { githubDeployReporter } from './deploy/github-reporter.js';
import { deployVersion } from './deploy/deploy-version.js';
import { startDeliveryRecovery } from './github/recover-deliveries.js';

export interface Service {
  url: string;
  server: Server;
  store: Store;
  /** Absent on a receiver (ROLE=receiver). */
  worker: Worker | undefined;
  logs: BuildLogs;
  metrics: Metrics;
  github: GitHubAccess;
  registry: RegistryClient;
  docker: Docker;
  /** Graceful stop: 503 to new deliveries, running builds get `graceMs`, the rest stay queued. */
  stop(graceMs?: number): Promise<void>;
}

export interface ServiceOptions {
  log: Logger;
  /** Defaults to the engine DOCKER_HOST names, else the local socket (what the docker CLI does). */
  docker?: Docker;
}

/** How often an idle worker looks for work when no notification came (PostgreSQL's LISTEN is the fast path). */
const POLL_MS = 5000;
/** A worker retries its writes this long while the store is away; past its lease another worker owns the build anyway. */
const WRITE_RETRY_MS = 10 * 60_000;

/** Wires the real clients from config, starts the HTTP server and, unless ROLE=receiver, the worker. */
export async function startService(config: Config, options: ServiceOptions): Promise<Service> {
  const log = options.log;
  const docker = options.docker ?? new Docker();
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, log });
  const logs: BuildLogs = store instanceof PgStore ? new PgBuildLogs(store.pool, store.notifier, log.child({ component: 'logs' })) : new FileBuildLogs(config.dataDir);
  const metrics = createMetrics();
  const github = createGitHubAccess({ auth: config.github, baseUrl: config.githubApiUrl, log });
  const registry = createRegistryClient({ url: config.registryUrl, auth: config.registryAuth });
  const pullCredentials = loadPullCredentials({ registry: config.registry, registryAuth: config.registryAuth, dockerConfigFile: config.dockerConfigFile, log });
  const scrub = createScrubber([
    config.webhookSecret,
    config.github.mode === 'token' ? config.github.token : config.github.privateKey,
    config.registryAuth?.password,
    config.apiToken,
    databasePassword(config.databaseUrl),
    ...pullCredentials.secrets(),
  ]);
  let stopping = false;
  const tap = new LogTap();
  const reporter = createBuildReporter({ github, store, publicUrl: () => config.publicUrl, prComment: config.prComment, tap, log });
  const chooseBuilder = createBuilderChooser(docker, config.builder, log);
  const runsBuilds = config.role !== 'receiver';
  const workerName = config.workerName ?? `${hostname()}-${process.pid}`;

  const deploy = config.deployImages.length
    ? {
        config: {
          docker: deployEngine(config.deployDockerHost, docker),
          images: config.deployImages,
          allowBinds: config.deployAllowBinds,
          envDir: config.deployEnvDir,
          environment: config.deployEnvironment,
        },
        reporter: githubDeployReporter(github, config.publicUrl),
      }
    : undefined;
  const worker = runsBuilds ? createWorker() : undefined;
  function createWorker(): Worker {
    const workerStore = withWriteRetries(store, { giveUpMs: WRITE_RETRY_MS, log: log.child({ component: 'worker' }) });
    return new Worker(
      workerStore,
      logs,
      {
        run: async (build, signal, out, progress) => {
          const octokit = await repoClient(github, build);
          return runPipeline(
            {
              octokit,
              docker,
              registry,
              store: workerStore,
              settings: { registry: config.registry, registryAuth: config.registryAuth, builder: chooseBuilder, pullCredentials, artifactMaxBytes: config.artifactMaxBytes },
              observePush: (seconds) => metrics.pushDuration.observe(seconds),
              deploy,
            },
            build,
            signal,
            {
              line: (text) => {
                const clean = scrub(text);
                tap.line(build.id, clean);
                out.line(clean);
              },
              close: () => out.close(),
            },
            progress,
          );
        },
        report: (build, state, description, silent) => reporter.report(build, state, description, silent),
        finished: (_build, outcome, ms) => {
          metrics.builds.inc({ outcome });
          metrics.buildDuration.observe(ms / 1000);
        },
        // KEEP_VERSIONS unset: keep every version, so no hook at all.
        afterSuccess: config.keepVersions ? retentionAfterSuccess({ registry, store: workerStore, keep: config.keepVersions, log }) : undefined,
      },
      {
        concurrency: config.buildConcurrency,
        timeoutMs: config.buildTimeoutSeconds * 1000,
        retryWindowMs: config.retryWindowSeconds * 1000,
        retryInitialDelayMs: config.retryInitialDelaySeconds * 1000,
        // Unique per process: a restarted worker with the same name takes its dead predecessor's builds over like any other.
        lease: { owner: `${workerName}/${randomUUID().slice(0, 8)}`, ms: config.leaseSeconds * 1000 },
        pollMs: POLL_MS,
      },
      log.child({ component: 'worker', worker: workerName }),
      scrub,
    );
  }

  const app = createApp({
    config,
    role: config.role,
    store,
    logs,
    docker,
    registry,
    github,
    log,
    metrics,
    // In one process the worker hears of it at once; across processes PostgreSQL's NOTIFY tells them.
    onQueued: () => worker?.kick(),
    announceQueued: (build) => void reporter.queued(build),
    builderProblem: () => chooseBuilder.problem(),
    workerProblem: () => worker?.storeProblem,
    deployVersion:
      deploy && runsBuilds
        ? (service, version) =>
            deployVersion({ deploy: deploy.config, reporter: deploy.reporter, store, registry: config.registry, registryAuth: config.registryAuth, github }, service, version)
        : undefined,
    isStopping: () => stopping,
  });
  const server = createServer(app);
  // GitHub waits 10 s; a client that dribbles its body should not hold a socket longer.
  server.requestTimeout = 30_000;
  server.headersTimeout = 15_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host === '0.0.0.0' || host === '[::]' ? '127.0.0.1' : host}:${address.port}`;
  if (store instanceof PgStore) await store.notifier.ready();
  if (worker && deploy) await recoverDeploys(deploy.config.docker, config.deployImages, log.child({ component: 'deploy' }));
  await worker?.start();
  // No missed delivery (issue 15): what GitHub failed to deliver is asked for again, now and every RECOVER_DELIVERIES_MINUTES.
  const recovery =
    config.role !== 'worker' && config.recoverDeliveriesMinutes > 0
      ? startDeliveryRecovery({ github, store, webhookRepos: config.webhookRepos, webhookUrl: () => (config.publicUrl ? `${config.publicUrl}/webhook` : undefined), everyMinutes: config.recoverDeliveriesMinutes, log, metrics })
      : undefined;
  log.info(
    { url, role: config.role, store: store.kind, registry: config.registry, ...(worker ? { worker: workerName, concurrency: config.buildConcurrency, builder: config.builder } : {}) },
    'dockhook is listening',
  );
  // Which engine (Docker or Podman) and builder, logged once it answers; an engine down now is asked at the first build.
  if (worker) void chooseBuilder.probe();

  return {
    url,
    server,
    store,
    worker,
    logs,
    metrics,
    github,
    registry,
    docker,
    async stop(graceMs = config.shutdownGraceSeconds * 1000) {
      await recovery?.stop();
      if (stopping) return;
      stopping = true;
      log.info({ graceMs }, 'stopping: new deliveries get 503, running builds may finish');
      await worker?.stop(graceMs);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        // A client that keeps a connection open (a log stream, a slow reader) must not hold the exit.
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
      await store.close();
      log.info('stopped');
    },
  };
}

/** The repository's GitHub client for a build; a repository the App cannot act for fails the build with the reason, not a retry loop. */
async function repoClient(github: GitHubAccess, build: { owner: string; repo: string }) {
  try {
    return await github.forRepo(build.owner, build.repo);
  } catch (err) {
    if (!(err instanceof AppError)) throw new BuildError(`GitHub: ${(err as Error).message}`, { transient: true, cause: err });
    throw new BuildError(`${err.message}${err.hint ? `: ${err.hint}` : ''}`, { cause: err });
  }
}
