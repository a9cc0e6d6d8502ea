import type Docker from 'dockerode';
import { candidateName, containerName, LABELS, logTail, RESTART_POLICY, serviceContainers, type ServiceContainer } from './containers.js';
import type { DeployPlan } from './deploy-settings.js';
import { waitHealthy } from './health.js';

/**
 * The health-gated swap (issue 14), in an order that never leaves a broken
 * version in place of a working one and never loses the old container
 * before the new one proved itself:
 *
 * 1. create the candidate `<service>-<sha7>` (ports are only taken at start,
 *    so creating it beside the running one is safe);
 * 2. set the old container's restart policy to `no`, then stop it (a stopped
 *    container with `unless-stopped` would come back after an engine restart
 *    and take the port);
 * 3. start the candidate and wait until it is healthy;
 * 4. healthy: remove the old one and rename the candidate to `<service>`;
 * 5. not: keep its last 50 log lines, remove it, and start the old one again
 *    with its policy restored.
 *
 * Downtime is the gap between 2 and 3: a fixed host port can only be held by
 * one container at a time, and dockhook does not juggle ports behind a proxy.
 * Named volumes are mounted by name and survive every path; the old
 * container's anonymous volumes are mounted into the candidate at the same
 * paths (as compose does), so they are not lost on recreate either.
 */

export interface SwapInput {
  plan: DeployPlan;
  /** What to run, by digest: registry/service@sha256:… (already pulled). */
  image: string;
  sha: string;
  build: number;
  version: string;
  /** dockerInfo.json's env with DEPLOY_ENV_DIR/<service>.env laid over it. */
  env: Record<string, string>;
  log: (line: string) => void;
  signal?: AbortSignal;
  /** Between steps, for the crash tests: e.g. 'stopped-old'. */
  onStep?: (step: SwapStep) => Promise<void> | void;
}

export type SwapStep = 'created' | 'stopped-old' | 'started' | 'healthy';

export type SwapResult =
  | { outcome: 'success'; container: string; replaced?: string }
  | { outcome: 'failure'; reason: string; logTail: string[]; restored?: string };

const isAnonymousVolume = (name: string | undefined) => !!name && /^[0-9a-f]{64}$/.test(name);

function createOptions(input: SwapInput, name: string, old?: Docker.ContainerInspectInfo): Docker.ContainerCreateOptions {
  const { plan } = input;
  const exposed: Record<string, object> = {};
  const bindings: Record<string, { HostIp?: string; HostPort: string }[]> = {};
  for (const p of plan.ports) {
    const key = `${p.containerPort}/${p.protocol}`;
    exposed[key] = {};
    (bindings[key] ??= []).push({ ...(p.hostIp ? { HostIp: p.hostIp } : {}), HostPort: String(p.hostPort) });
  }
  const mounts: Docker.MountSettings[] = plan.volumes.map((v) => ({ Type: v.kind, Source: v.source, Target: v.target, ReadOnly: v.readOnly }));
  const asked = new Set(plan.volumes.map((v) => v.target));
  for (const m of old?.Mounts ?? []) {
    if (m.Type === 'volume' && isAnonymousVolume(m.Name) && !asked.has(m.Destination)) mounts.push({ Type: 'volume', Source: m.Name!, Target: m.Destination, ReadOnly: !m.RW });
  }
  return {
    name,
    Image: input.image,
    ...(plan.command ? { Cmd: plan.command } : {}),
    Env: Object.entries(input.env).map(([k, v]) => `${k}=${v}`),
    ExposedPorts: exposed,
    Labels: {
      [LABELS.service]: plan.service,
      [LABELS.sha]: input.sha,
      [LABELS.build]: String(input.build),
      [LABELS.version]: input.version,
      [LABELS.waitSeconds]: String(plan.waitSeconds),
    },
    HostConfig: {
      PortBindings: bindings,
      Mounts: mounts,
      RestartPolicy: { Name: RESTART_POLICY },
      // Said out loud, though they are the defaults: a repository never gets more.
      Privileged: false,
      CapAdd: [],
      Devices: [],
    },
  };
}

async function removeQuietly(docker: Docker, id: string): Promise<void> {
  await docker.getContainer(id).remove({ force: true }).catch((err: { statusCode?: number }) => {
    if (err.statusCode !== 404) throw err;
  });
}

