import { createHmac, randomUUID } from 'node:crypto';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { sign } from '@octokit/webhooks-methods';
import { signDelivery } from './deliveries.js';
import {
  apiHeaders,
  notFound,
  now,
  send,
  validationFailed,
  type Ctx,
  type RepoEntry,
} from './fake-github-http.js';
import type { AppEntry, FakeApps, FakeCore } from './fake-github-app.js';
import type { Hook } from './fake-github.js';

/**
 * The fake GitHub as a webhook sender. gh.deliver() POSTs an event to the
 * App's webhook or a repository hook as GitHub does (headers, signature over
 * the exact body, the hook's content type) and records every attempt; the
 * deliveries API lists them (GET /app/hook/deliveries with a JWT,
 * GET /repos/{o}/{r}/hooks/{id}/deliveries with a token), newest first with
 * cursor paging, and redelivers one on POST …/deliveries/{id}/attempts: the
 * stored body again, with the same GUID, signed with the hook's current
 * secret, to its current URL.
 */

export type DeliveryTarget = { app: number } | { owner: string; repo: string; hookId: number };

export interface DeliverOptions {
  /** The App's webhook, or a repository's hook (hookId may be left out when the repository has one hook). */
  to: { app: number } | { owner: string; repo: string; hookId?: number };
  /** X-GitHub-Event. */
  event: string;
  payload: Record<string, unknown>;
  /** X-GitHub-Delivery; default a random UUID. */
  guid?: string;
}

/** One delivery attempt, as GET …/deliveries/{id} shows it (plus `target`). */
export interface RecordedDelivery {
  /** Unique per attempt: a redelivery has its own. */
  id: number;
  /** Shared by an attempt and its redeliveries. */
  guid: string;
  delivered_at: string;
  redelivery: boolean;
  /** Seconds. */
  duration: number;
  /** "OK" for a 2xx answer, "Invalid HTTP Response: <code>" for another, "failed to connect to host" or "timed out" for none. */
  status: string;
  /** 0 when nothing answered. */
  status_code: number;
  event: string;
  action: string | null;
  installation_id: number | null;
  repository_id: number | null;
  throttled_at: null;
  url: string;
  request: { headers: Record<string, string>; payload: Record<string, unknown> };
  response: { headers: Record<string, string>; payload: string | null };
  target: DeliveryTarget;
}

export interface RedeliveryRequest {
  target: DeliveryTarget;
  /** The delivery asked to be redelivered. */
  delivery_id: number;
  guid: string;
  requested_at: string;
  /** The attempt it caused, once made (see deliveriesSettled). */
  attempt?: RecordedDelivery;
}

export interface FakeGitHubDeliveries {
  /** Sends an event as GitHub does and resolves with the recorded attempt. Throws if the hook would not receive it (inactive, not subscribed, no URL). */
  deliver(o: DeliverOptions): Promise<RecordedDelivery>;
  /** The attempts to one hook, oldest first (the API lists newest first). */
  deliveries(target: DeliveryTarget): RecordedDelivery[];
  /** Every POST …/attempts the fake accepted, in order. */
  redeliveryRequests(): RedeliveryRequest[];
  /** Resolves once every redelivery asked for so far has been attempted (GitHub redelivers after answering 202). */
  deliveriesSettled(): Promise<void>;
}

/** What GitHub waits for an answer. */
const DELIVERY_TIMEOUT_MS = 10_000;
const HOOKSHOT = 'GitHub-Hookshot/f1e2d3c';
/** Events an App gets whatever it subscribes to. */
const APP_ALWAYS = ['ping', 'installation', 'installation_repositories', 'installation_target', 'github_app_authorization', 'meta'];

interface Resolved {
  target: DeliveryTarget;
  url: string;
  secret?: string;
  form: boolean;
  hookId: number;
  targetType: 'integration' | 'repository';
  targetId: number;
}

interface Stored {
  record: RecordedDelivery;
  body: string;
  form: boolean;
}

type Sent = { status: number; headers: Record<string, string>; body: string } | { error: 'failed to connect to host' | 'timed out' };

