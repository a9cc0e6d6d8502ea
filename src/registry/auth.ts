import { MISSING_CREDENTIALS, REFUSED_CREDENTIALS, RegistryError } from './errors.js';

/**
 * The one place that talks HTTP to the registry: it answers 401 challenges
 * (Basic, or Bearer via the token service the challenge names), caches tokens,
 * and turns network failures into RegistryError 503.
 */

export interface Credentials {
  username: string;
  password: string;
}

export interface TransportOptions {
  /** Registry base URL without a trailing slash, e.g. http://127.0.0.1:5000. */
  baseUrl: string;
  auth?: Credentials;
  fetch: typeof fetch;
  timeoutMs: number;
}

export interface SendOptions {
  method?: 'GET' | 'HEAD' | 'DELETE' | 'PUT' | 'POST' | 'PATCH';
  headers?: Record<string, string>;
  /**
   * Sent again as it is on the retry after a 401 challenge. Bytes only, never
   * a stream: a stream could not be re-sent, and Node 20's fetch keeps every
   * byte of a streamed request body in memory until the request ends
   * (nodejs/undici#4058), so blobs go up in bounded chunks (blobs.ts).
   */
  body?: Uint8Array<ArrayBuffer>;
  /**
   * Replaces the per-request timeout (timeoutMs). Fetch's signal also covers
   * reading the response body, so a long download passes its own: one that
   * fires only while waiting for the answer, and when its reader goes away.
   */
  signal?: AbortSignal;
  /**
   * The token scope this request needs (e.g. repository:app:pull). Used as
   * the token cache key so later requests can send a cached token up front
   * instead of paying a 401 round trip each time.
   */
  scope?: string;
}

export interface Challenge {
  /** Lower-cased: 'basic' or 'bearer'. */
  scheme: string;
  params: Record<string, string>;
}