/** Puts the old container back as it was: restart policy, then running. */
async function restore(docker: Docker, old: ServiceContainer, log: (l: string) => void): Promise<void> {
  const c = docker.getContainer(old.id);
  await c.update({ RestartPolicy: { Name: RESTART_POLICY } });
  const state = (await c.inspect()).State;
  if (!state.Running) await c.start();
  log(`started ${old.name} (${old.version ?? old.sha?.slice(0, 7) ?? 'the previous version'}) again, restart policy ${RESTART_POLICY}`);
}

export async function swapContainers(docker: Docker, input: SwapInput): Promise<SwapResult> {
  const { plan, log } = input;
  const stableName = containerName(plan.service);
  const name = candidateName(plan.service, input.sha);
  const { stable } = await serviceContainers(docker, plan.service);
  const oldInfo = stable ? await docker.getContainer(stable.id).inspect() : undefined;

  const candidate = await docker.createContainer(createOptions(input, name, oldInfo));
  log(`created ${name} from ${input.image}`);
  await input.onStep?.('created');

  const fail = async (reason: string): Promise<SwapResult> => {
    const tail = await logTail(docker, candidate.id).catch(() => [] as string[]);
    log(`${name} is not healthy: ${reason}; rolling back`);
    await removeQuietly(docker, candidate.id);
    log(`removed ${name}`);
    if (stable) await restore(docker, stable, log);
    return { outcome: 'failure', reason, logTail: tail, ...(stable ? { restored: stable.name } : {}) };
  };

  if (stable) {
    const c = docker.getContainer(stable.id);
    await c.update({ RestartPolicy: { Name: 'no' } });
    if (oldInfo?.State.Running) await c.stop({ t: 10 });
    log(`stopped ${stable.name} (${stable.version ?? stable.sha?.slice(0, 7)}), restart policy no for the swap`);
  }
  await input.onStep?.('stopped-old');

  try {
    await candidate.start();
  } catch (err) {
    return fail(`the engine could not start it: ${(err as Error).message.replace(/^\(HTTP code \d+\) [^-]*- /, '')}`);
  }
  log(`started ${name}; waiting until it is healthy`);
  await input.onStep?.('started');
  const verdict = await waitHealthy(docker, candidate.id, plan.waitSeconds, { signal: input.signal });
  if (!verdict.healthy) return fail(verdict.reason);
  await input.onStep?.('healthy');

  if (stable) {
    await removeQuietly(docker, stable.id);
    log(`removed ${stable.name}`);
  }
  await candidate.rename({ name: stableName });
  log(`${stableName} now runs ${input.version} (${input.sha.slice(0, 7)})`);
  return { outcome: 'success', container: stableName, ...(stable ? { replaced: stable.version ?? stable.sha } : {}) };
}

/**
 * After a crash (dockhook killed mid-deploy), from the labels alone: a
 * candidate that runs and proves healthy is finished (the old one removed,
 * it renamed); any other candidate is removed and the old container put back.
 * Afterwards exactly one container of the service runs (none if there never
 * was one). Returns what it did, one line each.
 */
export async function recoverService(docker: Docker, service: string): Promise<string[]> {
  const lines: string[] = [];
  const log = (l: string) => lines.push(l);
  const stableName = containerName(service);
  let { stable, candidates } = await serviceContainers(docker, service);
  // Newest build first: with two candidates (two crashes), the newest is the one to keep if it runs.
  candidates = [...candidates].sort((a, b) => (b.build ?? 0) - (a.build ?? 0));
  let finished = false;
  for (const c of candidates) {
    if (!finished && c.state === 'running') {
      const verdict = await waitHealthy(docker, c.id, c.waitSeconds ?? 10);
      if (verdict.healthy) {
        if (stable) {
          await removeQuietly(docker, stable.id);
          log(`removed ${stable.name}: ${c.name} had started and is healthy`);
          stable = undefined;
        }
        await docker.getContainer(c.id).rename({ name: stableName });
        log(`finished the interrupted deploy: ${c.name} is now ${stableName}`);
        finished = true;
        continue;
      }
      log(`${c.name} is not healthy (${verdict.reason})`);
    }
    await removeQuietly(docker, c.id);
    log(`removed ${c.name}, left by an interrupted deploy`);
  }
  if (!finished && stable) {
    const info = await docker.getContainer(stable.id).inspect();
    // Policy `no` is the swap's mark; a service someone stopped by hand (policy intact, no candidate) stays stopped.
    if (candidates.length || info.HostConfig.RestartPolicy?.Name === 'no') await restore(docker, stable, log);
  }
  return lines;
}
