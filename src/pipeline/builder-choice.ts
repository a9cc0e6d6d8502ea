import type Docker from 'dockerode';
import type { Logger } from '../log.js';
import { classifyEngineError } from './engine-errors.js';
import { identifyEngine, type EngineIdentity } from './engine-identity.js';

export type BuilderSetting = 'auto' | 'buildkit' | 'classic';
export type Builder = 'buildkit' | 'classic';

// BuildKit sessions through the API arrived with API 1.39 (Docker 18.09), on Linux engines only.
const BUILDKIT_MIN_API = [1, 39];

function apiAtLeast(version: string, minimum: number[]): boolean {
  const [major = 0, minor = 0] = version.split('.').map(Number);
  return major > minimum[0]! || (major === minimum[0] && minor >= minimum[1]!);
}

export interface BuilderDecision {
  builder: Builder;
  /** Why, for the log and for doctor. */
  reason: string;
  /** Set when the setting forces a builder this engine cannot run: every build will fail. */
  problem?: string;
}

/**
 * Pure. BUILDER=auto picks BuildKit where the engine has it (it measured
 * faster here, and it closes the classic builder's cache-poisoning flaw,
 * CVE-2024-24557), else the classic builder. Podman speaks API 1.41 but has
 * no BuildKit (its POST /session is a 404), so the API level is not enough.
 */
export function decideBuilder(engine: EngineIdentity, setting: BuilderSetting): BuilderDecision {
  const missing =
    engine.name === 'Podman'
      ? 'Podman has no BuildKit'
      : engine.os !== 'linux'
        ? `a ${engine.os} engine has no BuildKit API`
        : !apiAtLeast(engine.apiVersion, BUILDKIT_MIN_API)
          ? `engine API ${engine.apiVersion} is older than 1.39, BuildKit's`
          : undefined;
  if (setting === 'classic') return { builder: 'classic', reason: 'BUILDER=classic' };
  if (setting === 'buildkit') {
    return missing
      ? { builder: 'buildkit', reason: 'BUILDER=buildkit', problem: `BUILDER=buildkit, but ${missing}: every build will fail; set BUILDER=classic` }
      : { builder: 'buildkit', reason: 'BUILDER=buildkit' };
  }
  return missing ? { builder: 'classic', reason: `BUILDER=auto: ${missing}` } : { builder: 'buildkit', reason: 'BUILDER=auto: the engine has BuildKit' };
}

/** Chooses the builder of each build; also callable as `probe()` at start, to log the engine as soon as it answers. */
export interface BuilderChooser {
  (): Promise<Builder>;
  /** Asks the engine now and logs what it is and the builder; an engine still down is asked again at the first build. Never throws. */
  probe(): Promise<void>;
  /** Why builds cannot work on this engine with this BUILDER (for /readyz), or undefined; throws while the engine is down. */
  problem(): Promise<string | undefined>;
}

/**
 * Asked lazily, because the engine may not be up when dockhook starts:
 * `probe()` at start, else at the first build; remembered once known, and
 * logged once, by whichever asked first. A forced BUILDER never waits for it.
 */
export function createBuilderChooser(docker: Docker, setting: BuilderSetting, log: Logger): BuilderChooser {
  let known: Promise<Builder> | undefined;
  let decision: BuilderDecision | undefined;
  const learn = (): Promise<Builder> => {
    known ??= identifyEngine(docker).then(
      (engine) => {
        const d = decideBuilder(engine, setting);
        decision = d;
        const fields = { engine: engine.name, engineVersion: engine.version, api: engine.apiVersion, builder: d.builder };
        log.info(fields, `engine: ${engine.name} ${engine.version} (API ${engine.apiVersion}); builder: ${d.builder} (${d.reason})`);
        if (d.problem) log.warn(fields, d.problem);
        return d.builder;
      },
      (err: unknown) => {
        known = undefined; // ask again next time
        throw classifyEngineError(err, 'asking the engine which builders it supports');
      },
    );
    return known;
  };
  const choose = (async () => {
    if (setting === 'auto') return learn();
    // Only to log the engine once it answers; the build does not depend on it.
    learn().catch(() => undefined);
    return setting;
  }) as BuilderChooser;
  choose.probe = () =>
    learn().then(
      () => undefined,
      (err: Error) => log.warn({ err: err.message }, 'the engine did not answer at start; it is asked again at the first build'),
    );
  choose.problem = () => learn().then(() => decision?.problem);
  return choose;
}