/** Parses `Bearer realm="https://auth/token",service="reg",scope="repository:a:pull,push"` (values may hold commas). */
export function parseChallenge(header: string | null): Challenge | undefined {
  const m = header ? /^\s*([A-Za-z][A-Za-z0-9_-]*)\s*(.*)$/s.exec(header) : null;
  if (!m) return undefined;
  const params: Record<string, string> = {};
  for (const p of m[2].matchAll(/([A-Za-z_][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))/g)) {
    const key = p[1].toLowerCase();
    // First wins: a second challenge joined into the same header must not overwrite the first's realm.
    if (!(key in params)) params[key] = p[2] !== undefined ? p[2].replace(/\\(.)/g, '$1') : p[3];
  }
  return { scheme: m[1].toLowerCase(), params };
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Tokens are dropped this long before they expire so a request never races the expiry. */
const EXPIRY_MARGIN_MS = 5_000;
/** The token spec's default when the service gives no expires_in. */
const DEFAULT_TOKEN_SECONDS = 60;

export class RegistryTransport {
  /** What the registry asked for last time, so later requests can authenticate up front. */
  private scheme: 'unknown' | 'basic' | 'bearer' = 'unknown';
  private readonly tokens = new Map<string, CachedToken>();

  constructor(private readonly o: TransportOptions) {}

  /** Where relative URLs (an upload's Location) are resolved, and the only origin credentials are sent to. */
  get baseUrl(): string {
    return this.o.baseUrl;
  }

  /** The per-request timeout (blobs.ts stretches it for chunks of an upload and waits on it for a download's answer). */
  get timeoutMs(): number {
    return this.o.timeoutMs;
  }

  /** One request with no challenge handling: for readiness probes, where 401 already means "up". */
  async sendOnce(path: string, opts: SendOptions = {}): Promise<Response> {
    return this.attempt(this.o.baseUrl + path, opts, this.upfrontAuthorization(opts.scope));
  }

  /** `pathOrUrl` is a /v2/... path, or an absolute URL from a Link header. */
  async send(pathOrUrl: string, opts: SendOptions = {}): Promise<Response> {
    const url = pathOrUrl.startsWith('/') ? this.o.baseUrl + pathOrUrl : pathOrUrl;
    const sent = this.upfrontAuthorization(opts.scope);
    const first = await this.attempt(url, opts, sent);
    if (first.status !== 401) return first;

    const challenge = parseChallenge(first.headers.get('www-authenticate'));
    await first.body?.cancel();
    if (challenge?.scheme === 'basic') {
      if (!this.o.auth) throw unauthorized(MISSING_CREDENTIALS);
      // Credentials already went with the first attempt: sending them again cannot help.
      if (sent?.startsWith('Basic ')) throw unauthorized(REFUSED_CREDENTIALS);
      this.scheme = 'basic';
      return this.finalAttempt(url, opts, this.basicAuthorization()!);
    }
    if (challenge?.scheme === 'bearer' && challenge.params.realm) {
      this.scheme = 'bearer';
      const key = opts.scope ?? '';
      this.tokens.delete(key); // the token we sent (if any) was expired or revoked early
      const token = await this.fetchToken(challenge, opts.scope);
      this.tokens.set(key, token);
      return this.finalAttempt(url, opts, `Bearer ${token.token}`);
    }
    throw unauthorized(this.o.auth ? REFUSED_CREDENTIALS : MISSING_CREDENTIALS);
  }

  private async finalAttempt(url: string, opts: SendOptions, authorization: string): Promise<Response> {
    const res = await this.attempt(url, opts, authorization);
    if (res.status === 401) {
      await res.body?.cancel();
      throw unauthorized(this.o.auth ? REFUSED_CREDENTIALS : MISSING_CREDENTIALS);
    }
    return res;
  }

  private upfrontAuthorization(scope: string | undefined): string | undefined {
    if (this.scheme === 'basic') return this.basicAuthorization();
    if (this.scheme === 'bearer') {
      const cached = this.tokens.get(scope ?? '');
      if (cached && cached.expiresAt > Date.now()) return `Bearer ${cached.token}`;
    }
    return undefined;
  }

  private basicAuthorization(): string | undefined {
    const a = this.o.auth;
    return a ? `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}` : undefined;
  }

  private async attempt(url: string, opts: SendOptions, authorization: string | undefined): Promise<Response> {
    const headers: Record<string, string> = { 'user-agent': 'dockhook', ...opts.headers };
    if (authorization) headers.authorization = authorization;
    try {
      return await this.o.fetch(url, { method: opts.method ?? 'GET', headers, body: opts.body, signal: opts.signal ?? AbortSignal.timeout(this.o.timeoutMs) });
    } catch (err) {
      throw new RegistryError(503, `registry unreachable at ${this.o.baseUrl}: ${this.describeNetworkError(err)}`, {
        cause: err,
      });
    }
  }

  /**
   * Token service protocol (distribution's docs/spec/auth/token.md): GET the
   * realm with service and scope, with Basic credentials when we have them
   * (anonymous otherwise: public registries hand out pull tokens to anyone).
   */
  private async fetchToken(challenge: Challenge, scopeHint: string | undefined): Promise<CachedToken> {
    let realm: URL;
    try {
      realm = new URL(challenge.params.realm);
    } catch {
      throw new RegistryError(502, 'registry asked for a token from a realm that is not a URL');
    }
    if (challenge.params.service) realm.searchParams.set('service', challenge.params.service);
    // The registry's own scope is authoritative; it may list several, space-separated.
    for (const s of (challenge.params.scope ?? scopeHint ?? '').split(' ').filter(Boolean)) realm.searchParams.append('scope', s);
    const where = `${realm.origin}${realm.pathname}`;
    const headers: Record<string, string> = { 'user-agent': 'dockhook' };
    const basic = this.basicAuthorization();
    if (basic) headers.authorization = basic;

    let res: Response;
    try {
      res = await this.o.fetch(realm, { headers, signal: AbortSignal.timeout(this.o.timeoutMs) });
    } catch (err) {
      throw new RegistryError(503, `registry token service unreachable at ${where}: ${this.describeNetworkError(err)}`, { cause: err });
    }
    if (res.status === 401 || res.status === 403) {
      await res.body?.cancel();
      throw unauthorized(this.o.auth ? REFUSED_CREDENTIALS : MISSING_CREDENTIALS);
    }
    if (!res.ok) {
      await res.body?.cancel();
      throw new RegistryError(502, `registry token service at ${where} answered ${res.status}`);
    }
    const body = (await res.json().catch(() => ({}))) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token = typeof body.token === 'string' ? body.token : typeof body.access_token === 'string' ? body.access_token : undefined;
    if (!token) throw new RegistryError(502, `registry token service at ${where} answered without a token`);
    const seconds = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : DEFAULT_TOKEN_SECONDS;
    return { token, expiresAt: Date.now() + seconds * 1000 - EXPIRY_MARGIN_MS };
  }

  private describeNetworkError(err: unknown): string {
    if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) {
      return `no answer within ${Math.round(this.o.timeoutMs / 1000)} s`;
    }
    // undici wraps the socket error: TypeError('fetch failed', { cause: Error('connect ECONNREFUSED ...') }).
    const cause = (err as { cause?: { message?: string; code?: string } })?.cause;
    return cause?.message || cause?.code || (err instanceof Error ? err.message : String(err));
  }
}

function unauthorized(message: string): RegistryError {
  return new RegistryError(401, message, { code: 'UNAUTHORIZED' });
}
