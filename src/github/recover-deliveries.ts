import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import type { GitHubAccess } from './access.js';
import { findDeliveryHooks, RecoveryProblem } from './recover-deliveries-hooks.js';
import { GITHUB_WINDOW_MS, recoverHook } from './recover-deliveries-pass.js';

export interface DeliveryRecoveryDeps {
  github: GitHubAccess;
  store: Store;
  /** Token mode: the owner/name repositories whose hooks dockhook manages (WEBHOOK_REPOS). App mode: [] (the App's webhook). */
  webhookRepos: string[];
  /** The URL dockhook's hooks point at (…/webhook), to tell dockhook's hook from a repository's others; read at each pass. */
  webhookUrl?: () => string | undefined;
  /** RECOVER_DELIVERIES_MINUTES: a pass now, then every this many minutes; 0 = only when runOnce is called. */
  everyMinutes: number;
  log: Logger;
  metrics: Metrics;
  now?: () => number;
}

export interface RecoveryResult {
  /** False when another process held the recovery lock: this one did nothing. */
  ran: boolean;
  /** Hooks whose deliveries were read to the end. */
  hooks: number;
  /** Delivery attempts listed. */
  listed: number;
  /** GUIDs GitHub was asked to redeliver in this pass. */
  redelivered: string[];
  /** Earlier requests settled in this pass: the redelivery arrived, failed too, or GitHub refused it. */
  delivered: number;
  failed: number;
  refused: number;
  /** One line per hook that could not be recovered, with what to fix. */
  problems: string[];
}

export interface DeliveryRecovery {
  /** One pass now (or the one already running). */
  runOnce(): Promise<RecoveryResult>;
  /** No further pass; a running one is cut short (its GitHub calls aborted) and awaited. */
  stop(): Promise<void>;
}

const nothing = (ran: boolean): RecoveryResult => ({ ran, hooks: 0, listed: 0, redelivered: [], delivered: 0, failed: 0, refused: 0, problems: [] });

/** Requests older than GitHub's window, plus a day, are forgotten: their deliveries cannot be listed any more. */
const FORGET_AFTER_MS = GITHUB_WINDOW_MS + 24 * 3600_000;

/**
 * No missed delivery (issue 15): GitHub never redelivers a failed delivery by
 * itself, so once dockhook listens, and then every N minutes, it lists its
 * hooks' recent deliveries and asks GitHub to redeliver each one that never
 * succeeded and that it has no build for, once. The redelivery comes back
 * through POST /webhook, verified like any delivery, with the same GUID.
 * A failing pass logs a warning with what to fix and never stops dockhook.
 */
export function startDeliveryRecovery(deps: DeliveryRecoveryDeps): DeliveryRecovery {
  const log = deps.log.child({ component: 'recover-deliveries' });
  const now = deps.now ?? Date.now;
  const controller = new AbortController();
  let running: Promise<RecoveryResult> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  async function pass(): Promise<RecoveryResult> {
    const result = nothing(true);
    const signal = controller.signal;
    await deps.store.forgetRedeliveries(now() - FORGET_AFTER_MS);
    const { hooks, problems } = await findDeliveryHooks(deps, signal);
    for (const p of problems) fail(result, p);
    for (const hook of hooks) {
      if (signal.aborted) break;
      try {
        const out = await recoverHook(hook, { store: deps.store, log, metrics: deps.metrics, now, signal });
        result.hooks++;
        result.listed += out.listed;
        result.redelivered.push(...out.redelivered);
        result.delivered += out.delivered;
        result.failed += out.failed;
        result.refused += out.refused;
      } catch (err) {
        if (signal.aborted) break;
        fail(result, err instanceof RecoveryProblem ? err : new RecoveryProblem('list', `recovering the deliveries of ${hook.label} failed: ${(err as Error).message}`));
      }
    }
    return result;
  }

  function fail(result: RecoveryResult, problem: RecoveryProblem): void {
    result.problems.push(problem.message);
    deps.metrics.recoveryFailures.inc({ step: problem.step });
    log.warn({ step: problem.step }, `missed deliveries not recovered: ${problem.message}`);
  }

  async function locked(): Promise<RecoveryResult> {
    const started = now();
    let result: RecoveryResult | undefined;
    try {
      result = await deps.store.withRecoveryLock(pass);
    } catch (err) {
      // The store away, or a bug: this pass is lost, the service and the next pass are not.
      if (controller.signal.aborted) return nothing(false);
      const message = `the recovery pass failed: ${(err as Error).message}; the next pass tries again`;
      log.warn({ err: { message: (err as Error).message } }, message);
      deps.metrics.recoveryPasses.inc({ outcome: 'partial' });
      return { ...nothing(true), problems: [message] };
    }
    if (!result) {
      deps.metrics.recoveryPasses.inc({ outcome: 'skipped' });
      log.debug('another dockhook is recovering deliveries now; skipped');
      return nothing(false);
    }
    deps.metrics.recoveryPasses.inc({ outcome: result.problems.length ? 'partial' : 'complete' });
    const summary = { hooks: result.hooks, listed: result.listed, redelivered: result.redelivered.length, delivered: result.delivered, failed: result.failed, refused: result.refused, ms: now() - started };
    if (result.redelivered.length || result.failed || result.refused) log.info(summary, 'delivery recovery pass done');
    else log.debug(summary, 'delivery recovery pass done');
    return result;
  }

  function runOnce(): Promise<RecoveryResult> {
    if (stopped) return Promise.resolve(nothing(false));
    running ??= locked().finally(() => (running = undefined));
    return running;
  }

  function schedule(ms: number): void {
    if (stopped || deps.everyMinutes <= 0) return;
    timer = setTimeout(() => {
      void runOnce().finally(() => schedule(deps.everyMinutes * 60_000));
    }, ms);
    timer.unref();
  }

  // The first pass as soon as dockhook listens: what it missed while it was down.
  schedule(0);

  return {
    runOnce,
    async stop() {
      if (stopped) return;
      stopped = true;
      clearTimeout(timer);
      controller.abort(new Error('dockhook is stopping'));
      await running?.catch(() => {});
    },
  };
}
