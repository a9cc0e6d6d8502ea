import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type Docker from 'dockerode';
import { parse as parseDotenv } from 'dotenv';
import { pullStream } from '../engine/pull-image.js';
import type { BuildLogWriter } from '../logs/build-logs.js';
import { followProgress } from '../pipeline/progress.js';
import type { RegistryAuth } from '../pipeline/push.js';
import type { BuildRecord, DeploymentRecord, NewDeployment, Store } from '../store/store.js';
import { serviceContainers } from './containers.js';
import { planDeploy, type DeployPolicy } from './deploy-settings.js';
import { recoverService, swapContainers } from './swap.js';

/** The operator's deploy settings (DEPLOY_*), and the engine deploys run on. */
export interface DeployConfig extends DeployPolicy {
  docker: Docker;
  /** DEPLOY_ENV_DIR: <service>.env files with the secrets a repository must never hold. */
  envDir?: string;
  environment: string;
}

/** Where a deploy is told to GitHub (the Deployments API); absent, nothing is reported there. */
export interface DeployReporter {
  /** Creates GitHub's deployment and sets it in_progress; returns its id. */
  start(d: DeploymentRecord, where: { owner: string; repo: string }): Promise<number | undefined>;
  finish(githubId: number, d: DeploymentRecord, where: { owner: string; repo: string }): Promise<void>;
}

export interface DeployDeps {
  deploy: DeployConfig;
  store: Store;
  registry: string;
  registryAuth?: RegistryAuth;
  reporter?: DeployReporter;
}

export interface DeployRequest {
  build: BuildRecord;
  service: string;
  version: string;
  /** dockerInfo.json's `deploy` entry, as written. */
  settings: unknown;
  trigger: 'merge' | 'manual';
  /** A rollback the operator asked for: the branch rule does not apply. */
  anyBranch?: boolean;
}

/** A deploy whose build is not running any more is over, whatever its row says, after this long (the CLI waits as long). */
const STALE_DEPLOY_MS = 15 * 60_000;

/**
 * The service's deploy still marked in progress was cut off (its dockhook
 * died; the containers were put right by recoverService): it is the build
 * now running again after that crash, or its build is no longer running and
 * it is old. Marks it failed and takes the service's turn; undefined when a
 * live deploy holds it.
 */
async function takeOverInterrupted(store: Store, base: NewDeployment, buildId: number): Promise<DeploymentRecord | undefined> {
  const [other] = (await store.listDeployments({ service: base.service, limit: 5 })).filter((d) => d.state === 'in_progress');
  if (!other) return store.createDeployment(base);
  const itsBuild = await store.get(other.buildId);
  const running = itsBuild?.state === 'running' && (itsBuild.leaseUntil ?? 0) > Date.now();
  const stale = other.buildId === buildId || (!running && Date.now() - other.createdAt > STALE_DEPLOY_MS);
  if (!stale) return undefined;
  await store.finishDeployment(other.id, 'failure', 'interrupted: dockhook stopped during this deploy; the containers were recovered from their labels', []);
  return store.createDeployment(base);
}

