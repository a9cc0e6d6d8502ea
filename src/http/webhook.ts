import { Webhooks } from '@octokit/webhooks';
import express, { Router } from 'express';
import { AppError } from '../errors.js';
import { decideBuild } from '../intake.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BuildStore } from '../queue/store.js';

export interface WebhookDeps {
  secret: string;
  buildBranches: string[];
  store: BuildStore;
  log: Logger;
  metrics: Metrics;
  /** Wakes the worker after a build is queued. */
  onQueued: () => void;
  isStopping: () => boolean;
}

/** GitHub's own cap on a delivery; anything larger is not GitHub. */
export const MAX_DELIVERY_BYTES = 25 * 1024 * 1024;
const SIGNATURE = /^sha256=[0-9a-f]{64}$/;

function parsePayload(raw: Buffer, contentType: string | undefined): unknown {
  let text = raw.toString('utf8');
  if (contentType?.startsWith('application/x-www-form-urlencoded')) {
    const payload = new URLSearchParams(text).get('payload');
    if (payload === null) throw new AppError(400, 'form body has no payload field');
    text = payload;
  }
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError(400, 'body is not JSON', { hint: 'set the webhook content type to application/json or application/x-www-form-urlencoded' });
  }
}

/**
 * POST /webhook. The signature is checked over the raw bytes before anything
 * is parsed; the build is recorded durably before the 2xx, and runs after it.
 */
export function webhookRouter(deps: WebhookDeps): Router {
  const webhooks = new Webhooks({ secret: deps.secret });
  const router = Router();
  const rejected = (status: number, message: string, hint?: string) => {
    deps.metrics.deliveries.inc({ outcome: 'rejected' });
    return new AppError(status, message, { hint });
  };

  router.post('/webhook', express.raw({ type: () => true, limit: MAX_DELIVERY_BYTES }), async (req, res) => {
    if (deps.isStopping()) throw new AppError(503, 'dockhook is shutting down', { hint: 'redeliver this delivery from GitHub once it is back' });
    const signature = req.get('x-hub-signature-256');
    if (!signature) {
      const onlySha1 = req.get('x-hub-signature') !== undefined;
      throw rejected(401, onlySha1 ? 'only an SHA-1 signature was sent; dockhook requires X-Hub-Signature-256' : 'missing X-Hub-Signature-256', 'set the webhook secret in GitHub to the value of WEBHOOK_SECRET');
    }
    if (!SIGNATURE.test(signature)) throw rejected(401, 'malformed X-Hub-Signature-256', 'expected sha256=<64 hex digits>');
    const raw: Buffer = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const valid = raw.length > 0 && (await webhooks.verify(raw.toString('utf8'), signature).catch(() => false));
    if (!valid) throw rejected(401, 'signature does not match', 'the webhook secret in GitHub must equal WEBHOOK_SECRET');

    const event = req.get('x-github-event');
    const deliveryId = req.get('x-github-delivery');
    if (!event || !deliveryId) throw rejected(400, `missing ${!event ? 'X-GitHub-Event' : 'X-GitHub-Delivery'} header`);
    let payload: unknown;
    try {
      payload = parsePayload(raw, req.get('content-type'));
    } catch (err) {
      deps.metrics.deliveries.inc({ outcome: 'rejected' });
      throw err;
    }

    const log = deps.log.child({ delivery: deliveryId, event });
    const decision = decideBuild(event, payload, { deliveryId, buildBranches: deps.buildBranches });
    if (decision.kind === 'ignored') {
      deps.metrics.deliveries.inc({ outcome: 'ignored' });
      log.info({ reason: decision.reason }, 'delivery ignored');
      res.status(200).json({ ignored: decision.reason });
      return;
    }
    const request = decision.request;
    let result;
    try {
      result = deps.store.enqueue(request);
    } catch (err) {
      log.error({ err }, 'could not record the build');
      throw new AppError(503, 'could not record the build', { hint: 'check DATA_DIR is writable and has space, then redeliver from GitHub', cause: err });
    }
    const buildLog = log.child({ repo: `${request.owner}/${request.repo}`, sha: request.sha, build: result.build.id });
    deps.metrics.deliveries.inc({ outcome: result.outcome });
    if (result.outcome === 'duplicate') {
      buildLog.info({ state: result.build.state }, 'duplicate delivery; no second build');
      res.status(200).json({ duplicate: result.build.id });
      return;
    }
    buildLog.info({ pr: request.pullRequest?.number }, 'build queued');
    res.status(202).json({ build: result.build.id });
    deps.onQueued();
  });

  router.all('/webhook', (req, res) => {
    res.set('Allow', 'POST').status(405).json({ error: `${req.method} is not allowed on /webhook; GitHub POSTs deliveries here` });
  });
  return router;
}
