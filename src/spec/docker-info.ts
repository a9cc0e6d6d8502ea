import { posix } from 'node:path';
import { z } from 'zod';
import { isValidRepositoryName, isValidTag } from '../docker-reference.js';
import { canonicalPlatform } from '../engine/platforms.js';

/**
 * What to build, as plain data. Produced from dockerInfo.json (describing) and
 * consumed by pipeline/ (executing); nothing here touches Docker.
 */
export interface BuildSpec {
  serviceName: string;
  version: string;
  /** Path of the Dockerfile relative to the context (as in compose), posix, never outside it. */
  dockerfile: string;
  /** Folder of the repository that is the build context; "" is the root. */
  context: string;
  buildArgs: Record<string, string>;
  target?: string;
  extraTags: string[];
  /** os/arch[/variant], normalised and unique; [] builds for the engine's own platform only. */
  platforms: string[];
  /** Paths copied out of the built image after the build, one .tar.gz each (per platform). */
  artifacts: ArtifactSpec[];
  /** The entry's `deploy` as written: untrusted, checked against the operator's policy only when deploying (deploy/deploy-settings.ts), so a bad one fails the deploy, not the build. */
  deploy?: unknown;
}

export interface ArtifactSpec {
  /** Lowercase letters, digits, . _ -; unique within the image. */
  name: string;
  /** Absolute, normalised posix path inside the image. */
  path: string;
}

/** Thrown for a dockerInfo.json that cannot be built; the message names the field. Never retried. */
export class SpecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SpecError';
  }
}

const STAGE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;
const ARG_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

const serviceName = z
  .string({ error: 'must be a string' })
  .max(200, 'must be at most 200 characters')
  .refine(isValidRepositoryName, {
    message: 'must be a Docker repository name: lowercase letters, digits and single . _ - between them (for example "api" or "team/api")',
  });

const tag = z
  .string({ error: 'must be a string' })
  .refine(isValidTag, { message: 'must be a Docker tag: letters, digits, _ . - (not first), at most 128 characters' })
  // dockhook's own tags (per-platform images, artifacts) start with _ (registry/internal-tags.ts).
  .refine((t) => !t.startsWith('_'), { message: 'must not start with _: tags starting with _ are dockhook\'s own' });

