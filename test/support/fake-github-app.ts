import { generateKeyPairSync, createPublicKey, randomBytes, verify as verifySignature, type KeyObject } from 'node:crypto';
import {
  DOCS,
  HttpError,
  apiHeaders,
  isoSeconds,
  loginId,
  notFound,
  now,
  pageOf,
  readJsonBody,
  sameName,
  send,
  type Ctx,
  type RepoEntry,
} from './fake-github-http.js';

/**
 * GitHub Apps for the fake GitHub: Apps with RSA keys, installations on an
 * account's repositories, App JWTs (RS256, checked as GitHub checks them),
 * installation access tokens that expire, and the permissions those tokens
 * carry. Routes: GET /app, GET /app/installations[/{id}], POST
 * /app/installations/{id}/access_tokens, GET|PATCH /app/hook/config,
 * GET /repos/{o}/{r}/installation, /orgs/{org}/installation,
 * /users/{user}/installation (all with a JWT) and GET /installation/repositories
 * (with an installation token).
 */

export type Permission = 'read' | 'write';
export type Permissions = Record<string, Permission>;

/** What dockhook's App asks for (issue 15's permissions table). */
export const DEFAULT_APP_PERMISSIONS: Permissions = {
  contents: 'read',
  metadata: 'read',
  statuses: 'write',
  checks: 'write',
  pull_requests: 'write',
  deployments: 'write',
  repository_hooks: 'read',
};
export const DEFAULT_APP_EVENTS = ['check_run', 'check_suite', 'pull_request', 'push'];

export interface CreateAppOptions {
  appId?: number;
  slug?: string;
  name?: string;
  /** The App's owner (GET /app owner.login); default 'dockhook-dev'. */
  owner?: string;
  webhookUrl?: string;
  webhookSecret?: string;
  /** Lifetime of installation tokens; default 3600 (GitHub's hour). */
  tokenTtlSeconds?: number;
  /** The App's permissions (what installations get unless told otherwise); default DEFAULT_APP_PERMISSIONS. */
  permissions?: Permissions;
  /** Events the App subscribes to; default DEFAULT_APP_EVENTS. */
  events?: string[];
}

/** An App as a test sees it: what GitHub shows its developer, private key included. */
export interface FakeApp {
  appId: number;
  slug: string;
  name: string;
  /** GitHub also accepts the client ID as a JWT's iss. */
  clientId: string;
  /** PKCS#1 PEM, as GitHub's "Generate a private key" downloads it. */
  privateKey: string;
  /** SPKI PEM. */
  publicKey: string;
}

export interface InstallAppOptions {
  /** Login of the account the App is installed on; repositories are that account's. */
  account: string;
  /** Repository names ("widget" or "acme/widget") or 'all' (every repository of the account, added later too). */
  repositories: string[] | 'all';
  /** Default: the App's permissions. */
  permissions?: Permissions;
  /** Default 'Organization'. */
  accountType?: 'User' | 'Organization';
}

export interface IssuedToken {
  installationId: number;
  token: string;
  /** ISO 8601, as the access_tokens answer gave it (expireInstallationTokens moves it to the moment it ran). */
  expiresAt: string;
  permissions: Permissions;
  /** Full names the token was restricted to at creation, or undefined (every repository of the installation). */
  repositories?: string[];
}

export interface AppEntry {
  id: number;
  slug: string;
  name: string;
  clientId: string;
  owner: string;
  publicKey: KeyObject;
  fake: FakeApp;
  /** The App's webhook (GitHub Apps have one); null until set. */
  webhook: { url: string; secret?: string; content_type: 'json'; insecure_ssl: string } | null;
  /** X-GitHub-Hook-ID of the App's webhook. */
  hookId: number;
  tokenTtlSeconds: number;
  permissions: Permissions;
  events: string[];
  created_at: string;
}

export interface InstallationEntry {
  id: number;
  app: AppEntry;
  account: string;
  accountType: 'User' | 'Organization';
  /** 'all', or lower-cased full names. */
  repositories: 'all' | string[];
  permissions: Permissions;
  created_at: string;
}

