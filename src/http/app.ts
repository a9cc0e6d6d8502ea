import type Docker from 'dockerode';
import express, { type Express } from 'express';
import type { BuildLogs } from '../build-logs.js';
import type { Config } from '../config.js';
import type { GitHubClient } from '../github.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BuildStore } from '../queue/store.js';
import type { RegistryClient } from '../registry/client.js';
import { buildsApiRouter } from './api-builds.js';
import { imagesApiRouter } from './api-images.js';
import { triggerApiRouter } from './api-trigger.js';
import { errorHandler, notFound } from './error-handler.js';
import { healthRouter } from './health.js';
import { pagesRouter } from './pages.js';
import { webhookRouter } from './webhook.js';

export interface AppDeps {
  config: Config;
  store: BuildStore;
  logs: BuildLogs;
  docker: Docker;
  registry: RegistryClient;
  octokit: GitHubClient;
  log: Logger;
  metrics: Metrics;
  /** Wakes the worker when a build is queued. */
  onQueued: () => void;
  isStopping: () => boolean;
}

/** The HTTP face of dockhook. Every client is passed in; main.ts builds the real ones, tests point them at local servers. */
export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 'loopback, uniquelocal');
  app.use(healthRouter(deps));
  app.use(
    webhookRouter({
      secret: deps.config.webhookSecret,
      buildBranches: deps.config.buildBranches,
      store: deps.store,
      log: deps.log,
      metrics: deps.metrics,
      onQueued: deps.onQueued,
      isStopping: deps.isStopping,
    }),
  );
  // Routers for /api and the pages go here, one line each.
  app.use(triggerApiRouter(deps));
  app.use(imagesApiRouter(deps));
  app.use(buildsApiRouter(deps));
  app.use(pagesRouter(deps));
  app.use(notFound);
  app.use(errorHandler(deps.log));
  return app;
}
