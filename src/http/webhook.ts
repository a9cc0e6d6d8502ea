import { Webhooks } from '@octokit/webhooks';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { AppError } from '../errors.js';
import { isStoreUnavailable } from '../store/store-errors.js';
import { toErrorAnswer } from './error-handler.js';
import { decideBuild, type BuildRequest } from '../intake.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { BuildRecord, Store, EnqueueResult } from '../store/store.js';

export interface WebhookDeps {
  secret: string;
  buildBranches: string[];
  store: Store;
  log: Logger;
  metrics: Metrics;
  /** Wakes the worker after a build is queued. */
  onQueued: () => void;
  isStopping: () => boolean;
  /** TRIGGER_PUSH: push events are built too. */
  triggerPush?: boolean;
  /** App mode: check runs exist, so their Re-run requests are built. */
  checkRuns?: boolean;
  /** App mode: a delivery named the installation of its repository. */
  rememberInstallation?: (owner: string, repo: string, installationId: number) => void;
  /** A new build was recorded (App mode shows it as a queued check run); must not throw. */
  announceQueued?: (build: BuildRecord) => void;
}

/** GitHub's own cap on a delivery; anything larger is not GitHub. */
export const MAX_DELIVERY_BYTES = 25 * 1024 * 1024;
const SIGNATURE = /^sha256=[0-9a-f]{64}$/;
const TOO_LARGE = { error: "payload too large: the limit is 25 MiB, as GitHub's own", hint: 'GitHub never sends larger deliveries; check what is posting here' };