interface TokenEntry {
  installation: InstallationEntry;
  token: string;
  expiresAtMs: number;
  expiresAt: string;
  permissions: Permissions;
  /** Lower-cased full names, when the token was restricted. */
  repositories?: string[];
}

/** The App part of FakeGitHub. */
export interface FakeGitHubApps {
  /** Registers a GitHub App with a fresh 2048-bit RSA key pair. */
  createApp(o?: CreateAppOptions): FakeApp;
  /** Installs the App on an account's repositories. */
  installApp(appId: number, o: InstallAppOptions): { installationId: number };
  /** Sets the App's webhook (where gh.deliver({ to: { app } }) posts, and its secret). */
  setAppWebhook(appId: number, hook: { url: string; secret?: string }): void;
  /** Every installation token issued so far expires now (a build outliving its token). */
  expireInstallationTokens(): void;
  /** The installation tokens issued, in order. */
  issuedTokens(): IssuedToken[];
}

/** Who a request authenticated as. */
export type Caller =
  /** The personal token given to startFakeGitHub: the user dockhook-bot. */
  | { kind: 'token' }
  | { kind: 'installation'; installation: InstallationEntry; token: TokenEntry }
  | { kind: 'app'; app: AppEntry };

/** What the endpoint sets need from the dispatcher. */
export interface FakeCore {
  apiUrl: string;
  repos(): RepoEntry[];
  /** Throws 404 Not Found for an unknown repository. */
  findRepo(owner: string, name: string): RepoEntry;
  repoJson(r: RepoEntry): Record<string, unknown>;
  /** The full SHA of the commit `ref` names (branch, tag, SHA), or null. */
  resolveCommit(r: RepoEntry, ref: string): Promise<string | null>;
}

export interface UserJson {
  login: string;
  id: number;
  node_id: string;
  type: 'User' | 'Bot' | 'Organization';
  site_admin: false;
  html_url: string;
  url: string;
  avatar_url: string;
}

export function userJson(login: string, type: UserJson['type'], id = loginId(login)): UserJson {
  const prefix = type === 'Bot' ? 'BOT_' : type === 'Organization' ? 'O_' : 'U_';
  return {
    login,
    id,
    node_id: `${prefix}${Buffer.from(String(id)).toString('base64url')}`,
    type,
    site_admin: false,
    html_url: type === 'Bot' ? `https://github.com/apps/${login.replace(/\[bot\]$/, '')}` : `https://github.com/${login}`,
    url: `https://api.github.com/users/${encodeURIComponent(login)}`,
    avatar_url: `https://avatars.githubusercontent.com/u/${id}?v=4`,
  };
}

/** The user GET /user answers for the personal token. */
export const TOKEN_USER = { login: 'dockhook-bot', id: 1, type: 'User' as const };

const ACCESS_DENIED = 'Resource not accessible by integration';
const JWT_UNDECODABLE = 'A JSON web token could not be decoded';
const JWT_MAX_LIFETIME_S = 600;
const JWT_CLOCK_SKEW_S = 60;

const unauthorized = (message: string) => new HttpError(401, { message, documentation_url: DOCS, status: '401' });
/** As the fake answered a wrong token before Apps existed (no status field): kept for the tests that compare the body. */
const badCredentials = () => new HttpError(401, { message: 'Bad credentials', documentation_url: DOCS });

const TOKEN_ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
function randomText(length: number): string {
  const bytes = randomBytes(length);
  return Array.from(bytes, (b) => TOKEN_ALPHABET[b % TOKEN_ALPHABET.length]).join('');
}

/**
 * The permissions a route needs from an installation token, as alternatives
 * (any one suffices). Write implies read.
 */