const MAX_PLATFORMS = 8;
const platform = z
  .string({ error: 'must be a string such as "linux/arm64"' })
  .transform((value, ctx) => {
    const normal = canonicalPlatform(value);
    if (normal === undefined) {
      ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not a platform: write os/architecture[/variant], e.g. linux/amd64, linux/arm64 or linux/arm/v7` });
      return z.NEVER;
    }
    return normal;
  });

const ARTIFACT_NAME = /^[a-z0-9][a-z0-9._-]{0,39}$/;
const artifact = z.object(
  {
    name: z.string({ error: 'must be a string' }).regex(ARTIFACT_NAME, 'must be 1 to 40 lowercase letters, digits, . _ - (starting with a letter or digit)'),
    path: z.string({ error: 'must be a string' }).transform((value, ctx) => {
      if (!value.startsWith('/')) {
        ctx.addIssue({ code: 'custom', message: `must be an absolute path inside the image, such as /app/dist (got ${JSON.stringify(value)})` });
        return z.NEVER;
      }
      return posix.normalize(value).replace(/(.)\/+$/, '$1');
    }),
  },
  { error: 'must be an object like {"name": "dist", "path": "/app/dist"}' },
);

function relativePath(what: string) {
  return z.string({ error: 'must be a string' }).transform((value, ctx) => {
    const normal = posix.normalize(value.replace(/\\/g, '/')).replace(/\/+$/, '');
    if (value.trim() === '' || posix.isAbsolute(normal) || normal === '..' || normal.startsWith('../')) {
      ctx.addIssue({ code: 'custom', message: `must be a relative ${what} inside the repository` });
      return z.NEVER;
    }
    return normal === '.' ? '' : normal;
  });
}

const entry = z.object({
  service_name: serviceName,
  version: z.union([tag, z.number().transform(String).pipe(tag)], { error: 'must be a string such as "1.4.2"' }),
  dockerfile: relativePath('file path').default('Dockerfile'),
  // zod's default is the output value: '' is the repository root.
  context: relativePath('folder').default(''),
  build_args: z
    .record(z.string().regex(ARG_NAME, 'build argument names are letters, digits and _'), z.union([z.string(), z.number(), z.boolean()]).transform(String), {
      error: 'must be an object of NAME: "value"',
    })
    .default({}),
  target: z.string({ error: 'must be a string' }).regex(STAGE, 'must be a build stage name').optional(),
  tags: z
    .array(tag.refine((t) => t !== 'latest', { message: 'latest is managed by dockhook (pushed for the default branch only); remove it' }), {
      error: 'must be an array of tags',
    })
    .max(20, 'at most 20 extra tags')
    .default([]),
  depends_on: z.array(serviceName, { error: 'must be an array of service names from this file' }).max(50, 'at most 50 dependencies').default([]),
  platforms: z
    .array(platform, { error: 'must be an array such as ["linux/amd64", "linux/arm64"]' })
    .min(1, 'must list at least one platform (leave it out to build for the engine\'s own)')
    .max(MAX_PLATFORMS, `at most ${MAX_PLATFORMS} platforms`)
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      list.forEach((p, i) => {
        if (seen.has(p)) ctx.addIssue({ code: 'custom', path: [i], message: `${p} is listed twice (after normalising: linux/arm64/v8 is linux/arm64)` });
        seen.add(p);
      });
    })
    .optional(),
  artifacts: z
    .array(artifact, { error: 'must be an array of {"name": "dist", "path": "/app/dist"}' })
    .max(20, 'at most 20 artifacts')
    .superRefine((list, ctx) => {
      const seen = new Set<string>();
      list.forEach((a, i) => {
        if (seen.has(a.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `${a.name} is used twice; each artifact needs its own name` });
        seen.add(a.name);
      });
    })
    .default([]),
  deploy: z.unknown().optional(),
});

type Entry = z.output<typeof entry>;

/** One image of a multi-image dockerInfo.json: a BuildSpec and the images it is built on. */
export interface ImageSpec extends BuildSpec {
  /** Service names of the same file that must have pushed before this one builds. */
  needs: string[];
}

/** What a dockerInfo.json asks for: the seeds' single object, or {"images": [...]}. */
export type DockerInfo = { format: 'single'; images: [ImageSpec] } | { format: 'multi'; images: ImageSpec[] };

const MAX_IMAGES = 50;

function describeIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.length ? issue.path.map(String).join('.') : '(file)';
  return `${field} ${issue.message}`;
}

function parseJson(text: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new SpecError(`dockerInfo.json is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SpecError('dockerInfo.json must be an object like {"service_name": "api", "version": "1.4.2"} or {"images": [...]}');
  }
  return raw as Record<string, unknown>;
}

/** One entry (the whole file in the single format): `where` prefixes the message, e.g. "images.1 (api) ". */
function parseEntry(raw: Record<string, unknown>, where: string): ImageSpec {
  const parsed = entry.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? '');
    const missing = issue.path.length === 1 && field !== '' && raw[field] === undefined;
    throw new SpecError(missing ? `dockerInfo.json: ${where}${field} is required` : `dockerInfo.json: ${where}${describeIssue(issue)}`);
  }
  return toSpec(parsed.data);
}

function toSpec(d: Entry): ImageSpec {
  return {
    serviceName: d.service_name,
    version: d.version,
    dockerfile: d.dockerfile,
    context: d.context,
    buildArgs: d.build_args,
    target: d.target,
    extraTags: [...new Set(d.tags.filter((t) => t !== d.version))],
    needs: [...new Set(d.depends_on)],
    platforms: d.platforms ?? [],
    artifacts: d.artifacts,
    ...(d.deploy === undefined ? {} : { deploy: d.deploy }),
  };
}

/** dockerInfo.json text in the seeds' single-object format → BuildSpec, or a SpecError naming the first bad field. */
export function parseDockerInfo(text: string): BuildSpec {
  const { needs: _needs, ...spec } = parseSingle(parseJson(text));
  return spec;
}

