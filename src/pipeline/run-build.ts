import { BuildError } from '../errors.js';
import type { BuildLogWriter } from '../logs/build-logs.js';
import type { BuildRecord } from '../store/store.js';
import { buildOrder, type DockerInfo, type ImageSpec } from '../spec/docker-info.js';
import type { RunResult } from '../worker/worker.js';
import { buildAndPush } from './build-image.js';
import { fingerprintImages, selectImages } from './image-fingerprints.js';
import { short, type PipelineDeps } from './pipeline-deps.js';
import { reuseUnchanged } from './reuse-unchanged.js';
import { deployImage } from '../deploy/run-deploy.js';
import { readSpec } from './read-spec.js';

export type { PipelineDeps, PipelineSettings } from './pipeline-deps.js';

/**
 * One build, from commit to pushed digests. A merge's own build (the head)
 * reads dockerInfo.json: one image is built right here; several are planned,
 * one queued build each, and the head ends. Plain steps in order; the worker
 * decides what a failure means (retry, fail, requeue on shutdown).
 */
export async function runPipeline(deps: PipelineDeps, build: BuildRecord, signal: AbortSignal, out: BuildLogWriter, progress: (d: string) => void): Promise<RunResult> {
  out.line(
    `dockhook build #${build.id}: ${build.owner}/${build.repo}@${build.sha} (${build.branch})${build.service ? `, image ${build.service} of merge #${build.groupId}` : ''}${build.force ? ', forced' : ''}, attempt ${build.attempts}`,
  );
  const info = await readSpec(deps, build);
  if (build.groupId !== undefined) return { summary: await runGroupImage(deps, build, info, signal, out, progress) };
  if (info.format === 'multi') return planGroup(deps, build, info.images, out);
  const [spec] = selectImages(info.images, build.images);
  const fingerprints = await fingerprintsOrNone(deps, build, [spec!], out);
  return { summary: await runImage(deps, build, spec!, fingerprints.get(spec!.serviceName), signal, out, progress) };
}

/** Skipping unchanged images saves time, nothing more: when GitHub cannot list the tree, everything is built. */
async function fingerprintsOrNone(deps: PipelineDeps, build: BuildRecord, images: ImageSpec[], out: BuildLogWriter): Promise<Map<string, string | undefined>> {
  try {
    return await fingerprintImages(deps.octokit, build, build.sha, images, deps.settings.registry);
  } catch (err) {
    if (!(err instanceof BuildError)) throw err;
    out.line(`could not fingerprint the images (${err.message}); building them all`);
    return new Map();
  }
}

/** The head of a multi-image merge: fingerprint every image at once, then queue one build per image, base before app. */
async function planGroup(deps: PipelineDeps, build: BuildRecord, all: ImageSpec[], out: BuildLogWriter): Promise<RunResult> {
  const chosen = new Set(selectImages(all, build.images).map((i) => i.serviceName));
  const fingerprints = await fingerprintsOrNone(deps, build, all, out);
  // A manual build of some images waits only for those of them it needs; the others are taken as they are in the registry.
  const planned = buildOrder(all)
    .filter((i) => chosen.has(i.serviceName))
    .map((i) => ({ service: i.serviceName, needs: i.needs.filter((n) => chosen.has(n)), fingerprint: fingerprints.get(i.serviceName) }));
  for (const p of planned) out.line(`image ${p.service}${p.needs.length ? ` (after ${p.needs.join(', ')})` : ''}: fingerprint ${p.fingerprint ?? 'unknown (built)'}`);
  const note = `dockerInfo.json lists ${all.length} images; queued ${planned.map((p) => p.service).join(', ')}`;
  const images = await deps.store.expandGroup(build.id, planned, note, build.leaseOwner ?? '');
  if (!images) throw new BuildError('the lease ran out before the images were queued; the worker that took the merge over plans it again', { transient: true });
  out.line(`${note}: ${images.map((b) => `#${b.id} ${b.service}`).join(', ')}`);
  return { summary: note, recorded: true, silent: true };
}

/** One image of a planned merge: it starts once its needs are final, and is not built when one of them failed. */
async function runGroupImage(deps: PipelineDeps, build: BuildRecord, info: DockerInfo, signal: AbortSignal, out: BuildLogWriter, progress: (d: string) => void): Promise<string> {
  const spec = info.images.find((i) => i.serviceName === build.service);
  if (!spec) throw new BuildError(`dockerInfo.json at ${short(build.sha)} no longer lists ${build.service}`);
  if (build.needs.length) {
    const group = await deps.store.listGroup(build.groupId!);
    const failed = group.filter((b) => build.needs.includes(b.service ?? '') && b.state === 'failed');
    if (failed.length) {
      const names = failed.map((b) => b.service).join(', ');
      throw new BuildError(`not built: ${names} (which ${build.service} depends on) failed${failed.length === 1 && failed[0]!.failure ? `: ${failed[0]!.failure}` : ''}`);
    }
  }
  return runImage(deps, build, spec, build.fingerprint, signal, out, progress);
}

async function runImage(deps: PipelineDeps, build: BuildRecord, spec: ImageSpec, fingerprint: string | undefined, signal: AbortSignal, out: BuildLogWriter, progress: (d: string) => void): Promise<string> {
  await deps.store.setImage(build.id, spec.serviceName, spec.version, fingerprint);
  out.line(`dockerInfo.json: image ${spec.serviceName}, version ${spec.version}, context ${spec.context || '.'}, dockerfile ${spec.dockerfile}`);
  if (fingerprint && !build.force) {
    const last = await deps.store.lastSuccess(spec.serviceName);
    if (last && last.id !== build.id && last.fingerprint === fingerprint) {
      const summary = await reuseUnchanged(deps, build, spec, last, out);
      if (summary) return withDeploy(deps, build, spec, summary, out);
    } else if (last?.fingerprint) {
      out.line(`inputs changed since ${short(last.sha)} (build #${last.id}): building`);
    }
  }
  const summary = await buildAndPush(deps, build, spec, signal, out, progress);
  return withDeploy(deps, build, spec, summary, out);
}

/** After a push: deploy the image when dockerInfo.json asks and the operator allows it (deploy/run-deploy.ts). */
async function withDeploy(deps: PipelineDeps, build: BuildRecord, spec: ImageSpec, summary: string, out: BuildLogWriter): Promise<string> {
  if (spec.deploy === undefined) return summary;
  if (!deps.deploy) {
    out.line('deploy: dockerInfo.json asks for one, but DEPLOY_IMAGES is not set on this dockhook: skipped');
    return summary;
  }
  const pushed = (await deps.store.get(build.id)) ?? build;
  const outcome = await deployImage(
    { deploy: deps.deploy.config, reporter: deps.deploy.reporter, store: deps.store, registry: deps.settings.registry, registryAuth: deps.settings.registryAuth },
    { build: pushed, service: spec.serviceName, version: spec.version, settings: spec.deploy, trigger: build.trigger === 'manual' ? 'manual' : 'merge' },
    out,
  );
  return outcome ? `${summary}; ${outcome.note}` : summary;
}