function parsePayload(body: string, contentType: string | undefined): unknown {
  let text = body;
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

export interface Answer {
  status: number;
  body: unknown;
  /** Called once the answer is written (wakes the worker). */
  after?: () => void;
}

/** Everything POST /webhook does, apart from reading the body and writing the answer. Throws AppError. */
function deliveryHandler(deps: WebhookDeps): (header: (name: string) => string | undefined, raw: Buffer) => Promise<Answer> {
  const webhooks = new Webhooks({ secret: deps.secret });
  const rejected = (status: number, message: string, hint?: string) => {
    deps.metrics.deliveries.inc({ outcome: 'rejected' });
    return new AppError(status, message, { hint });
  };
  // Group commit: deliveries verified in the same turn of the event loop are recorded in one
  // transaction; each is answered only after that commit, so every 2xx is still durable.
  let pending: { request: BuildRequest; resolve: (r: EnqueueResult) => void; reject: (e: unknown) => void }[] = [];
  const flush = () => {
    const batch = pending;
    pending = [];
    deps.store.enqueueMany(batch.map((b) => b.request)).then(
      (results) => batch.forEach((b, i) => b.resolve(results[i]!)),
      (err: unknown) => batch.forEach((b) => b.reject(err)),
    );
  };
  const enqueue = (request: BuildRequest) =>
    new Promise<EnqueueResult>((resolve, reject) => {
      if (pending.push({ request, resolve, reject }) === 1) setImmediate(flush);
    });
  return async (header, raw) => {
    if (deps.isStopping()) throw new AppError(503, 'dockhook is shutting down', { hint: 'redeliver this delivery from GitHub once it is back' });
    const signature = header('x-hub-signature-256');
    if (!signature) {
      const onlySha1 = header('x-hub-signature') !== undefined;
      throw rejected(401, onlySha1 ? 'only an SHA-1 signature was sent; dockhook requires X-Hub-Signature-256' : 'missing X-Hub-Signature-256', 'set the webhook secret in GitHub to the value of WEBHOOK_SECRET');
    }
    if (!SIGNATURE.test(signature)) throw rejected(401, 'malformed X-Hub-Signature-256', 'expected sha256=<64 hex digits>');
    const body = raw.toString('utf8');
    const valid = raw.length > 0 && (await webhooks.verify(body, signature).catch(() => false));
    if (!valid) throw rejected(401, 'signature does not match', 'the webhook secret in GitHub must equal WEBHOOK_SECRET');

    const event = header('x-github-event');
    const deliveryId = header('x-github-delivery');
    if (!event || !deliveryId) throw rejected(400, `missing ${!event ? 'X-GitHub-Event' : 'X-GitHub-Delivery'} header`);
    let payload: unknown;
    try {
      payload = parsePayload(body, header('content-type'));
    } catch (err) {
      deps.metrics.deliveries.inc({ outcome: 'rejected' });
      throw err;
    }

    const decision = decideBuild(event, payload, { deliveryId, buildBranches: deps.buildBranches, triggerPush: deps.triggerPush, checkRuns: deps.checkRuns });
    if (decision.kind === 'ignored') {
      deps.metrics.deliveries.inc({ outcome: 'ignored' });
      deps.log.info({ delivery: deliveryId, event, reason: decision.reason }, 'delivery ignored');
      return { status: 200, body: { ignored: decision.reason } };
    }
    const request = decision.request;
    if (decision.installationId !== undefined) deps.rememberInstallation?.(request.owner, request.repo, decision.installationId);
    let result;
    try {
      result = await enqueue(request);
    } catch (err) {
      if (isStoreUnavailable(err)) {
        deps.log.warn({ delivery: deliveryId, event, err: err.message }, 'could not record the build: the store cannot be reached; GitHub marks the delivery failed');
        throw err;
      }
      deps.log.error({ delivery: deliveryId, event, err }, 'could not record the build');
      throw new AppError(503, 'could not record the build', { hint: 'check DATA_DIR is writable and has space, then redeliver from GitHub', cause: err });
    }
    const fields = { delivery: deliveryId, event, repo: `${request.owner}/${request.repo}`, sha: request.sha, build: result.build.id };
    deps.metrics.deliveries.inc({ outcome: result.outcome });
    if (result.outcome === 'duplicate') {
      deps.log.info({ ...fields, state: result.build.state }, 'duplicate delivery; no second build');
      return { status: 200, body: { duplicate: result.build.id } };
    }
    deps.log.info({ ...fields, pr: request.pullRequest?.number, trigger: request.trigger }, 'build queued');
    const build = result.build;
    return {
      status: 202,
      body: { build: build.id },
      after: () => {
        deps.onQueued();
        deps.announceQueued?.(build);
      },
    };
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json), ...headers });
  res.end(json);
}

/**
 * POST /webhook on plain node:http: the hot path skips Express. The signature
 * is checked over the raw bytes before anything is parsed; the build is
 * recorded durably before the 2xx, and runs after it.
 */
export function webhookNodeHandler(deps: WebhookDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const handle = deliveryHandler(deps);
  return (req, res) => {
    if (req.method !== 'POST') return sendJson(res, 405, { error: `${req.method} is not allowed on /webhook; GitHub POSTs deliveries here` }, { allow: 'POST' });
    const declared = Number(req.headers['content-length'] ?? 0);
    if (declared > MAX_DELIVERY_BYTES) return sendJson(res, 413, TOO_LARGE);
    const chunks: Buffer[] = [];
    let size = 0;
    // A client that goes away mid-body: nobody is left to answer, and an unheard 'error' would crash.
    req.on('error', () => undefined);
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_DELIVERY_BYTES) {
        sendJson(res, 413, TOO_LARGE);
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      const raw = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size);
      const header = (name: string) => {
        const v = req.headers[name];
        return Array.isArray(v) ? v[0] : v;
      };
      handle(header, raw).then(
        (a) => {
          sendJson(res, a.status, a.body);
          a.after?.();
        },
        (err: unknown) => {
          const answer = toErrorAnswer(err, deps.log, { method: req.method, path: '/webhook' });
          sendJson(res, answer.status, answer.body, answer.headers);
        },
      );
    });
  };
}
