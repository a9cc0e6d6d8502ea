import { pipeline } from 'node:stream';
import { Router, type Request, type Response } from 'express';
import type { Config } from '../config.js';
import { canonicalPlatform } from '../engine/platforms.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { readArtifact } from '../registry/artifact.js';
import type { RegistryClient } from '../registry/client.js';
import { RegistryError } from '../registry/errors.js';
import type { ArtifactRecord, BuildRecord, Store } from '../store/store.js';
import { requireApiToken } from './api-auth.js';
import { findBuild } from './api-builds.js';
import { artifactPath, downloadFileName, toArtifactViews, type BuildViewOptions } from './build-view.js';
import { registryAnswer } from './registry-answer.js';

export interface ArtifactsApiDeps {
  config: Pick<Config, 'registry' | 'publicUrl' | 'apiToken' | 'apiTokenReads'>;
  store: Store;
  registry: Pick<RegistryClient, 'getManifestBytes' | 'openBlob'>;
  log: Logger;
}

/** The header that carries the file's digest: the same `sha256:<hex>` as the list's `digest`, as the registry itself says it. */
export const DIGEST_HEADER = 'Docker-Content-Digest';

const REBUILD_HINT = 'build the commit again to push its artifacts anew: POST /api/builds {"repo": "owner/name", "ref": "<sha>", "force": true}';

function onlyQuery(req: Request, allowed: string[]): Record<string, unknown> {
  const query = req.query as Record<string, unknown>;
  const unknown = Object.keys(query).filter((k) => !allowed.includes(k));
  if (unknown.length) {
    throw new AppError(400, `unknown query parameter ${unknown.join(', ')}`, { hint: allowed.length ? `use ${allowed.join(', ')}` : 'this route takes no query parameters' });
  }
  return query;
}

/** ?platform=…, normalised as dockerInfo.json's platforms are (linux/arm64/v8 is linux/arm64); 400 when it is no platform. */
function platformParam(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new AppError(400, 'platform may be given once', { hint: 'e.g. ?platform=linux/arm64' });
  const normal = canonicalPlatform(value);
  if (normal === undefined) {
    throw new AppError(400, `invalid platform ${JSON.stringify(value)}: expected os/architecture[/variant]`, { hint: 'e.g. ?platform=linux/amd64, linux/arm64 or linux/arm/v7' });
  }
  return normal;
}

const list = (items: string[]) => items.map((i) => JSON.stringify(i)).join(', ');

/** The one artifact the path and ?platform name, or the error that says how to name it. */
function chooseArtifact(build: BuildRecord, name: string, platform: string | undefined): ArtifactRecord {
  const all = build.artifacts ?? [];
  const same = all.filter((a) => a.name === name);
  if (!same.length) {
    const names = [...new Set(all.map((a) => a.name))];
    throw new AppError(404, `build ${build.id} has no artifact ${JSON.stringify(name)}`, {
      hint: names.length
        ? `its artifacts are ${list(names)}; GET /api/builds/${build.id}/artifacts lists them`
        : `it has no artifacts (dockerInfo.json's "artifacts" lists what a build copies out${build.state === 'succeeded' ? '' : `, once the build succeeds; it is ${build.state}`})`,
    });
  }
  const platforms = same.map((a) => a.platform).filter((p): p is string => p !== undefined);
  if (platform === undefined) {
    if (same.length === 1) return same[0]!;
    throw new AppError(400, `artifact ${JSON.stringify(name)} of build ${build.id} was built for ${platforms.length} platforms: ${platforms.join(', ')}`, {
      hint: `choose one with ?platform=, e.g. ${artifactPath(build.id, name, platforms[0])}`,
    });
  }
  const found = same.find((a) => a.platform === platform);
  if (found) return found;
  throw new AppError(404, `artifact ${JSON.stringify(name)} of build ${build.id} has no platform ${platform}`, {
    hint: platforms.length
      ? `its platforms are ${platforms.join(', ')}`
      : `it was built for the engine's own platform only: leave ?platform out (${artifactPath(build.id, name)})`,
  });
}

/** What a caller is told when the registry no longer has it, or cannot be read. */
function readFailure(err: unknown, build: BuildRecord, a: ArtifactRecord): unknown {
  if (err instanceof RegistryError && err.code === 'BLOB_UNKNOWN') {
    return new AppError(410, `artifact ${JSON.stringify(a.name)}${a.platform ? ` (${a.platform})` : ''} of build ${build.id} is gone from the registry: its file ${a.layerDigest} was deleted (garbage collection after retention or a tag deletion)`, {
      hint: REBUILD_HINT,
      cause: err,
    });
  }
  return registryAnswer(err);
}

