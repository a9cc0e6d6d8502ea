import type { BuildLogs, BuildLogWriter } from '../build-logs.js';
import { BuildError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { BuildRecord, BuildStore } from './store.js';

export type BuildOutcome = 'succeeded' | 'failed' | 'retrying' | 'interrupted';

export interface WorkerHooks {
  /** Runs the build; resolves with the one-line summary for GitHub. */
  run(build: BuildRecord, signal: AbortSignal, out: BuildLogWriter): Promise<string>;
  /** Tells GitHub; must not throw. */
  report(build: BuildRecord, state: 'pending' | 'success' | 'failure', description: string): Promise<void>;
  /** For metrics and tests. */
  finished?(build: BuildRecord, outcome: BuildOutcome, durationMs: number): void;
  /** After a successful build; its failures are notes on the build, never a failed build. */
  afterSuccess?(build: BuildRecord, out: BuildLogWriter): Promise<void>;
}

export interface WorkerSettings {
  concurrency: number;
  timeoutMs: number;
  retryWindowMs: number;
  retryInitialDelayMs: number;
}

class Shutdown extends Error {}

/**
 * Takes builds from the store and runs up to `concurrency` at once. All state
 * lives in the store, so a crash loses nothing: the next start re-queues what
 * was running.
 */
export class Worker {
  private readonly running = new Map<number, { controller: AbortController; done: Promise<void> }>();
  private timer: NodeJS.Timeout | undefined;
  private stopping = false;
  private started = false;

  constructor(
    private readonly store: BuildStore,
    private readonly logs: BuildLogs,
    private readonly hooks: WorkerHooks,
    private readonly settings: WorkerSettings,
    private readonly log: Logger,
    private readonly scrub: (text: string) => string = (t) => t,
  ) {}

  start(): void {
    const recovered = this.store.recoverInterrupted();
    if (recovered > 0) this.log.warn({ recovered }, 'builds interrupted by the last stop are queued again');
    this.started = true;
    this.kick();
  }

  get activeCount(): number {
    return this.running.size;
  }

  /** True until the build's last step (the GitHub status included) is over. */
  isRunning(id: number): boolean {
    return this.running.has(id);
  }

  /** Looks for work now: after an enqueue, after a build ends, when a retry delay runs out. */
  kick(): void {
    if (!this.started || this.stopping) return;
    while (this.running.size < this.settings.concurrency) {
      const build = this.store.claimNext();
      if (!build) break;
      const controller = new AbortController();
      const done = this.execute(build, controller).finally(() => {
        this.running.delete(build.id);
        this.kick();
      });
      this.running.set(build.id, { controller, done });
    }
    this.scheduleDelayed();
  }

  private scheduleDelayed(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const next = this.store.nextRunAfter();
    if (next === undefined) return;
    const wait = Math.max(next - Date.now(), 50);
    this.timer = setTimeout(() => this.kick(), wait);
    this.timer.unref();
  }

  /**
   * Stops taking builds, lets running ones finish for up to `graceMs`, then
   * aborts the rest and puts them back in the queue for the next start.
   */
  async stop(graceMs: number): Promise<void> {
    this.stopping = true;
    if (this.timer) clearTimeout(this.timer);
    const all = Promise.all([...this.running.values()].map((r) => r.done));
    const grace = new Promise<'timeout'>((resolve) => setTimeout(resolve, graceMs, 'timeout').unref());
    if ((await Promise.race([all.then(() => 'done' as const), grace])) === 'timeout') {
      this.log.warn({ running: [...this.running.keys()] }, 'shutdown grace period over; interrupting running builds');
      for (const r of this.running.values()) r.controller.abort(new Shutdown('dockhook is shutting down'));
      await all;
    }
  }

  private retryDelay(build: BuildRecord): number | undefined {
    const delay = this.settings.retryInitialDelayMs * 2 ** Math.max(build.attempts - 1, 0);
    const elapsed = Date.now() - (build.firstStartedAt ?? Date.now());
    return elapsed + delay <= this.settings.retryWindowMs ? delay : undefined;
  }

  private async execute(build: BuildRecord, controller: AbortController): Promise<void> {
    const log = this.log.child({ build: build.id, delivery: build.deliveryId, repo: `${build.owner}/${build.repo}`, sha: build.sha });
    const out = this.logs.writer(build.id);
    const started = Date.now();
    const timeout = setTimeout(() => {
      controller.abort(new BuildError(`build timed out after ${Math.round(this.settings.timeoutMs / 1000)} s; raise BUILD_TIMEOUT_SECONDS or speed the build up`));
    }, this.settings.timeoutMs);
    let outcome: BuildOutcome;
    // The pending status is not on the build's critical path (GitHub writes are spaced 1 s apart
    // by the throttling plugin); it only has to land before the final status.
    let pending: Promise<void> = Promise.resolve();
    try {
      log.info({ attempt: build.attempts }, 'build started');
      pending = this.hooks.report(build, 'pending', build.attempts > 1 ? `building (attempt ${build.attempts})` : 'building');
      const summary = this.scrub(await this.hooks.run(build, controller.signal, out));
      this.store.markSucceeded(build.id);
      out.line(`succeeded: ${summary}`);
      log.info({ summary, ms: Date.now() - started }, 'build succeeded');
      await pending;
      await this.hooks.report(build, 'success', summary);
      outcome = 'succeeded';
      await this.runAfterSuccess(build, out, log);
    } catch (err) {
      await pending;
      outcome = await this.handleFailure(build, controller, err, out, log);
    } finally {
      clearTimeout(timeout);
    }
    await out.close();
    this.hooks.finished?.(this.store.get(build.id) ?? build, outcome, Date.now() - started);
  }

  /** Housekeeping after a push (retention); the build is already a success, so nothing here may turn it into a failure. */
  private async runAfterSuccess(build: BuildRecord, out: BuildLogWriter, log: Logger): Promise<void> {
    if (!this.hooks.afterSuccess) return;
    try {
      await this.hooks.afterSuccess(build, out);
    } catch (err) {
      const note = this.scrub(`after the push: ${errorMessage(err)}`);
      log.error({ err }, 'post-build step failed; the build stays a success');
      out.line(note);
      this.store.addNote(build.id, note);
    }
  }

  private async handleFailure(build: BuildRecord, controller: AbortController, err: unknown, out: BuildLogWriter, log: Logger): Promise<BuildOutcome> {
    const cause = controller.signal.aborted ? controller.signal.reason : err;
    if (cause instanceof Shutdown) {
      this.store.requeue(build.id, 0, 'interrupted by shutdown');
      out.line('interrupted by shutdown; the build runs again at the next start');
      log.warn('build interrupted by shutdown; queued for the next start');
      return 'interrupted';
    }
    const known = cause instanceof BuildError;
    const reason = this.scrub(known ? cause.message : `internal error: ${errorMessage(cause)}`);
    if (!known) log.error({ err: cause }, 'build crashed');
    const delay = known && cause.transient ? this.retryDelay(build) : undefined;
    if (delay !== undefined) {
      this.store.requeue(build.id, delay, reason);
      out.line(`attempt ${build.attempts} failed: ${reason}; retrying in ${Math.round(delay / 1000)} s`);
      log.warn({ attempt: build.attempts, delayMs: delay, reason }, 'transient failure; will retry');
      await this.hooks.report(build, 'pending', `retrying in ${Math.round(delay / 1000)} s: ${reason}`);
      this.scheduleDelayed();
      return 'retrying';
    }
    const final = known && cause.transient ? `${reason} (gave up after ${build.attempts} attempts; RETRY_WINDOW_SECONDS)` : reason;
    this.store.markFailed(build.id, final);
    out.line(`failed: ${final}`);
    log.warn({ reason: final }, 'build failed');
    await this.hooks.report(build, 'failure', final);
    return 'failed';
  }
}
