import type { BuildLogs, BuildLogWriter } from '../logs/build-logs.js';
import { BuildError, errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { BuildRecord, Lease, Store } from '../store/store.js';
import { isStoreUnavailable } from '../store/store-errors.js';
import { LeaseKeeper } from './lease-keeper.js';

export type BuildOutcome = 'succeeded' | 'failed' | 'retrying' | 'interrupted';

export interface RunResult {
  /** One line for GitHub and the log. */
  summary: string;
  /** The store already recorded the build's end (a multi-image head that queued its images): the worker writes nothing more. */
  recorded?: boolean;
  /** A multi-image head: its images report under their own contexts (no commit status for it; in App mode its check run lists them). */
  silent?: boolean;
}

export interface WorkerHooks {
  /**
   * Runs the build. `progress` sets the pending status once the build knows
   * it has work to do (an unchanged image never shows "building").
   */
  run(build: BuildRecord, signal: AbortSignal, out: BuildLogWriter, progress: (description: string) => void): Promise<RunResult>;
  /** Tells GitHub; must not throw. `silent`: a multi-image merge's own build, whose images report under their own names (token mode sends nothing for it). */
  report(build: BuildRecord, state: 'pending' | 'success' | 'failure', description: string, silent?: boolean): Promise<void>;
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
  /** This worker's name in the store, and how long its claims last unless renewed (LEASE_SECONDS). */
  lease: Lease;
  /** Look for work this often even when no notification came (a lost LISTEN connection, a retry delay on another host). */
  pollMs: number;
}

class Shutdown extends Error {}
/** Another worker took the build over: this one stops and writes nothing more about it. */
class LeaseLost extends Error {}

/**
 * Pulls builds from the store and runs up to `concurrency` at once, each
 * under a lease it renews (Woodpecker's Next/Extend). All state lives in the
 * store, so a crash loses nothing: with SQLite the next start re-queues what
 * was running; with PostgreSQL another worker takes a build over once its
 * lease runs out. It wakes on the store's "queued" notification, after each
 * build, when a retry delay or a lease ends, and every `pollMs` as a fallback.
 */
export class Worker {
  private readonly running = new Map<number, { controller: AbortController; done: Promise<void> }>();
  /**
   * Builds holding one of the `concurrency` slots: from the claim until the
   * store has their outcome. Reporting to GitHub afterwards (writes spaced 1 s
   * apart) happens outside the slot, so the next image of a merge need not
   * wait for the last one's status.
   */
  private readonly slots = new Set<number>();
  private timer: NodeJS.Timeout | undefined;
  private poller: NodeJS.Timeout | undefined;
  private stopping = false;
  private started = false;
  private claiming: Promise<void> | undefined;
  private claimAgain = false;
  private unsubscribe: (() => void) | undefined;
  private readonly leases: LeaseKeeper;
  /** Set while the store cannot be reached: nothing new starts, what runs goes on. */
  storeProblem: string | undefined;

  constructor(
    private readonly store: Store,
    private readonly logs: BuildLogs,
    private readonly hooks: WorkerHooks,
    private readonly settings: WorkerSettings,
    private readonly log: Logger,
    private readonly scrub: (text: string) => string = (t) => t,
  ) {
    this.leases = new LeaseKeeper(store, settings.lease, log);
  }

  async start(): Promise<void> {
    const recovered = await this.store.recoverInterrupted();
    if (recovered > 0) this.log.warn({ recovered }, 'builds interrupted by the last stop are queued again');
    this.started = true;
    this.leases.start();
    this.unsubscribe = this.store.onQueued(() => this.kick());
    this.poller = setInterval(() => this.kick(), this.settings.pollMs);
    this.poller.unref();
    this.kick();
  }

  get activeCount(): number {
    return this.slots.size;
  }

  /** True until the build's last step (the GitHub status included) is over. */
  isRunning(id: number): boolean {
    return this.running.has(id);
  }

  /** Looks for work now: after an enqueue, after a build ends, when a retry delay runs out. One claim loop at a time. */
  kick(): void {
    if (!this.started || this.stopping) return;
    if (this.claiming) {
      this.claimAgain = true;
      return;
    }
    this.claiming = this.claimLoop().finally(() => {
      this.claiming = undefined;
      if (this.claimAgain) {
        this.claimAgain = false;
        this.kick();
      }
    });
  }

  /** Resolves once no claim is in flight (a stop waits for it, so no build starts after the stop). */
  private async claimLoop(): Promise<void> {
    try {
      while (!this.stopping && this.slots.size < this.settings.concurrency) {
        const build = await this.store.claimNext(this.settings.lease);
        if (!build) break;
        if (this.stopping) {
          await this.store.requeue(build.id, 0, 'interrupted by shutdown', this.settings.lease.owner);
          break;
        }
        this.startBuild(build);
      }
      if (this.storeProblem) this.log.info('the store answers again; taking builds');
      this.storeProblem = undefined;
      await this.scheduleDelayed();
    } catch (err) {
      if (!isStoreUnavailable(err)) throw err;
      if (!this.storeProblem) this.log.warn({ err: err.message }, 'cannot claim builds: the store cannot be reached; running builds go on, new ones wait');
      this.storeProblem = err.message;
    }
  }

  private startBuild(build: BuildRecord): void {
    this.slots.add(build.id);
    // A retry whose delay ran out while its failed attempt was still reporting here: run it once that one is over.
    const previous = this.running.get(build.id);
    if (previous) {
      void previous.done.then(() => this.startBuild(build));
      return;
    }
    const controller = new AbortController();
    this.leases.hold(build.id, (reason) => controller.abort(new LeaseLost(reason)));
    let freed = false;
    // Once the store holds the outcome: the lease has nothing left to guard, and the slot goes to the next build.
    const free = () => {
      if (freed) return;
      freed = true;
      this.leases.release(build.id);
      this.slots.delete(build.id);
      this.kick();
    };
    const done = this.execute(build, controller, free).finally(() => {
      free();
      this.running.delete(build.id);
      this.kick();
    });
    this.running.set(build.id, { controller, done });
  }

  private async scheduleDelayed(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const next = await this.store.nextWakeAt();
    if (next === undefined || this.stopping) return;
    const wait = Math.max(next - Date.now(), 50);
    if (wait >= this.settings.pollMs) return; // the poller comes sooner
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
    if (this.poller) clearInterval(this.poller);
    this.unsubscribe?.();
    await this.claiming;
    const all = Promise.all([...this.running.values()].map((r) => r.done));
    const grace = new Promise<'timeout'>((resolve) => setTimeout(resolve, graceMs, 'timeout').unref());
    if ((await Promise.race([all.then(() => 'done' as const), grace])) === 'timeout') {
      this.log.warn({ running: [...this.running.keys()] }, 'shutdown grace period over; interrupting running builds');
      for (const r of this.running.values()) r.controller.abort(new Shutdown('dockhook is shutting down'));
      await all;
    }
    this.leases.stop();
  }

  private retryDelay(build: BuildRecord): number | undefined {
    const delay = this.settings.retryInitialDelayMs * 2 ** Math.max(build.attempts - 1, 0);
    const elapsed = Date.now() - (build.firstStartedAt ?? Date.now());
    return elapsed + delay <= this.settings.retryWindowMs ? delay : undefined;
  }

  private async execute(build: BuildRecord, controller: AbortController, free: () => void): Promise<void> {
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
    let pendingSent = false;
    const progress = (description: string) => {
      if (pendingSent) return;
      pendingSent = true;
      pending = this.hooks.report(build, 'pending', build.attempts > 1 ? `${description} (attempt ${build.attempts})` : description);
    };
    try {
      log.info({ attempt: build.attempts }, 'build started');
      const result = await this.hooks.run(build, controller.signal, out, progress);
      const summary = this.scrub(result.summary);
      if (controller.signal.aborted) throw controller.signal.reason;
      if (!result.recorded && !(await this.store.markSucceeded(build.id, this.settings.lease.owner))) throw new LeaseLost('the lease ran out before the build was recorded');
      free();
      out.line(`succeeded: ${summary}`);
      log.info({ summary, ms: Date.now() - started }, 'build succeeded');
      await pending;
      await this.hooks.report(build, 'success', summary, result.silent === true);
      outcome = 'succeeded';
      await this.runAfterSuccess(build, out, log);
    } catch (err) {
      await pending;
      outcome = await this.handleFailure(build, controller, err, out, log, free);
    } finally {
      clearTimeout(timeout);
    }
    await out.close();
    this.hooks.finished?.((await this.store.get(build.id).catch(() => undefined)) ?? build, outcome, Date.now() - started);
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
      await this.store.addNote(build.id, note).catch((e: unknown) => log.error({ err: e }, 'could not record the note'));
    }
  }

  private async handleFailure(build: BuildRecord, controller: AbortController, err: unknown, out: BuildLogWriter, log: Logger, free: () => void): Promise<BuildOutcome> {
    const cause = controller.signal.aborted ? controller.signal.reason : err;
    const owner = this.settings.lease.owner;
    if (cause instanceof LeaseLost) {
      out.line(`stopped here: ${cause.message}; that worker runs it from the start`);
      log.warn({ reason: cause.message }, 'build given up: its lease is lost');
      return 'interrupted';
    }
    if (cause instanceof Shutdown) {
      await this.store.requeue(build.id, 0, 'interrupted by shutdown', owner);
      out.line('interrupted by shutdown; the build runs again at the next start');
      log.warn('build interrupted by shutdown; queued for the next start');
      return 'interrupted';
    }
    const known = cause instanceof BuildError;
    const reason = this.scrub(known ? cause.message : `internal error: ${errorMessage(cause)}`);
    if (!known) log.error({ err: cause }, 'build crashed');
    const delay = known && cause.transient ? this.retryDelay(build) : undefined;
    if (delay !== undefined) {
      await this.store.requeue(build.id, delay, reason, owner);
      free();
      out.line(`attempt ${build.attempts} failed: ${reason}; retrying in ${Math.round(delay / 1000)} s`);
      log.warn({ attempt: build.attempts, delayMs: delay, reason }, 'transient failure; will retry');
      await this.hooks.report(build, 'pending', `retrying in ${Math.round(delay / 1000)} s: ${reason}`);
      this.kick();
      return 'retrying';
    }
    const final = known && cause.transient ? `${reason} (gave up after ${build.attempts} attempts; RETRY_WINDOW_SECONDS)` : reason;
    if (!(await this.store.markFailed(build.id, final, owner))) {
      log.warn({ reason: final }, 'build failed, but its lease is lost; the worker that took it over reports it');
      return 'interrupted';
    }
    free();
    out.line(`failed: ${final}`);
    log.warn({ reason: final }, 'build failed');
    await this.hooks.report(build, 'failure', final);
    return 'failed';
  }
}
