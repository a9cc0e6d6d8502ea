import type Docker from 'dockerode';
import type { RequestListener } from 'node:http';
import express from 'express';
import type { BuildLogs } from '../logs/build-logs.js';
import type { Config } from '../config.js';
import type { GitHubAccess } from '../github/access.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BuildRecord, DeploymentRecord, Store } from '../store/store.js';
import type { RegistryClient } from '../registry/client.js';
import { artifactsApiRouter } from './api-artifacts.js';
import { buildsApiRouter } from './api-builds.js';
import { deploymentsApiRouter } from './api-deployments.js';
import { imagesApiRouter } from './api-images.js';
import { triggerApiRouter } from './api-trigger.js';
import { errorHandler, notFound } from './error-handler.js';
import { healthRouter } from './health.js';
import { pagesRouter } from './pages.js';
import { webhookNodeHandler } from './webhook.js';

export interface AppDeps {
  config: Config;
  /** A worker serves only /healthz, /readyz and /metrics; receivers and `all` serve everything. */
  role?: 'all' | 'receiver' | 'worker';
  store: Store;
  logs: BuildLogs;
  docker: Docker;
  registry: RegistryClient;
  github: GitHubAccess;
  log: Logger;
  metrics: Metrics;
  /** Wakes the worker when a build is queued. */
  onQueued: () => void;
  /** A delivery or POST /api/builds recorded a new build (App mode: its check run shows as queued); must not throw. */
  announceQueued?: (build: BuildRecord) => void;
  isStopping: () => boolean;
  /** Why BUILDER cannot work on this engine, for /readyz. */
  builderProblem?: () => Promise<string | undefined>;
  /** Why the worker starts nothing new (its store is away), for /readyz. */
  workerProblem?: () => string | undefined;
  /** POST /api/deployments: a deploy of an earlier version, where this process deploys. */
  deployVersion?: (service: string, version: string) => Promise<DeploymentRecord>;
}

/** The pathname of a request URL, without the query string. */
function pathOf(url: string | undefined): string {
  const q = (url ?? '').indexOf('?');
  return q === -1 ? (url ?? '') : (url ?? '').slice(0, q);
}

/**
 * The HTTP face of dockhook. Every client is passed in; main.ts builds the
 * real ones, tests point them at local servers. /webhook, the hot path, is
 * served on node:http directly (Express cost more per delivery than everything
 * else a delivery needs, bench/results/); every other route is Express.
 */
export function createApp(deps: AppDeps): RequestListener {
  const onWebhook = webhookNodeHandler({
    secret: deps.config.webhookSecret,
    buildBranches: deps.config.buildBranches,
    store: deps.store,
    log: deps.log,
    metrics: deps.metrics,
    onQueued: deps.onQueued,
    isStopping: deps.isStopping,
    triggerPush: deps.config.triggerPush,
    checkRuns: deps.github.mode === 'app',
    rememberInstallation: (owner, repo, id) => deps.github.rememberInstallation(owner, repo, id),
    announceQueued: deps.announceQueued,
  });
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback, uniquelocal');
  app.use(healthRouter(deps));
  if (deps.role === 'worker') {
    app.use(notFound);
    app.use(errorHandler(deps.log));
    return app;
  }
  app.use(triggerApiRouter(deps));
  app.use(imagesApiRouter(deps));
  app.use(deploymentsApiRouter(deps));
  app.use(artifactsApiRouter(deps));
  app.use(buildsApiRouter(deps));
  app.use(pagesRouter(deps));
  app.use(notFound);
  app.use(errorHandler(deps.log));
  return (req, res) => {
    const path = pathOf(req.url);
    if (path === '/webhook' || path === '/webhook/') onWebhook(req, res);
    else app(req, res);
  };
}