function flatten(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) if (v !== undefined) out[k] = Array.isArray(v) ? v.join(', ') : v;
  return out;
}

/** One POST on a fresh connection (GitHub's hookshot keeps none open), with GitHub's timeout. */
function post(url: string, headers: Record<string, string>, body: string): Promise<Sent> {
  return new Promise((resolve) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      return resolve({ error: 'failed to connect to host' });
    }
    let timedOut = false;
    const send = u.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(u, {
      method: 'POST',
      headers: { ...headers, 'Content-Length': String(Buffer.byteLength(body)) },
      agent: false,
      rejectUnauthorized: false,
    });
    const timer = setTimeout(() => {
      timedOut = true;
      req.destroy();
    }, DELIVERY_TIMEOUT_MS);
    req.on('response', (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: flatten(res.headers), body: Buffer.concat(chunks).toString('utf8') });
      });
      res.on('error', () => {
        clearTimeout(timer);
        resolve({ error: timedOut ? 'timed out' : 'failed to connect to host' });
      });
    });
    req.on('error', () => {
      clearTimeout(timer);
      resolve({ error: timedOut ? 'timed out' : 'failed to connect to host' });
    });
    req.end(body);
  });
}

const sameTarget = (a: DeliveryTarget, b: DeliveryTarget) =>
  'app' in a
    ? 'app' in b && a.app === b.app
    : !('app' in b) && a.hookId === b.hookId && a.owner.toLowerCase() === b.owner.toLowerCase() && a.repo.toLowerCase() === b.repo.toLowerCase();

