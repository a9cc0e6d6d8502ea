import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { Store } from '../store/store.js';
import { decideRedeliveries, type DeliveryAttempt } from './recover-deliveries-decide.js';
import { explain, RecoveryProblem, type DeliveryHook } from './recover-deliveries-hooks.js';

/** GitHub keeps a hook's deliveries this long (github.com: 3 days); older ones cannot be listed or redelivered. */
export const GITHUB_WINDOW_MS = 3 * 24 * 3600_000;
/** Re-read this far behind the checkpoint: deliveries logged in the same second as the last one seen, or late. */
export const OVERLAP_MS = 2 * 60_000;
/** A safety stop for one pass (100 deliveries a page): 50,000 deliveries in 3 days is past any dockhook. */
const MAX_PAGES = 500;

export interface HookOutcome {
  listed: number;
  redelivered: string[];
  delivered: number;
  failed: number;
  refused: number;
}

export interface HookPassDeps {
  store: Store;
  log: Logger;
  metrics: Metrics;
  now: () => number;
  signal: AbortSignal;
}

/**
 * One hook: lists its deliveries back to where the last complete pass
 * stopped (or GitHub's window), asks for each missed GUID's redelivery once,
 * settles earlier requests, then moves the checkpoint. Throws a
 * RecoveryProblem, with the checkpoint left where it was, when GitHub cannot
 * be listed or asked: the next pass reads the same deliveries again, and the
 * store's record of what was asked keeps any GUID from being asked twice.
 */
export async function recoverHook(hook: DeliveryHook, deps: HookPassDeps): Promise<HookOutcome> {
  const { store, metrics, signal } = deps;
  const log = deps.log.child({ hook: hook.label });
  const checkpoint = await store.recoveryCheckpoint(hook.key);
  const stopAt = Math.max(deps.now() - GITHUB_WINDOW_MS, checkpoint === undefined ? -Infinity : checkpoint - OVERLAP_MS);
  const attempts = await listSince(hook, stopAt, signal);
  const out: HookOutcome = { listed: attempts.length, redelivered: [], delivered: 0, failed: 0, refused: 0 };
  if (attempts.length === 0) return out;

  const guids = [...new Set(attempts.map((a) => a.guid))];
  const [stored, redelivered] = await Promise.all([store.storedDeliveries(guids), store.redeliveries(guids)]);
  const decision = decideRedeliveries(attempts, { stored, redelivered });

  for (const guid of decision.delivered) {
    if (!(await store.settleRedelivery(guid, 'delivered'))) continue;
    out.delivered++;
    metrics.redeliveries.inc({ outcome: 'delivered' });
    log.info({ delivery: guid }, 'the redelivered delivery arrived');
  }
  for (const a of decision.failed) {
    if (!(await store.settleRedelivery(a.guid, 'failed'))) continue;
    out.failed++;
    metrics.redeliveries.inc({ outcome: 'failed' });
    log.warn(
      { delivery: a.guid, event: a.event, action: a.action, statusCode: a.statusCode },
      `the redelivery failed too (${whyFailed(a.statusCode)}); dockhook does not ask again: fix that, then redeliver it from the hook's Recent Deliveries page, or run \`dockhook build\` for the commit`,
    );
  }
  for (const a of decision.redeliver) {
    if (signal.aborted) throw signal.reason;
    if (!(await store.claimRedelivery({ guid: a.guid, hook: hook.key, attemptId: a.id }))) continue;
    const fields = { delivery: a.guid, event: a.event, action: a.action, lastStatusCode: a.statusCode };
    try {
      await hook.redeliver(a.id, signal);
    } catch (err) {
      const status = (err as { status?: number }).status;
      if (!signal.aborted && (status === 400 || status === 422)) {
        // This delivery only (too old, or GitHub will not resend it): settled, never asked again.
        await store.settleRedelivery(a.guid, 'refused');
        out.refused++;
        metrics.redeliveries.inc({ outcome: 'refused' });
        const said = String((err as Error).message).split(' - ')[0];
        log.warn({ ...fields, status }, `GitHub refused to redeliver it (${status}: ${said}); it is not asked for again: if it was a merge, run \`dockhook build\` for the commit`);
        continue;
      }
      // GitHub away, or the credentials refused: nothing was redelivered, so a later pass may ask again.
      await store.releaseRedelivery(a.guid);
      if (signal.aborted) throw err;
      throw new RecoveryProblem('redeliver', explain(err, `asking GitHub to redeliver ${a.guid} through ${hook.label}`, hook.key.startsWith('app:') ? 'app' : 'repo', repoOf(hook.key)));
    }
    out.redelivered.push(a.guid);
    metrics.redeliveries.inc({ outcome: 'requested' });
    log.info(fields, 'missed delivery: asked GitHub to redeliver it');
  }
  await store.setRecoveryCheckpoint(hook.key, Math.max(...attempts.map((a) => a.deliveredAt)));
  return out;
}

/** Newest first, page after page, until a delivery older than `stopAt` or the last page. */
async function listSince(hook: DeliveryHook, stopAt: number, signal: AbortSignal): Promise<DeliveryAttempt[]> {
  const attempts: DeliveryAttempt[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const { attempts: listed, next } = await hook.page(cursor, signal);
    for (const a of listed) {
      if (!(a.deliveredAt >= stopAt)) return attempts; // older than the window or the checkpoint (or no date at all)
      attempts.push(a);
    }
    if (!next || next === cursor || listed.length === 0) break;
    cursor = next;
  }
  return attempts;
}

/** What a failed attempt's status says, for the warning. */
export function whyFailed(statusCode: number): string {
  if (statusCode === 0) return 'GitHub could not reach dockhook: check that the webhook URL (PUBLIC_URL, the tunnel) reaches it';
  if (statusCode === 401) return "dockhook answered 401: the hook's secret differs from WEBHOOK_SECRET";
  if (statusCode === 503) return 'dockhook answered 503: it was stopping, or its store could not be reached';
  return `the receiver answered ${statusCode}: the hook's Recent Deliveries page shows its answer`;
}

/** owner/name of a repo:<owner>/<name>:<hook id> key. */
function repoOf(key: string): string | undefined {
  return key.startsWith('repo:') ? key.slice(5, key.lastIndexOf(':')) : undefined;
}
