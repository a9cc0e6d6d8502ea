import type { Logger } from './log.js';

/**
 * Reads dockhook's public URL from a running ngrok agent's local API, so
 * nobody has to copy the random https://….ngrok-free.app address by hand.
 * Agents list tunnels at /api/tunnels; newer ones list the `endpoints:` of a
 * v3 config at /api/endpoints as well, so both are read.
 */

/** One entry of GET /api/tunnels, as ngrok's agent API documents it (fields we use). */
interface AgentTunnel {
  name?: string;
  public_url?: string;
  proto?: string;
  config?: { addr?: string };
}

/** One entry of GET /api/endpoints (fields we use). */
interface AgentEndpoint {
  name?: string;
  url?: string;
  upstream?: { url?: string };
}

const API_HINT = "Set NGROK_API_URL to the agent's web address (its web_addr, port 4040).";

export interface DiscoverOptions {
  /** The agent API's base, e.g. http://ngrok:4040 (compose) or http://127.0.0.1:4040. */
  apiUrl: string;
  /**
   * Where ngrok forwards to dockhook: a URL (http://dockhook:3000), host:port
   * or a port alone. A port alone matches any host, which is what dockhook
   * knows about itself (it cannot know its compose service name).
   */
  upstream?: string;
  fetch?: typeof fetch;
  /** Tries before giving up; the agent may still be connecting when dockhook starts. */
  attempts?: number;
  delayMs?: number;
  log?: Pick<Logger, 'debug' | 'info'>;
}

const HINT = 'Check that the agent runs (docker-compose logs ngrok) with NGROK_AUTHTOKEN set, or set PUBLIC_URL and add the webhook by hand.';

/** `reason` says what was seen, `hint` what to do; the message has both. */
export class NgrokDiscoveryError extends Error {
  constructor(
    readonly reason: string,
    readonly hint = HINT,
  ) {
    super(`${reason}. ${hint}`);
    this.name = 'NgrokDiscoveryError';
  }
}

/** An answer that more waiting can change (agent not up, tunnel not connected yet). */
class NotYet extends Error {}

interface HostPort {
  host?: string;
  port: string;
}

/** Normalises what ngrok reports in config.addr ("http://dockhook:3000", "localhost:3000", "3000") or what we were given. */
export function parseAddr(addr: string): HostPort | undefined {
  const text = addr.trim();
  if (/^\d+$/.test(text)) return { port: text };
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  try {
    const url = new URL(withScheme);
    const port = url.port || (url.protocol === 'https:' ? '443' : '80');
    return { host: url.hostname.toLowerCase(), port };
  } catch {
    return undefined;
  }
}

function pointsAt(tunnel: AgentTunnel, upstream: HostPort): boolean {
  const addr = tunnel.config?.addr ? parseAddr(tunnel.config.addr) : undefined;
  if (!addr || addr.port !== upstream.port) return false;
  return upstream.host === undefined || addr.host === undefined || addr.host === upstream.host;
}

const isHttps = (t: AgentTunnel) => typeof t.public_url === 'string' && t.public_url.startsWith('https://');

/** The tunnel to dockhook: one whose upstream is dockhook's port (https first), else the first https one. */
export function pickPublicUrl(tunnels: AgentTunnel[], upstream?: string): string | undefined {
  const target = upstream ? parseAddr(upstream) : undefined;
  const https = tunnels.filter(isHttps);
  const chosen = (target && https.find((t) => pointsAt(t, target))) ?? https[0];
  return chosen?.public_url?.replace(/\/+$/, '');
}

function describeTunnels(tunnels: AgentTunnel[]): string {
  return tunnels.map((t) => `${t.name ?? '?'} ${t.public_url ?? '(no URL)'} → ${t.config?.addr ?? '?'}`).join('; ');
}

/** One list from the agent; undefined when this agent does not have that route (404). */
async function getList(url: string, field: 'tunnels' | 'endpoints', fetchImpl: typeof fetch): Promise<unknown[] | undefined> {
  let res: Response;
  try {
    res = await fetchImpl(url, { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(5000) });
  } catch (err) {
    // Connection refused / name not resolvable yet while compose is still starting the agent.
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new NotYet(`cannot reach ${url} (${cause?.code ?? cause?.message ?? (err as Error).message})`);
  }
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (res.status >= 500) {
    await res.body?.cancel();
    throw new NotYet(`${url} answered ${res.status}`);
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new NgrokDiscoveryError(`${url} answered ${res.status}`, API_HINT);
  }
  let body: Record<string, unknown>;
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    throw new NgrokDiscoveryError(`${url} did not answer JSON`, API_HINT);
  }
  return Array.isArray(body?.[field]) ? (body[field] as unknown[]) : [];
}

async function askAgent(base: string, fetchImpl: typeof fetch, upstream?: string): Promise<string> {
  const tunnels = (await getList(`${base}/api/tunnels`, 'tunnels', fetchImpl)) as AgentTunnel[] | undefined;
  const endpoints = (await getList(`${base}/api/endpoints`, 'endpoints', fetchImpl)) as AgentEndpoint[] | undefined;
  if (tunnels === undefined && endpoints === undefined) throw new NgrokDiscoveryError(`${base}/api/tunnels answered 404`, API_HINT);
  const all: AgentTunnel[] = [
    ...(tunnels ?? []),
    ...(endpoints ?? []).map((e) => ({ name: e.name, public_url: e.url, config: { addr: e.upstream?.url } })),
  ];
  if (all.length === 0) throw new NotYet('the agent has no tunnel yet');
  const url = pickPublicUrl(all, upstream);
  if (!url) throw new NotYet(`no https tunnel among: ${describeTunnels(all)}`);
  return url;
}

/** Asks the agent at `apiUrl` until a usable https public URL shows up, at most `attempts` times. */
export async function discoverPublicUrl(options: DiscoverOptions): Promise<string> {
  const attempts = Math.max(1, options.attempts ?? 60);
  const delayMs = options.delayMs ?? 1000;
  const fetchImpl = options.fetch ?? fetch;
  const base = options.apiUrl.replace(/\/+$/, '');
  let last = '';
  for (let attempt = 1; attempt <= attempts; attempt++) {
    try {
      const url = await askAgent(base, fetchImpl, options.upstream);
      options.log?.debug({ attempt, url }, 'ngrok public URL found');
      return url;
    } catch (err) {
      if (!(err instanceof NotYet)) throw err;
      last = err.message;
      options.log?.debug({ attempt, attempts, reason: last }, 'ngrok agent not ready yet');
      if (attempt < attempts) await new Promise((resolve) => setTimeout(resolve, delayMs));
    }
  }
  throw new NgrokDiscoveryError(`no public URL from the ngrok agent at ${options.apiUrl} after ${attempts} ${attempts === 1 ? 'try' : 'tries'}: ${last}`);
}