export function createDeliveries(core: FakeCore, apps: FakeApps, hooksOf: (r: RepoEntry) => Hook[]) {
  const stored: Stored[] = [];
  const redeliveries: RedeliveryRequest[] = [];
  const pending = new Set<Promise<unknown>>();
  let nextId = 12_000_000_001;

  /** Where a delivery to `target` goes now (URL and secret as currently configured). */
  function resolve(target: DeliverOptions['to'], event?: string): Resolved {
    if ('app' in target) {
      const app = apps.app(target.app);
      if (!app) throw new Error(`fake-github: no App ${target.app}`);
      if (!app.webhook?.url) throw new Error(`fake-github: App ${app.id} has no webhook URL (createApp({ webhookUrl }) or setAppWebhook)`);
      if (event !== undefined && !app.events.includes(event) && !APP_ALWAYS.includes(event)) {
        throw new Error(`fake-github: App ${app.id} does not subscribe to ${event} (its events: ${app.events.join(', ')})`);
      }
      return { target: { app: app.id }, url: app.webhook.url, secret: app.webhook.secret, form: false, hookId: app.hookId, targetType: 'integration', targetId: app.id };
    }
    const r = core.findRepo(target.owner, target.repo);
    const list = hooksOf(r);
    let hook: Hook | undefined;
    if (target.hookId !== undefined) hook = list.find((h) => h.id === target.hookId);
    else if (list.length === 1) hook = list[0];
    else throw new Error(`fake-github: ${r.owner}/${r.name} has ${list.length} hooks; say which (hookId)`);
    if (!hook) throw new Error(`fake-github: ${r.owner}/${r.name} has no hook ${target.hookId}`);
    if (event !== undefined) {
      if (!hook.active) throw new Error(`fake-github: hook ${hook.id} of ${r.owner}/${r.name} is inactive; GitHub would not deliver`);
      if (event !== 'ping' && !hook.events.includes(event) && !hook.events.includes('*')) {
        throw new Error(`fake-github: hook ${hook.id} of ${r.owner}/${r.name} does not subscribe to ${event} (its events: ${hook.events.join(', ')})`);
      }
    }
    return {
      target: { owner: r.owner, repo: r.name, hookId: hook.id },
      url: hook.config.url,
      secret: hook.config.secret,
      form: hook.config.content_type === 'form',
      hookId: hook.id,
      targetType: 'repository',
      targetId: r.id,
    };
  }

  /** For an App: the installation of the payload's repository, as GitHub adds it. */
  function withInstallation(app: AppEntry | undefined, payload: Record<string, unknown>): Record<string, unknown> {
    if (!app || payload.installation !== undefined) return payload;
    const repository = payload.repository as { full_name?: unknown; name?: unknown; owner?: { login?: unknown } } | undefined;
    const [owner, name] =
      typeof repository?.full_name === 'string'
        ? repository.full_name.split('/')
        : [repository?.owner?.login, repository?.name].map((x) => (typeof x === 'string' ? x : undefined));
    const inst = owner && name ? apps.installationFor(app, owner, name) : undefined;
    if (!inst) return payload;
    return { ...payload, installation: { id: inst.id, node_id: Buffer.from(`023:Integration::Installation${inst.id}`).toString('base64') } };
  }

  async function attempt(to: Resolved, event: string, guid: string, payload: Record<string, unknown>, body: string, redelivery: boolean): Promise<Stored> {
    const headers: Record<string, string> = {
      Accept: '*/*',
      'Content-Type': to.form ? 'application/x-www-form-urlencoded' : 'application/json',
      'User-Agent': HOOKSHOT,
      'X-GitHub-Delivery': guid,
      'X-GitHub-Event': event,
      'X-GitHub-Hook-ID': String(to.hookId),
      'X-GitHub-Hook-Installation-Target-ID': String(to.targetId),
      'X-GitHub-Hook-Installation-Target-Type': to.targetType,
    };
    if (to.secret) {
      headers['X-Hub-Signature'] = `sha1=${createHmac('sha1', to.secret).update(body).digest('hex')}`;
      headers['X-Hub-Signature-256'] = await sign(to.secret, body);
    }
    const started = Date.now();
    const delivered_at = now();
    const sent = await post(to.url, headers, body);
    const duration = Math.round((Date.now() - started) / 10) / 100;
    const answered = 'status' in sent;
    const code = answered ? sent.status : 0;
    const installation = payload.installation as { id?: unknown } | undefined;
    const repository = payload.repository as { id?: unknown } | undefined;
    const record: RecordedDelivery = {
      id: nextId++,
      guid,
      delivered_at,
      redelivery,
      duration,
      status: !answered ? sent.error : code >= 200 && code < 300 ? 'OK' : `Invalid HTTP Response: ${code}`,
      status_code: code,
      event,
      action: typeof payload.action === 'string' ? payload.action : null,
      installation_id: typeof installation?.id === 'number' ? installation.id : null,
      repository_id: typeof repository?.id === 'number' ? repository.id : null,
      throttled_at: null,
      url: to.url,
      request: { headers, payload },
      response: answered ? { headers: sent.headers, payload: sent.body } : { headers: {}, payload: null },
      target: to.target,
    };
    const entry: Stored = { record, body, form: to.form };
    stored.push(entry);
    return entry;
  }

  async function deliver(o: DeliverOptions): Promise<RecordedDelivery> {
    const to = resolve(o.to, o.event);
    const payload = withInstallation('app' in o.to ? apps.app(o.to.app) : undefined, structuredClone(o.payload));
    const guid = o.guid ?? randomUUID();
    // The body and its signature as src/github-delivery.ts builds them (form: payload=<json>).
    const { body } = await signDelivery(to.secret ?? '', payload, { event: o.event, id: guid, form: to.form });
    return (await attempt(to, o.event, guid, payload, body, false)).record;
  }

  function itemJson(d: RecordedDelivery) {
    const { request: _request, response: _response, target: _target, url: _url, ...item } = d;
    return item;
  }

  function fullJson(d: RecordedDelivery) {
    const { target: _target, ...full } = d;
    return full;
  }

  /** Newest first; `status` success (2xx–3xx) or failure (4xx–5xx) as documented; cursor paging with the Link header. */
  function list(ctx: Ctx, target: DeliveryTarget): void {
    const q = ctx.url.searchParams;
    const perPage = Math.min(100, Math.max(1, Number(q.get('per_page')) || 30));
    const status = q.get('status');
    if (status !== null && status !== 'success' && status !== 'failure') {
      throw validationFailed([{ resource: 'HookDelivery', field: 'status', code: 'invalid' }]);
    }
    const cursor = q.get('cursor');
    let before = Infinity;
    if (cursor !== null && cursor !== '') {
      const m = /^v1_(\d+)$/.exec(cursor);
      if (!m) throw validationFailed([{ resource: 'HookDelivery', field: 'cursor', code: 'invalid' }]);
      before = Number(m[1]);
    }
    const all = stored
      .map((s) => s.record)
      .filter((d) => sameTarget(d.target, target))
      .filter((d) => status === null || (status === 'success' ? d.status_code >= 200 && d.status_code < 400 : d.status_code >= 400 && d.status_code < 600))
      .sort((a, b) => b.id - a.id);
    const rest = all.filter((d) => d.id < before);
    const items = rest.slice(0, perPage);
    const headers = apiHeaders();
    if (rest.length > perPage) {
      const next = new URLSearchParams(q);
      next.set('per_page', String(perPage));
      next.set('cursor', `v1_${items[items.length - 1]!.id}`);
      headers.link = `<${core.apiUrl}${ctx.url.pathname}?${next}>; rel="next"`;
    }
    send(ctx.res, 200, items.map(itemJson), headers);
  }

  function findStored(target: DeliveryTarget, id: string | undefined): Stored {
    const entry = id && /^\d+$/.test(id) ? stored.find((s) => s.record.id === Number(id) && sameTarget(s.record.target, target)) : undefined;
    if (!entry) throw notFound();
    return entry;
  }

  function redeliver(ctx: Ctx, entry: Stored): void {
    const original = entry.record;
    const request: RedeliveryRequest = { target: original.target, delivery_id: original.id, guid: original.guid, requested_at: now() };
    redeliveries.push(request);
    // Where the hook points now, with its current secret; the same bytes as first sent.
    const to = { ...resolve(original.target), form: entry.form };
    send(ctx.res, 202, {}, apiHeaders());
    const work = attempt(to, original.event, original.guid, original.request.payload, entry.body, true).then((s) => {
      request.attempt = s.record;
    });
    pending.add(work);
    void work.finally(() => pending.delete(work));
  }

  /** /…/deliveries[/{id}[/attempts]] below a hook. */
  function routes(ctx: Ctx, target: DeliveryTarget, rest: string[]): void {
    const method = ctx.req.method;
    if (rest.length === 0 && method === 'GET') return list(ctx, target);
    if (rest.length === 1 && method === 'GET') return send(ctx.res, 200, fullJson(findStored(target, rest[0]).record), apiHeaders());
    if (rest.length === 2 && rest[1] === 'attempts' && method === 'POST') return redeliver(ctx, findStored(target, rest[0]));
    throw notFound();
  }

  const accessors: FakeGitHubDeliveries = {
    deliver,
    deliveries: (target) => stored.map((s) => s.record).filter((d) => sameTarget(d.target, target)),
    redeliveryRequests: () => [...redeliveries],
    async deliveriesSettled() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };

  return {
    accessors,
    /** /app/hook/deliveries/… (the caller's JWT already checked). */
    appRoutes: (ctx: Ctx, app: AppEntry, rest: string[]) => routes(ctx, { app: app.id }, rest),
    /** /repos/{o}/{r}/hooks/{id}/deliveries/… */
    repoRoutes: (ctx: Ctx, r: RepoEntry, hook: Hook, rest: string[]) => routes(ctx, { owner: r.owner, repo: r.name, hookId: hook.id }, rest),
  };
}

/** Request-log names (see apiRoute in fake-github.ts) for /repos/{owner}/{repo}/hooks/{hook_id}/deliveries/…; `sub` is what follows the hook id. */
export function deliveryRouteName(sub: string[]): { route: string; params: Record<string, string> } | undefined {
  const base = '/repos/{owner}/{repo}/hooks/{hook_id}/deliveries';
  if (sub[0] !== 'deliveries') return undefined;
  if (sub.length === 1) return { route: base, params: {} };
  const params = { delivery_id: sub[1]! };
  if (sub.length === 2) return { route: `${base}/{delivery_id}`, params };
  if (sub.length === 3 && sub[2] === 'attempts') return { route: `${base}/{delivery_id}/attempts`, params };
  return undefined;
}
