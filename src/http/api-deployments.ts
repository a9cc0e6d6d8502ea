import express, { Router } from 'express';
import type { Config } from '../config.js';
import { isValidRepositoryName, isValidTag } from '../docker-reference.js';
import { AppError } from '../errors.js';
import type { DeploymentRecord, Store } from '../store/store.js';
import { requireApiToken } from './api-auth.js';

export interface DeploymentsApiDeps {
  config: Pick<Config, 'apiToken' | 'apiTokenReads'>;
  store: Store;
  /** Runs a deploy of service:version here; undefined where this process deploys nothing (no DEPLOY_IMAGES, or ROLE=receiver). */
  deployVersion?: (service: string, version: string) => Promise<DeploymentRecord>;
}

const USAGE = { hint: 'send JSON {"service": "api", "version": "1.4.1"} with Content-Type: application/json' };

function parseBody(body: unknown): { service: string; version: string } {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new AppError(400, 'body must be a JSON object', USAGE);
  const b = body as Record<string, unknown>;
  const unknown = Object.keys(b).filter((k) => k !== 'service' && k !== 'version');
  if (unknown.length) throw new AppError(400, `unknown field ${unknown.join(', ')}`, USAGE);
  if (typeof b.service !== 'string' || !isValidRepositoryName(b.service)) throw new AppError(400, 'service must be a service_name from dockerInfo.json', USAGE);
  if (typeof b.version !== 'string' || !isValidTag(b.version)) throw new AppError(400, 'version must be a version tag that was pushed, such as "1.4.1"', USAGE);
  return { service: b.service, version: b.version };
}

/**
 * GET /api/deployments[?service=api&limit=20] (newest first), GET
 * /api/deployments/<id>, and POST /api/deployments {"service", "version"}:
 * deploy an earlier pushed version by the same health-gated swap (a
 * rollback). The POST needs API_TOKEN and answers when the deploy is over:
 * 201 with the deployment, whether it succeeded or failed.
 */
export function deploymentsApiRouter(deps: DeploymentsApiDeps): Router {
  const router = Router();
  const auth = { apiToken: deps.config.apiToken, apiTokenReads: deps.config.apiTokenReads };
  const read = requireApiToken(auth, 'read');
  const write = requireApiToken(auth, 'write');

  router.get('/api/deployments', read, async (req, res) => {
    const q = req.query as Record<string, unknown>;
    const unknown = Object.keys(q).filter((k) => k !== 'service' && k !== 'limit');
    if (unknown.length) throw new AppError(400, `unknown query parameter ${unknown.join(', ')}`, { hint: 'use service and limit' });
    if (q.service !== undefined && (typeof q.service !== 'string' || !isValidRepositoryName(q.service))) throw new AppError(400, 'service must be a service_name');
    const limit = q.limit === undefined ? 20 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 200) throw new AppError(400, 'limit must be a whole number from 1 to 200');
    res.json({ deployments: await deps.store.listDeployments({ service: q.service as string | undefined, limit }) });
  });

  router.get('/api/deployments/:id', read, async (req, res) => {
    const id = Number(req.params.id);
    const d = Number.isSafeInteger(id) && id > 0 ? await deps.store.getDeployment(id) : undefined;
    if (!d) throw new AppError(404, `deployment ${req.params.id} not found`, { hint: 'GET /api/deployments lists them' });
    res.json(d);
  });

  router.post('/api/deployments', write, express.json({ limit: '4kb', type: () => true }), async (req, res) => {
    const { service, version } = parseBody(req.body);
    if (!deps.deployVersion) {
      throw new AppError(409, 'this dockhook deploys nothing', { hint: 'set DEPLOY_IMAGES, and send the request to a dockhook with ROLE=all (a receiver has no engine to deploy on)' });
    }
    res.status(201).json(await deps.deployVersion(service, version));
  });
  return router;
}
