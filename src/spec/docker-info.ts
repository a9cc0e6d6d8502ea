import { posix } from 'node:path';
import { z } from 'zod';
import { isValidRepositoryName, isValidTag } from '../docker-reference.js';

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

const tag = z.string({ error: 'must be a string' }).refine(isValidTag, { message: 'must be a Docker tag: letters, digits, _ . - (not first), at most 128 characters' });

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

const schema = z.object({
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
});

function describeIssue(issue: z.core.$ZodIssue): string {
  const field = issue.path.length ? issue.path.map(String).join('.') : '(file)';
  return `${field} ${issue.message}`;
}

/** dockerInfo.json text → BuildSpec, or a SpecError naming the first bad field. */
export function parseDockerInfo(text: string): BuildSpec {
  let raw: unknown;
  try {
    raw = JSON.parse(text.replace(/^\uFEFF/, ''));
  } catch (err) {
    throw new SpecError(`dockerInfo.json is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new SpecError('dockerInfo.json must be an object like {"service_name": "api", "version": "1.4.2"}');
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const field = String(issue.path[0] ?? '');
    const missing = issue.path.length === 1 && field !== '' && (raw as Record<string, unknown>)[field] === undefined;
    throw new SpecError(missing ? `dockerInfo.json: ${field} is required` : `dockerInfo.json: ${describeIssue(issue)}`);
  }
  const d = parsed.data;
  return {
    serviceName: d.service_name,
    version: d.version,
    dockerfile: d.dockerfile,
    context: d.context,
    buildArgs: d.build_args,
    target: d.target,
    extraTags: [...new Set(d.tags.filter((t) => t !== d.version))],
  };
}

/** The tags one build pushes, in order: version, sha-<7>, extras. */
export function imageTags(spec: BuildSpec, sha: string): string[] {
  return [...new Set([spec.version, `sha-${sha.slice(0, 7)}`, ...spec.extraTags])];
}
