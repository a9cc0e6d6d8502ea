import { Router, type Request } from 'express';
import type { BuildLogs } from '../logs/build-logs.js';
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { BuildRecord, Store } from '../store/store.js';
import { requireApiToken } from './api-auth.js';
import { pageOfBuilds, parseId, parseListQuery, requireBuildId } from './build-query.js';
import { toBuildView } from './build-view.js';
import { withoutAnsi } from './log-lines.js';
import { streamBuildLog, wantsEventStream } from './log-stream.js';

export interface BuildsApiDeps {
  config: Pick<Config, 'registry' | 'publicUrl' | 'apiToken' | 'apiTokenReads'>;
  store: Store;
  logs: BuildLogs;
  isStopping: () => boolean;
}

/** Looks a build up by the :id of the path: 400 when it is not an id, 404 when there is no such build. */
export async function findBuild(store: Store, idText: string): Promise<BuildRecord> {
  const id = requireBuildId(idText);
  const build = await store.get(id);
  if (!build) throw new AppError(404, `build ${id} not found`, { hint: 'GET /api/builds lists the builds' });
  return build;
}

interface LogQuery {
  after: number;
  stripAnsi: boolean;
}

function parseLogQuery(req: Request): LogQuery {
  const query = req.query as Record<string, unknown>;
  const unknown = Object.keys(query).filter((k) => k !== 'after' && k !== 'ansi');
  if (unknown.length) throw new AppError(400, `unknown query parameter ${unknown.join(', ')}`, { hint: 'use after, ansi' });
  let after = 0;
  if (query.after !== undefined && query.after !== '0') {
    const n = typeof query.after === 'string' ? parseId(query.after) : undefined;
    if (n === undefined) throw new AppError(400, 'after must be a line count (a whole number)');
    after = n;
  }
  // EventSource sends the id of the last event it saw when it reconnects; ids are line numbers.
  const lastEventId = parseId(req.get('last-event-id') ?? '');
  if (lastEventId !== undefined) after = Math.max(after, lastEventId);
  if (query.ansi !== undefined && query.ansi !== 'keep' && query.ansi !== 'strip') throw new AppError(400, 'ansi must be keep or strip');
  return { after, stripAnsi: query.ansi === 'strip' };
}

/**
 * Read-only JSON API over the builds: the list, one build, its log (plain or
 * as a live event stream). Reads are open unless API_TOKEN_READS=true.
 */
export function buildsApiRouter(deps: BuildsApiDeps): Router {
  const router = Router();
  const read = requireApiToken({ apiToken: deps.config.apiToken, apiTokenReads: deps.config.apiTokenReads }, 'read');
  // Read per request: the public URL may be discovered from ngrok after start-up.
  const viewOptions = () => ({ registry: deps.config.registry, publicUrl: deps.config.publicUrl });

  router.get('/api/builds', read, async (req, res) => {
    const query = parseListQuery(req.query as Record<string, unknown>);
    const page = await pageOfBuilds(deps.store, query, req.query.limit !== undefined);
    res.set('Cache-Control', 'no-cache');
    res.json({ builds: page.builds.map((b) => toBuildView(b, viewOptions())), next: page.next === null ? null : `/api/builds?${page.next}` });
  });

  router.get('/api/builds/:id', read, async (req, res) => {
    const build = await findBuild(deps.store, req.params.id as string);
    const group = build.groupId === undefined ? await deps.store.listGroup(build.id) : undefined;
    res.set('Cache-Control', 'no-cache');
    res.json(toBuildView(build, viewOptions(), group, await deps.store.listDeployments({ buildId: build.id, limit: 20 })));
  });

  router.get('/api/builds/:id/log', read, async (req, res) => {
    const build = await findBuild(deps.store, req.params.id as string);
    const options = parseLogQuery(req);
    if (wantsEventStream(req)) {
      streamBuildLog(res, deps, build.id, options);
      return;
    }
    const text = await deps.logs.read(build.id);
    res.set('Cache-Control', 'no-cache');
    res.type('text/plain; charset=utf-8').send(options.stripAnsi ? withoutAnsi(text) : text);
  });

  return router;
}
