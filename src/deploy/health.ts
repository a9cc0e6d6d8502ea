import type Docker from 'dockerode';

export type HealthVerdict = { healthy: true } | { healthy: false; reason: string };

const NS = 1e6; // the engine gives healthcheck durations in nanoseconds

/** How long a HEALTHCHECK may take to say healthy: its start period and every retry, as the engine would run them. */
export function healthDeadlineMs(check: { Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number } | undefined, waitSeconds: number): number {
  const interval = (check?.Interval || 30_000 * NS) / NS;
  const timeout = (check?.Timeout || 30_000 * NS) / NS;
  const start = (check?.StartPeriod || 0) / NS;
  const retries = check?.Retries || 3;
  return Math.max(waitSeconds * 1000, start + (interval + timeout) * (retries + 1));
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => (clearTimeout(t), resolve()), { once: true });
  });

/**
 * Waits until a started container counts as healthy. With a Docker
 * HEALTHCHECK: until the engine says `healthy` (unhealthy, an exit or the
 * deadline fail it). Without one: until it has run for `waitSeconds` without
 * exiting or restarting.
 */
export async function waitHealthy(docker: Docker, id: string, waitSeconds: number, o: { pollMs?: number; signal?: AbortSignal } = {}): Promise<HealthVerdict> {
  const container = docker.getContainer(id);
  const first = await container.inspect();
  const check = first.Config.Healthcheck as { Test?: string[]; Interval?: number; Timeout?: number; StartPeriod?: number; Retries?: number } | undefined;
  const hasCheck = !!check?.Test?.length && check.Test[0] !== 'NONE';
  const started = Date.now();
  const deadline = started + (hasCheck ? healthDeadlineMs(check, waitSeconds) : waitSeconds * 1000);
  for (;;) {
    const info = await container.inspect();
    const s = info.State;
    if (!s.Running || s.Restarting) return { healthy: false, reason: `it ${s.Restarting ? 'is restarting' : `exited with code ${s.ExitCode}`}${s.Error ? ` (${s.Error})` : ''}` };
    if (info.RestartCount > first.RestartCount) return { healthy: false, reason: 'it restarted' };
    if (hasCheck) {
      const status = s.Health?.Status;
      if (status === 'healthy') return { healthy: true };
      if (status === 'unhealthy') {
        const last = s.Health?.Log?.at(-1)?.Output?.trim();
        return { healthy: false, reason: `its HEALTHCHECK says unhealthy${last ? `: ${last.slice(0, 200)}` : ''}` };
      }
      if (Date.now() > deadline) return { healthy: false, reason: `its HEALTHCHECK did not say healthy within ${Math.round((deadline - started) / 1000)} s` };
    } else if (Date.now() >= deadline) return { healthy: true };
    if (o.signal?.aborted) return { healthy: false, reason: 'the deploy was stopped' };
    await sleep(o.pollMs ?? 250, o.signal);
  }
}
