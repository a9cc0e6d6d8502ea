import { Router, type Request, type Response } from 'express';
import type { BuildLogs } from '../logs/build-logs.js';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { Store } from '../store/store.js';
import { requireApiToken } from './api-auth.js';
import { BUILD_SCRIPT } from './assets/build-script.js';
import { INDEX_SCRIPT } from './assets/index-script.js';
import { STYLE } from './assets/style.js';
import { pageOfBuilds, parseId, parseListQuery } from './build-query.js';
import { toBuildView } from './build-view.js';
import { html } from './html.js';
import { completeLines } from '../logs/build-logs.js';
import { renderBuildBody, renderNotFoundBody } from './page-build.js';
import { renderIndexBody } from './page-index.js';
import { pageHeaders, renderPage } from './page-layout.js';

export interface PagesDeps {
  config: Pick<Config, 'registry' | 'publicUrl' | 'apiToken' | 'apiTokenReads'>;
  store: Store;
  logs: BuildLogs;
}

const ASSETS: Record<string, { type: string; body: string }> = {
  'dockhook.css': { type: 'text/css; charset=utf-8', body: STYLE },
  'index.js': { type: 'text/javascript; charset=utf-8', body: INDEX_SCRIPT },
  'build.js': { type: 'text/javascript; charset=utf-8', body: BUILD_SCRIPT },
};

function sendPage(res: Response, status: number, title: string, body: ReturnType<typeof html>, script?: string): void {
  res.status(status).type('html').send(renderPage({ title, body, script }));
}

/** The address GitHub should deliver to: PUBLIC_URL when set, else what this request reached. */
function webhookUrl(req: Request, publicUrl: string | undefined): string {
  return `${publicUrl ?? `${req.protocol}://${req.get('host') ?? 'localhost'}`}/webhook`;
}

/**
 * Server-rendered pages: the builds at `/`, one build at `/builds/:id`, and
 * their own stylesheet and scripts at /assets (CSP allows nothing else).
 * Pages read like the API does: API_TOKEN_READS=true guards them the same way.
 */
export function pagesRouter(deps: PagesDeps): Router {
  const router = Router();
  const read = requireApiToken({ apiToken: deps.config.apiToken, apiTokenReads: deps.config.apiTokenReads }, 'read');
  // Read per request: the public URL may be discovered from ngrok after start-up.
  const viewOptions = () => ({ registry: deps.config.registry, publicUrl: deps.config.publicUrl });

  router.get('/assets/:name', pageHeaders, (req, res, next) => {
    const asset = ASSETS[req.params.name as string];
    if (!asset) return next();
    res.type(asset.type).send(asset.body);
  });

  router.get('/', read, pageHeaders, async (req, res) => {
    let query;
    try {
      query = parseListQuery(req.query as Record<string, unknown>);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      sendPage(res, err.status, 'Bad filter', html`<div class="heading"><h1>Bad filter</h1></div><p>${err.message}${err.hint ? `; ${err.hint}` : ''}.</p><p><a href="/">← All builds</a></p>`);
      return;
    }
    const page = await pageOfBuilds(deps.store, query, req.query.limit !== undefined);
    const body = renderIndexBody({
      builds: page.builds.map((b) => toBuildView(b, viewOptions())),
      next: page.next,
      filters: { repo: query.repo, state: query.state },
      webhookUrl: webhookUrl(req, deps.config.publicUrl),
      now: Date.now(),
    });
    sendPage(res, 200, 'Builds', body, 'index.js');
  });

  router.get('/builds/:id', read, pageHeaders, async (req, res) => {
    const idText = req.params.id as string;
    const id = parseId(idText);
    const build = id === undefined ? undefined : await deps.store.get(id);
    if (!build) {
      sendPage(res, 404, 'Build not found', renderNotFoundBody(idText));
      return;
    }
    const lines = completeLines(await deps.logs.read(build.id));
    const group = build.groupId === undefined ? await deps.store.listGroup(build.id) : undefined;
    const deployments = await deps.store.listDeployments({ buildId: build.id, limit: 20 });
    // The curl lines need an absolute URL: without PUBLIC_URL, the address this page was asked at.
    const view = toBuildView(build, { ...viewOptions(), origin: `${req.protocol}://${req.get('host')}` }, group, deployments);
    sendPage(res, 200, `Build #${build.id}`, renderBuildBody(view, lines, { tokenForReads: deps.config.apiTokenReads }), 'build.js');
  });

  return router;
}