/**
 * GET /api/builds/<id>/artifacts (what a build copied out, with where to get
 * it) and GET /api/builds/<id>/artifacts/<name>[?platform=os/arch] (the
 * .tar.gz itself, streamed from the registry as it arrives: never held in
 * memory, its digest checked on the way; a client that goes away aborts the
 * registry read). Reads are open unless API_TOKEN_READS=true.
 */
export function artifactsApiRouter(deps: ArtifactsApiDeps): Router {
  const router = Router();
  const read = requireApiToken({ apiToken: deps.config.apiToken, apiTokenReads: deps.config.apiTokenReads }, 'read');
  // Read per request: the public URL may be discovered from ngrok after start-up.
  const viewOptions = (req: Request): BuildViewOptions => ({
    registry: deps.config.registry,
    publicUrl: deps.config.publicUrl,
    origin: `${req.protocol}://${req.get('host') ?? 'localhost'}`,
  });

  router.get('/api/builds/:id/artifacts', read, async (req, res) => {
    const build = await findBuild(deps.store, req.params.id as string);
    onlyQuery(req, []);
    res.set('Cache-Control', 'no-cache');
    res.json({ artifacts: toArtifactViews(build, viewOptions(req)) });
  });

  router.get('/api/builds/:id/artifacts/:name', read, async (req, res) => {
    const build = await findBuild(deps.store, req.params.id as string);
    const query = onlyQuery(req, ['platform']);
    const artifact = chooseArtifact(build, req.params.name as string, platformParam(query.platform));
    await sendArtifact(deps, req, res, build, artifact);
  });

  return router;
}

async function sendArtifact(deps: ArtifactsApiDeps, req: Request, res: Response, build: BuildRecord, a: ArtifactRecord): Promise<void> {
  let got;
  try {
    // By the manifest's digest, not the tag: a forced rebuild of the commit moves the tag to its own artifact.
    got = await readArtifact(deps.registry, a.repository, a.digest);
  } catch (err) {
    throw readFailure(err, build, a);
  }
  if (!got) {
    throw new AppError(410, `artifact ${JSON.stringify(a.name)}${a.platform ? ` (${a.platform})` : ''} of build ${build.id} is gone from the registry: retention or a tag deletion removed ${a.repository}@${a.digest}`, {
      hint: REBUILD_HINT,
    });
  }
  const { stream, layer } = got;
  if (layer.digest !== a.layerDigest) {
    // Cannot happen for a manifest read by digest unless the record is wrong: say so rather than serve another file.
    stream.destroy();
    throw new AppError(502, `the registry's ${a.repository}@${a.digest} holds ${layer.digest}, but build ${build.id} recorded ${a.layerDigest}`, { hint: REBUILD_HINT });
  }
  // The client may have gone while the registry answered: nothing to send, and the blob is not read.
  if (req.destroyed || res.destroyed) {
    stream.destroy();
    return;
  }
  res.status(200).set({
    'Content-Type': 'application/gzip',
    'Content-Length': String(layer.size),
    'Content-Disposition': `attachment; filename="${downloadFileName(a)}"`,
    [DIGEST_HEADER]: layer.digest,
    'Cache-Control': 'no-cache',
    'Accept-Ranges': 'none',
    'X-Content-Type-Options': 'nosniff',
  });
  if (req.method === 'HEAD') {
    stream.destroy();
    res.end();
    return;
  }
  // pipeline: a client that goes away destroys the stream, which aborts the registry request; a bad digest at the end destroys the response, so the client sees a cut download, never a wrong file that looks whole.
  await new Promise<void>((resolve) => {
    pipeline(stream, res, (err) => {
      if (err && !isClientGone(err)) {
        deps.log.warn({ err, build: build.id, artifact: a.name, platform: a.platform }, 'artifact download cut short');
      }
      resolve();
    });
  });
}

/** The client closed the connection: nothing wrong with the registry or the file. */
function isClientGone(err: Error & { code?: string }): boolean {
  return err.code === 'ERR_STREAM_PREMATURE_CLOSE' || err.code === 'ECONNRESET' || err.code === 'EPIPE';
}