export function requiredPermissions(route: string): [string, Permission][] {
  const [method, path] = route.split(' ') as [string, string];
  const level: Permission = method === 'GET' || method === 'HEAD' ? 'read' : 'write';
  const rest = path.replace(/^\/repos\/\{owner\}\/\{repo\}/, '');
  if (/^\/(contents|tarball|zipball|git)\//.test(rest) || rest === '/commits/{ref}') return [['contents', 'read']];
  if (rest === '/commits/{ref}/check-runs' || rest.startsWith('/check-runs')) return [['checks', level]];
  if (rest.startsWith('/statuses') || /^\/commits\/\{ref\}\/status(es)?$/.test(rest)) return [['statuses', level]];
  if (rest.startsWith('/hooks')) return [['repository_hooks', level]];
  if (rest.startsWith('/deployments')) return [['deployments', level]];
  // Comments on a pull request go through the issues endpoints: either permission serves.
  if (rest.startsWith('/issues')) return [['issues', level], ['pull_requests', level]];
  return [['metadata', 'read']];
}

const grants = (have: Permissions, name: string, level: Permission) =>
  have[name] === 'write' || (level === 'read' && have[name] === 'read');

export function createApps(core: FakeCore) {
  const apps = new Map<number, AppEntry>();
  const installations = new Map<number, InstallationEntry>();
  const tokens = new Map<string, TokenEntry>();
  let nextAppId = 100_001;
  let nextInstallationId = 50_000_001;
  let nextAppHookId = 400_000_001;

  function findApp(appId: number): AppEntry {
    const app = apps.get(appId);
    if (!app) throw new Error(`fake-github: no App ${appId} (createApp first)`);
    return app;
  }

  function createApp(o: CreateAppOptions = {}): FakeApp {
    const id = o.appId ?? nextAppId++;
    if (apps.has(id)) throw new Error(`fake-github: App ${id} already exists`);
    nextAppId = Math.max(nextAppId, id + 1);
    const taken = new Set([...apps.values()].map((a) => a.slug));
    const slug = o.slug ?? (taken.has('dockhook') ? `dockhook-${id}` : 'dockhook');
    const { privateKey, publicKey } = generateKeyPairSync('rsa', {
      modulusLength: 2048,
      privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
      publicKeyEncoding: { type: 'spki', format: 'pem' },
    });
    const fake: FakeApp = { appId: id, slug, name: o.name ?? slug, clientId: `Iv23li${randomText(14)}`, privateKey, publicKey };
    apps.set(id, {
      id,
      slug,
      name: fake.name,
      clientId: fake.clientId,
      owner: o.owner ?? 'dockhook-dev',
      publicKey: createPublicKey(publicKey),
      fake,
      webhook: o.webhookUrl ? { url: o.webhookUrl, secret: o.webhookSecret, content_type: 'json', insecure_ssl: '0' } : null,
      hookId: nextAppHookId++,
      tokenTtlSeconds: o.tokenTtlSeconds ?? 3600,
      permissions: { ...(o.permissions ?? DEFAULT_APP_PERMISSIONS) },
      events: [...(o.events ?? DEFAULT_APP_EVENTS)],
      created_at: now(),
    });
    return fake;
  }

  function installApp(appId: number, o: InstallAppOptions): { installationId: number } {
    const app = findApp(appId);
    const repositories =
      o.repositories === 'all'
        ? 'all'
        : o.repositories.map((n) => (n.includes('/') ? n : `${o.account}/${n}`).toLowerCase());
    const installation: InstallationEntry = {
      id: nextInstallationId++,
      app,
      account: o.account,
      accountType: o.accountType ?? 'Organization',
      repositories,
      permissions: { ...(o.permissions ?? DEFAULT_APP_PERMISSIONS) },
      created_at: now(),
    };
    installations.set(installation.id, installation);
    return { installationId: installation.id };
  }

  function covers(inst: InstallationEntry, r: RepoEntry): boolean {
    if (!sameName(r.owner, inst.account)) return false;
    return inst.repositories === 'all' || inst.repositories.includes(`${r.owner}/${r.name}`.toLowerCase());
  }

  const reposOf = (inst: InstallationEntry) => core.repos().filter((r) => covers(inst, r));

  /** The installation of `app` that covers the repository owner/name, if any. */
  function installationFor(app: AppEntry, owner: string, name: string): InstallationEntry | undefined {
    const r = core.repos().find((x) => sameName(x.owner, owner) && sameName(x.name, name));
    return r ? [...installations.values()].find((i) => i.app === app && covers(i, r)) : undefined;
  }

  // ---------------------------------------------------------------- JSON

  function appJson(app: AppEntry) {
    return {
      id: app.id,
      slug: app.slug,
      node_id: Buffer.from(`03:App${app.id}`).toString('base64'),
      client_id: app.clientId,
      owner: userJson(app.owner, 'Organization'),
      name: app.name,
      description: '',
      external_url: `https://${app.slug}.example.com`,
      html_url: `https://github.com/apps/${app.slug}`,
      created_at: app.created_at,
      updated_at: app.created_at,
      permissions: app.permissions,
      events: app.events,
      installations_count: [...installations.values()].filter((i) => i.app === app).length,
    };
  }

  function installationJson(inst: InstallationEntry) {
    const account = userJson(inst.account, inst.accountType);
    return {
      id: inst.id,
      client_id: inst.app.clientId,
      account,
      repository_selection: inst.repositories === 'all' ? 'all' : 'selected',
      access_tokens_url: `${core.apiUrl}/app/installations/${inst.id}/access_tokens`,
      repositories_url: `${core.apiUrl}/installation/repositories`,
      html_url:
        inst.accountType === 'Organization'
          ? `https://github.com/organizations/${inst.account}/settings/installations/${inst.id}`
          : `https://github.com/settings/installations/${inst.id}`,
      app_id: inst.app.id,
      app_slug: inst.app.slug,
      target_id: account.id,
      target_type: inst.accountType,
      permissions: inst.permissions,
      events: inst.app.events,
      created_at: inst.created_at,
      updated_at: inst.created_at,
      single_file_name: null,
      has_multiple_single_files: false,
      single_file_paths: [],
      suspended_by: null,
      suspended_at: null,
    };
  }

  /** The bot user an App's installation tokens act as: <slug>[bot]. */
  const botUser = (app: AppEntry) => userJson(`${app.slug}[bot]`, 'Bot', 41_000_000 + app.id);

  // ---------------------------------------------------------------- authentication

  const bearer = (ctx: Ctx) => /^(token|bearer)\s+(.+)$/i.exec(ctx.req.headers.authorization ?? '');

  /**
   * The App a JWT authenticates, checked as GitHub does: RS256 over header.payload
   * with the App's key; iss the App ID (number or digits) or its client ID;
   * exp in the future and at most 10 minutes from now; iat not in the future
   * (60 s of clock skew allowed).
   */
  function authenticateJwt(ctx: Ctx): AppEntry {
    const auth = bearer(ctx);
    // GitHub takes a JWT only as "Authorization: Bearer".
    if (!auth || auth[1]!.toLowerCase() !== 'bearer') throw unauthorized(JWT_UNDECODABLE);
    const parts = auth[2]!.trim().split('.');
    if (parts.length !== 3) throw unauthorized(JWT_UNDECODABLE);
    const decode = (s: string): Record<string, unknown> | null => {
      try {
        const v: unknown = JSON.parse(Buffer.from(s, 'base64url').toString('utf8'));
        return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
      } catch {
        return null;
      }
    };
    const header = decode(parts[0]!);
    const claims = decode(parts[1]!);
    if (!header || !claims || header.alg !== 'RS256') throw unauthorized(JWT_UNDECODABLE);

    const iss = claims.iss;
    let app: AppEntry | undefined;
    if (typeof iss === 'number' || (typeof iss === 'string' && /^\d+$/.test(iss))) {
      app = apps.get(Number(iss));
    } else if (typeof iss === 'string' && iss !== '') {
      app = [...apps.values()].find((a) => a.clientId === iss);
      if (!app) throw unauthorized("'Issuer' claim ('iss') must be an Integer");
    } else {
      throw unauthorized("'Issuer' claim ('iss') must be an Integer");
    }
    if (!app) throw new HttpError(404, { message: 'Integration not found', documentation_url: DOCS, status: '404' });

    // A valid App ID with another App's key: GitHub says it cannot decode the JWT.
    const signed = Buffer.from(`${parts[0]}.${parts[1]}`);
    const signature = Buffer.from(parts[2]!, 'base64url');
    if (!verifySignature('sha256', signed, app.publicKey, signature)) throw unauthorized(JWT_UNDECODABLE);

    const nowS = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== 'number' || !Number.isFinite(claims.exp) || claims.exp <= nowS) {
      throw unauthorized("'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires");
    }
    if (claims.exp > nowS + JWT_MAX_LIFETIME_S) throw unauthorized("'Expiration time' claim ('exp') is too far in the future");
    if (typeof claims.iat !== 'number' || !Number.isInteger(claims.iat) || claims.iat > nowS + JWT_CLOCK_SKEW_S) {
      throw unauthorized("'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued");
    }
    ctx.caller = { kind: 'app', app };
    return app;
  }

  /** The caller on endpoints other than the App's: the personal token or an installation token; a JWT is no credential there. */
  function authenticate(ctx: Ctx, personalToken: string): Caller {
    const given = bearer(ctx)?.[2]!.trim();
    if (given !== undefined && given === personalToken) return (ctx.caller = { kind: 'token' });
    const entry = given === undefined ? undefined : tokens.get(given);
    if (!entry || entry.expiresAtMs <= Date.now()) throw badCredentials();
    return (ctx.caller = { kind: 'installation', installation: entry.installation, token: entry });
  }

  /**
   * An installation token reaches only its installation's repositories (others
   * are 404, as GitHub hides what a token cannot see) and only with the
   * permissions the route needs (else 403 Resource not accessible by integration).
   */
  function authorizeRepo(ctx: Ctx, r: RepoEntry, route: string | undefined): void {
    const caller = ctx.caller;
    if (caller?.kind !== 'installation') return;
    const { installation, token } = caller;
    if (!covers(installation, r)) throw notFound();
    if (token.repositories && !token.repositories.includes(`${r.owner}/${r.name}`.toLowerCase())) throw notFound();
    if (!route) return;
    const needed = requiredPermissions(route);
    if (needed.some(([name, level]) => grants(token.permissions, name, level))) return;
    throw new HttpError(403, { message: ACCESS_DENIED, documentation_url: DOCS, status: '403' }, {
      'x-accepted-github-permissions': needed.map(([name, level]) => `${name}=${level}`).join('; '),
    });
  }

  /** GET /user: the token's user; an installation token is no user (403, as GitHub answers). */
  function getUser(ctx: Ctx): void {
    if (ctx.caller?.kind === 'installation') {
      throw new HttpError(403, {
        message: ACCESS_DENIED,
        documentation_url: 'https://docs.github.com/rest/users/users#get-the-authenticated-user',
        status: '403',
      });
    }
    send(ctx.res, 200, { ...TOKEN_USER, html_url: 'https://github.com/dockhook-bot' }, {
      ...apiHeaders(),
      'x-oauth-scopes': 'repo',
      'x-accepted-oauth-scopes': '',
    });
  }

  // ---------------------------------------------------------------- routes

  function findInstallation(app: AppEntry, id: string | undefined): InstallationEntry {
    const inst = id && /^\d+$/.test(id) ? installations.get(Number(id)) : undefined;
    if (!inst || inst.app !== app) throw notFound();
    return inst;
  }

  async function createAccessToken(ctx: Ctx, inst: InstallationEntry): Promise<void> {
    const body = await readJsonBody(ctx.req);
    const refuse = (message: string) => new HttpError(422, { message, documentation_url: DOCS, status: '422' });
    let restricted: RepoEntry[] | undefined;
    if (body.repositories !== undefined || body.repository_ids !== undefined) {
      const names = Array.isArray(body.repositories) ? body.repositories.map(String) : [];
      const ids = Array.isArray(body.repository_ids) ? body.repository_ids.map(Number) : [];
      const available = reposOf(inst);
      const picked = [
        ...names.map((n) => available.find((r) => sameName(r.name, n) || sameName(`${r.owner}/${r.name}`, n))),
        ...ids.map((id) => available.find((r) => r.id === id)),
      ];
      if (picked.some((r) => r === undefined)) {
        throw refuse('There is at least one repository that does not exist or is not accessible to the parent installation.');
      }
      restricted = [...new Set(picked as RepoEntry[])];
    }
    let permissions = inst.permissions;
    if (body.permissions !== undefined && body.permissions !== null) {
      const asked = body.permissions as Record<string, unknown>;
      if (typeof asked !== 'object' || Object.values(asked).some((v) => v !== 'read' && v !== 'write')) {
        throw refuse('The permissions requested are not granted to this installation.');
      }
      if (Object.entries(asked).some(([name, level]) => !grants(inst.permissions, name, level as Permission))) {
        throw refuse('The permissions requested are not granted to this installation.');
      }
      permissions = asked as Permissions;
    }
    const expiresAtMs = (Math.floor(Date.now() / 1000) + inst.app.tokenTtlSeconds) * 1000;
    const entry: TokenEntry = {
      installation: inst,
      token: `ghs_${randomText(36)}`,
      expiresAtMs,
      expiresAt: isoSeconds(new Date(expiresAtMs)),
      permissions: { ...permissions },
      repositories: restricted?.map((r) => `${r.owner}/${r.name}`.toLowerCase()),
    };
    tokens.set(entry.token, entry);
    send(
      ctx.res,
      201,
      {
        token: entry.token,
        expires_at: entry.expiresAt,
        permissions: entry.permissions,
        repository_selection: restricted || inst.repositories !== 'all' ? 'selected' : 'all',
        // Documented: without repositories or repository_ids the answer has no repositories key.
        ...(restricted ? { repositories: restricted.map((r) => core.repoJson(r)) } : {}),
      },
      apiHeaders(),
    );
  }

  function webhookConfigJson(app: AppEntry) {
    const c = app.webhook ?? { url: '', content_type: 'json', insecure_ssl: '0' };
    return { content_type: c.content_type, insecure_ssl: c.insecure_ssl, url: c.url, ...('secret' in c && c.secret ? { secret: '********' } : {}) };
  }

  /** /app/… with a JWT (deliveries aside: fake-github-deliveries.ts). */
  async function appRoutes(ctx: Ctx, rest: string[]): Promise<void> {
    const app = authenticateJwt(ctx);
    const method = ctx.req.method;
    const [head, id, sub, ...more] = rest;
    if (head === undefined && method === 'GET') return send(ctx.res, 200, appJson(app), apiHeaders());
    if (head === 'installations') {
      if (id === undefined && method === 'GET') {
        const list = [...installations.values()].filter((i) => i.app === app).map(installationJson);
        const page = pageOf(ctx, core.apiUrl, list);
        return send(ctx.res, 200, page.items, page.headers);
      }
      const inst = findInstallation(app, id);
      if (sub === undefined && method === 'GET') return send(ctx.res, 200, installationJson(inst), apiHeaders());
      if (sub === 'access_tokens' && more.length === 0 && method === 'POST') return createAccessToken(ctx, inst);
    }
    if (head === 'hook' && id === 'config' && sub === undefined) {
      if (method === 'GET') return send(ctx.res, 200, webhookConfigJson(app), apiHeaders());
      if (method === 'PATCH') {
        const body = await readJsonBody(ctx.req);
        const c = app.webhook ?? { url: '', content_type: 'json' as const, insecure_ssl: '0' };
        if (typeof body.url === 'string') c.url = body.url;
        if (typeof body.secret === 'string') c.secret = body.secret;
        if (body.insecure_ssl !== undefined) c.insecure_ssl = String(body.insecure_ssl);
        app.webhook = c;
        return send(ctx.res, 200, webhookConfigJson(app), apiHeaders());
      }
    }
    throw notFound();
  }

  /** GET /repos/{o}/{r}/installation, /orgs/{org}/installation, /users/{u}/installation, with a JWT. */
  function accountInstallation(ctx: Ctx, owner: string, repo?: string): void {
    const app = authenticateJwt(ctx);
    let inst: InstallationEntry | undefined;
    if (repo !== undefined) {
      const r = core.findRepo(owner, repo);
      inst = [...installations.values()].find((i) => i.app === app && covers(i, r));
    } else {
      inst = [...installations.values()].find((i) => i.app === app && sameName(i.account, owner));
    }
    if (!inst) throw notFound();
    send(ctx.res, 200, installationJson(inst), apiHeaders());
  }

  /** GET /installation/repositories with an installation token. */
  function installationRepositories(ctx: Ctx): void {
    const caller = ctx.caller;
    if (caller?.kind !== 'installation') {
      throw new HttpError(403, { message: 'This endpoint requires an installation access token.', documentation_url: DOCS, status: '403' });
    }
    const { installation, token } = caller;
    const list = reposOf(installation).filter((r) => !token.repositories || token.repositories.includes(`${r.owner}/${r.name}`.toLowerCase()));
    const page = pageOf(ctx, core.apiUrl, list.map((r) => core.repoJson(r)));
    send(
      ctx.res,
      200,
      { total_count: list.length, repository_selection: installation.repositories === 'all' ? 'all' : 'selected', repositories: page.items },
      page.headers,
    );
  }

  return {
    createApp,
    installApp,
    setAppWebhook(appId: number, hook: { url: string; secret?: string }) {
      findApp(appId).webhook = { url: hook.url, secret: hook.secret, content_type: 'json', insecure_ssl: '0' };
    },
    expireInstallationTokens() {
      const at = Date.now() - 1;
      for (const t of tokens.values()) {
        t.expiresAtMs = Math.min(t.expiresAtMs, at);
        t.expiresAt = isoSeconds(new Date(t.expiresAtMs));
      }
    },
    issuedTokens: (): IssuedToken[] =>
      [...tokens.values()].map((t) => ({
        installationId: t.installation.id,
        token: t.token,
        expiresAt: t.expiresAt,
        permissions: { ...t.permissions },
        repositories: t.repositories ? [...t.repositories] : undefined,
      })),
    app: (appId: number) => apps.get(appId),
    installationFor,
    appJson,
    botUser,
    authenticate,
    authenticateJwt,
    authorizeRepo,
    getUser,
    appRoutes,
    accountInstallation,
    installationRepositories,
  };
}