function parseSingle(raw: Record<string, unknown>): ImageSpec {
  const spec = parseEntry(raw, '');
  if (spec.needs.length) throw new SpecError('dockerInfo.json: depends_on needs the {"images": [...]} format: list the images it names there');
  return spec;
}

/**
 * Either format, validated whole before anything is built: every entry's
 * fields, then names unique, dependencies known, and no cycle. Each error
 * names the entry (its index and service_name) and the field.
 */
export function readDockerInfo(text: string): DockerInfo {
  const raw = parseJson(text);
  if (!('images' in raw)) return { format: 'single', images: [parseSingle(raw)] };
  if ('service_name' in raw) throw new SpecError('dockerInfo.json: use either "images" or a top-level "service_name", not both');
  const list = raw.images;
  if (!Array.isArray(list) || list.length === 0) throw new SpecError('dockerInfo.json: images must be a non-empty array of {"service_name": ..., "version": ...}');
  if (list.length > MAX_IMAGES) throw new SpecError(`dockerInfo.json: images has ${list.length} entries; at most ${MAX_IMAGES}`);
  const images = list.map((item, i) => {
    const name = typeof item === 'object' && item !== null && typeof (item as Record<string, unknown>).service_name === 'string' ? ` (${String((item as Record<string, unknown>).service_name)})` : '';
    if (typeof item !== 'object' || item === null || Array.isArray(item)) throw new SpecError(`dockerInfo.json: images.${i} must be an object like {"service_name": "api", "version": "1.4.2"}`);
    return parseEntry(item as Record<string, unknown>, `images.${i}${name} `);
  });
  const index = new Map<string, number>();
  images.forEach((img, i) => {
    const first = index.get(img.serviceName);
    if (first !== undefined) throw new SpecError(`dockerInfo.json: images.${i} (${img.serviceName}) service_name is a duplicate of images.${first}; each image needs its own name`);
    index.set(img.serviceName, i);
  });
  images.forEach((img, i) => {
    for (const need of img.needs) {
      if (!index.has(need)) throw new SpecError(`dockerInfo.json: images.${i} (${img.serviceName}) depends_on names "${need}", which is not a service_name in images`);
    }
  });
  const cycle = findCycle(images);
  if (cycle) {
    const at = index.get(cycle[0]!)!;
    throw new SpecError(`dockerInfo.json: images.${at} (${cycle[0]}) depends_on makes a cycle: ${cycle.join(' → ')}; an image cannot wait for itself`);
  }
  return { format: 'multi', images };
}

/** The first dependency cycle in file order, as names from its start back to it; undefined when there is none. */
function findCycle(images: ImageSpec[]): string[] | undefined {
  const needs = new Map(images.map((i) => [i.serviceName, i.needs]));
  const done = new Set<string>();
  const path: string[] = [];
  const visit = (name: string): string[] | undefined => {
    const at = path.indexOf(name);
    if (at >= 0) return [...path.slice(at), name];
    if (done.has(name)) return undefined;
    path.push(name);
    for (const need of needs.get(name) ?? []) {
      const found = visit(need);
      if (found) return found;
    }
    path.pop();
    done.add(name);
    return undefined;
  };
  for (const img of images) {
    const found = visit(img.serviceName);
    if (found) return found;
  }
  return undefined;
}

/** Images in an order where each comes after what it needs (file order otherwise). */
export function buildOrder(images: ImageSpec[]): ImageSpec[] {
  const byName = new Map(images.map((i) => [i.serviceName, i]));
  const out: ImageSpec[] = [];
  const seen = new Set<string>();
  const add = (img: ImageSpec) => {
    if (seen.has(img.serviceName)) return;
    seen.add(img.serviceName);
    for (const need of img.needs) add(byName.get(need)!);
    out.push(img);
  };
  images.forEach(add);
  return out;
}

/** The tags one build pushes, in order: version, sha-<7>, extras. */
export function imageTags(spec: BuildSpec, sha: string): string[] {
  return [...new Set([spec.version, `sha-${sha.slice(0, 7)}`, ...spec.extraTags])];
}
