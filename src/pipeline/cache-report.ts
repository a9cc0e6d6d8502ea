/**
 * Which steps of a build came from the layer cache, for the build log: a
 * `cached: [2/3] RUN …` line per such step and a `layers from cache: N of M
 * steps` line at the end. FROM is not a step here (it makes no layer of its
 * own), nor BuildKit's internal work (loading the definition, the context,
 * cache manifests; exporting).
 */

export interface CacheReport {
  /** Steps that came from the cache. */
  cachedSteps: number;
  /** Steps the builder reported, FROM excepted. */
  totalSteps: number;
  /** The cached steps, as `[2/3] RUN …` (`[stage 2/3] RUN …` under BuildKit for a named stage). */
  cached: string[];
}

// Docker's classic builder: `Step 2/3 : RUN …` then ` ---> Using cache`; Podman (buildah): `STEP 2/3: RUN …` then `--> Using cache <id>`.
const CLASSIC_STEP = /^(?:Step (\d+\/\d+) : |STEP (\d+\/\d+): )(.*)$/;
const CLASSIC_CACHED = /^ ?-{2,3}> Using cache\b/;
// [2/3] RUN …, [build 2/3] COPY …, [stage-1 1/2] FROM …; never [internal] load … or `exporting to image`.
const BUILDKIT_STEP = /^\[(?:\S+ )?\d+\/\d+\] (\S+)/;
const isFrom = (instruction: string) => /^FROM$/i.test(instruction);

export class CacheTally {
  private total = 0;
  private readonly cached: string[] = [];
  private current: { label: string; counted: boolean } | undefined;

  /**
   * One line of the classic builder's output (Docker's or Podman's). Returns
   * the `cached:` line to log, if this line says so.
   */
  classicLine(line: string): string | undefined {
    const step = CLASSIC_STEP.exec(line);
    if (step) {
      const position = step[1] ?? step[2];
      const instruction = step[3]!;
      if (isFrom(instruction.split(/\s/, 1)[0]!)) {
        this.current = undefined;
        return undefined;
      }
      this.total++;
      this.current = { label: `[${position}] ${instruction}`, counted: false };
      return undefined;
    }
    if (CLASSIC_CACHED.test(line) && this.current && !this.current.counted) {
      this.current.counted = true;
      this.cached.push(this.current.label);
      return `cached: ${this.current.label}`;
    }
    return undefined;
  }

  /** A finished BuildKit vertex. Returns the `cached:` line to log, if it came from the cache. */
  buildkitStep(step: { name: string; cached: boolean }): string | undefined {
    const m = BUILDKIT_STEP.exec(step.name);
    if (!m || isFrom(m[1]!)) return undefined;
    this.total++;
    if (!step.cached) return undefined;
    this.cached.push(step.name);
    return `cached: ${step.name}`;
  }

  report(): CacheReport {
    return { cachedSteps: this.cached.length, totalSteps: this.total, cached: [...this.cached] };
  }

  summary(): string {
    return `layers from cache: ${this.cached.length} of ${this.total} steps`;
  }
}