export type FakeApps = ReturnType<typeof createApps>;

/** Request-log names of the routes above (see apiRoute in fake-github.ts). */
export function appRouteName(method: string, segments: string[]): { route: string; params: Record<string, string> } | undefined {
  const [first, a, b, c, d, ...more] = segments;
  const m = (route: string, params: Record<string, string> = {}) => ({ route: `${method} ${route}`, params });
  if (first === 'installation' && a === 'repositories' && b === undefined) return m('/installation/repositories');
  if ((first === 'orgs' || first === 'users') && a && b === 'installation' && c === undefined) {
    return first === 'orgs' ? m('/orgs/{org}/installation', { org: a }) : m('/users/{username}/installation', { username: a });
  }
  if (first === 'repos' && a && b && c === 'installation' && d === undefined) return m('/repos/{owner}/{repo}/installation', { owner: a, repo: b });
  if (first !== 'app') return undefined;
  if (a === undefined) return m('/app');
  if (a === 'installations') {
    if (b === undefined) return m('/app/installations');
    if (c === undefined) return m('/app/installations/{installation_id}', { installation_id: b });
    if (c === 'access_tokens' && d === undefined) return m('/app/installations/{installation_id}/access_tokens', { installation_id: b });
  }
  if (a === 'hook' && b === 'config' && c === undefined) return m('/app/hook/config');
  if (a === 'hook' && b === 'deliveries') {
    if (c === undefined) return m('/app/hook/deliveries');
    if (d === undefined) return m('/app/hook/deliveries/{delivery_id}', { delivery_id: c });
    if (d === 'attempts' && more.length === 0) return m('/app/hook/deliveries/{delivery_id}/attempts', { delivery_id: c });
  }
  return undefined;
}
