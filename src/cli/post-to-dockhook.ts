/** dockhook's answer to a CLI request: its status, and its JSON body when it is an object. */
export interface DockhookAnswer {
  status: number;
  ok: boolean;
  statusText: string;
  text: string;
  json?: Record<string, unknown>;
}

export interface PostOptions {
  /** `build`, `deploy`: for the messages. */
  command: string;
  base: string;
  path: string;
  token: string;
  body: unknown;
  timeoutMs: number;
  err: (text: string) => void;
}

/** POSTs JSON with the API token; undefined (the reason already printed) when dockhook cannot be reached. */
export async function postToDockhook(o: PostOptions): Promise<DockhookAnswer | undefined> {
  let res: Response;
  try {
    res = await fetch(`${o.base}${o.path}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${o.token}`, 'content-type': 'application/json', accept: 'application/json', 'user-agent': 'dockhook-cli' },
      body: JSON.stringify(o.body),
      signal: AbortSignal.timeout(o.timeoutMs),
    });
  } catch (e) {
    const cause = (e as { cause?: { code?: string; message?: string } }).cause;
    const why = (e as Error).name === 'TimeoutError' ? `no answer within ${o.timeoutMs / 1000} s` : (cause?.code ?? cause?.message ?? (e as Error).message);
    o.err(`dockhook ${o.command}: cannot reach dockhook at ${o.base} (${why}) → is it running there? Set DOCKHOOK_URL or --url to its address\n`);
    return undefined;
  }
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    const parsed: unknown = JSON.parse(text);
    if (typeof parsed === 'object' && parsed !== null && !Array.isArray(parsed)) json = parsed as Record<string, unknown>;
  } catch {
    // not JSON: a proxy's page, or not dockhook at all
  }
  return { status: res.status, ok: res.ok, statusText: res.statusText, text, json };
}

/** Prints an answer the command did not expect: dockhook's error and hint, or what came back instead. */
export function reportUnexpected(o: Pick<PostOptions, 'command' | 'base' | 'path' | 'err'>, a: DockhookAnswer): void {
  const message = typeof a.json?.error === 'string' ? a.json.error : a.text.trim() ? a.text.trim().slice(0, 300) : a.statusText;
  const hint = typeof a.json?.hint === 'string' ? a.json.hint : a.status === 401 ? 'API_TOKEN must be the value dockhook runs with' : undefined;
  const what = a.ok ? `unexpected answer from POST ${o.base}${o.path}: ` : '';
  o.err(`dockhook ${o.command}: ${what}${a.status} ${message}\n${hint ? `  hint: ${hint}\n` : ''}`);
}
