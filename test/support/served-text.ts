/** What http://127.0.0.1:<port><path> serves, trimmed; `HTTP <status>` or `unreachable` otherwise (never throws: a swap's gap is a state to see). */
export async function servedText(port: number, path = '/'): Promise<string> {
  try {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
    return res.ok ? (await res.text()).trim() : `HTTP ${res.status}`;
  } catch {
    return 'unreachable';
  }
}
