import type { BuildLogWriter } from '../logs/build-logs.js';
import { RegistryError } from '../registry/client.js';
import { retagImage } from '../registry/retag.js';
import { readVersionTag, versionBeingBuilt, versionTaken } from './version-tag.js';
import type { BuildRecord } from '../store/store.js';
import { imageTags, type ImageSpec } from '../spec/docker-info.js';
import { registryFailure, short, type PipelineDeps } from './pipeline-deps.js';

/**
 * The image's inputs hash as its last success's did: tag that image with
 * this commit's tags through the registry API (a manifest PUT each), with no
 * pull and no engine. Returns the summary, or undefined when the last image is
 * gone from the registry (deleted or pruned), and it must be built after all.
 */
export async function reuseUnchanged(deps: PipelineDeps, build: BuildRecord, spec: ImageSpec, last: BuildRecord, out: BuildLogWriter): Promise<string | undefined> {
  const name = spec.serviceName;
  const repository = `${deps.settings.registry}/${name}`;
  const digest = (last.pushed.find((p) => p.tag === last.version) ?? last.pushed[0])!.digest;
  out.line(`inputs unchanged since ${short(last.sha)} (build #${last.id}): reusing ${repository}@${digest}`);

  const wanted = imageTags(spec, build.sha);
  const version = await readVersionTag(deps, spec);
  const tags = wanted.filter((t) => t !== spec.version);
  if (!version) {
    const holder = await deps.store.claimVersion(name, spec.version, build.sha);
    if (holder !== build.sha && holder !== last.sha) throw versionBeingBuilt(spec, holder);
    tags.push(spec.version);
  } else if (version.digest !== digest && version.revision !== build.sha) {
    throw versionTaken(spec, version);
  }
  const moveLatest = build.branch === build.defaultBranch && !(await deps.store.hasLaterLatest(name, build.mergedAt, build.id));
  if (moveLatest) tags.push('latest');

  for (const tag of tags) {
    if (tag === 'latest' && !(await deps.store.claimLatest(name, build.mergedAt, build.id))) {
      out.line('latest stays: a later merge of this image took it');
      continue;
    }
    let done;
    try {
      done = await retagImage(deps.registry, name, digest, [tag]);
    } catch (err) {
      // retagImage reads the manifest by digest first: a 404 there means the image was deleted or pruned.
      if (tag === tags[0] && err instanceof RegistryError && err.status === 404) {
        out.line(`${repository}@${digest} is no longer in the registry: building it`);
        return undefined;
      }
      throw registryFailure(err, `tagging ${repository}:${tag}`);
    }
    await deps.store.recordPush(build.id, { ref: `${repository}:${tag}`, tag, digest: done[0]!.digest }, tag === 'latest');
    out.line(`tagged ${repository}:${tag} ${digest}`);
  }
  if (version) await deps.store.recordPush(build.id, { ref: `${repository}:${spec.version}`, tag: spec.version, digest: version.digest }, false);
  // The same image: its platforms' images and its artifacts are this build's too.
  for (const p of last.platforms) await deps.store.recordPlatform(build.id, p);
  for (const a of last.artifacts) await deps.store.recordArtifact(build.id, a);
  const sha7 = `sha-${short(build.sha)}`;
  const more = tags.filter((t) => t !== sha7);
  return `unchanged since ${short(last.sha)}; tagged ${[sha7, ...more].join(', ')}`;
}