/** DEPLOY_ENV_DIR/<service>.env, parsed as dotenv; {} when there is no such file. */
async function hostEnv(dir: string | undefined, service: string): Promise<Record<string, string>> {
  if (!dir) return {};
  try {
    return parseDotenv(await readFile(join(dir, `${service}.env`), 'utf8'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw err;
  }
}

async function pull(docker: Docker, ref: string, deps: DeployDeps, out: (l: string) => void): Promise<void> {
  const authconfig = deps.registryAuth ? { ...deps.registryAuth, serveraddress: deps.registry } : undefined;
  const stream = await pullStream(docker, ref, authconfig);
  const result = await followProgress(docker, stream, () => {});
  if (result.error) throw new Error(`pulling ${ref}: ${result.error.trim()}`);
  out(`pulled ${ref}`);
}

/**
 * Deploys one pushed image if its dockerInfo.json entry asks and the operator
 * allows it; returns a short note for the build's summary, or undefined when
 * nothing was asked. Never throws for a deploy problem: the build pushed fine
 * and stays a success; the deploy's own record (and GitHub's) says what failed.
 */
export interface DeployOutcome {
  /** For the build's summary. */
  note: string;
  /** Undefined when nothing was recorded (another deploy of the service was running). */
  deployment?: DeploymentRecord;
}

export async function deployImage(deps: DeployDeps, req: DeployRequest, out: BuildLogWriter): Promise<DeployOutcome | undefined> {
  const { build, service, version } = req;
  const where = { owner: build.owner, repo: build.repo };
  const decision = planDeploy(service, req.settings, deps.deploy);
  if (decision.outcome === 'none') return undefined;
  const targetBranch = decision.outcome === 'planned' && decision.plan.branch ? decision.plan.branch : build.defaultBranch;
  if (!req.anyBranch && build.branch !== targetBranch) {
    out.line(`deploy: not for ${build.branch} (deploys follow ${targetBranch})`);
    return undefined;
  }
  const digest = build.pushed.find((p) => p.tag === version)?.digest;
  if (!digest) {
    out.line(`deploy: ${service}:${version} was not pushed by this build; nothing to deploy`);
    return undefined;
  }
  const base = { service, version, sha: build.sha, digest, buildId: build.id, trigger: req.trigger, environment: deps.deploy.environment };
  if (decision.outcome === 'skipped') {
    out.line(decision.reason);
    const deployment = await deps.store.createDeployment({ ...base, state: 'skipped', reason: decision.reason });
    return { note: decision.reason, deployment };
  }
  const record = (await deps.store.createDeployment(base)) ?? (await takeOverInterrupted(deps.store, base, build.id));
  if (!record) {
    const reason = `deploy skipped: another deploy of ${service} is in progress`;
    out.line(reason);
    return { note: reason };
  }
  const lines: string[] = [];
  const log = (l: string) => {
    lines.push(l);
    out.line(`deploy: ${l}`);
  };
  const githubId = await deps.reporter?.start(record, where).catch((err: Error) => {
    log(`GitHub deployment not created (${err.message})`);
    return undefined;
  });
  if (githubId !== undefined) await deps.store.setDeploymentGithubId(record.id, githubId);

  let state: 'success' | 'failure';
  let reason: string | undefined;
  try {
    if (decision.outcome === 'refused') throw new Error(`refused: ${decision.reason}`);
    const { plan } = decision;
    const docker = deps.deploy.docker;
    for (const l of await recoverService(docker, service)) log(l);
    const { stable } = await serviceContainers(docker, service);
    if (stable?.sha === build.sha && stable.state === 'running') {
      log(`${stable.name} already runs ${build.sha.slice(0, 7)}; nothing to swap`);
      state = 'success';
    } else {
      const ref = `${deps.registry}/${service}@${digest}`;
      await pull(docker, ref, deps, log);
      const env = { ...plan.env, ...(await hostEnv(deps.deploy.envDir, service)) };
      const result = await swapContainers(docker, { plan, image: ref, sha: build.sha, build: build.id, version, env, log });
      if (result.outcome === 'success') state = 'success';
      else {
        state = 'failure';
        reason = `${service} ${version} did not become healthy (${result.reason}); ${result.restored ? `${result.restored} runs the previous version again` : 'nothing ran before it'}`;
        for (const l of result.logTail) log(`| ${l}`);
      }
    }
  } catch (err) {
    state = 'failure';
    reason = err instanceof Error ? err.message : String(err);
    log(`failed: ${reason}`);
  }
  await deps.store.finishDeployment(record.id, state, reason, lines);
  const done = (await deps.store.getDeployment(record.id))!;
  if (githubId !== undefined) await deps.reporter!.finish(githubId, done, where).catch((err: Error) => out.line(`deploy: GitHub deployment status not set (${err.message})`));
  return { note: state === 'success' ? `deployed ${service} ${version}` : `deploy failed: ${reason}`, deployment: done };
}
