import type { Redelivery } from '../store/store.js';

/** One attempt of a delivery, as GitHub lists a hook's deliveries (newest first). */
export interface DeliveryAttempt {
  /** GitHub's id of this attempt: what a redelivery request names. */
  id: number;
  /** X-GitHub-Delivery: shared by the first attempt and every redelivery of it. */
  guid: string;
  /** delivered_at, ms since the epoch (GitHub's clock). */
  deliveredAt: number;
  /** The receiver's HTTP status; 0 when it could not be reached. */
  statusCode: number;
  redelivery: boolean;
  event: string;
  action?: string | null;
}

export interface KnownDeliveries {
  /** GUIDs dockhook has a build for. */
  stored: ReadonlySet<string>;
  /** Redeliveries dockhook asked for earlier, by GUID. */
  redelivered: ReadonlyMap<string, Redelivery>;
}

export interface RecoveryDecision {
  /** One attempt per GUID to redeliver (its newest), oldest GUID first. */
  redeliver: DeliveryAttempt[];
  /** Requested redeliveries that arrived (a 2xx, or dockhook has the build). */
  delivered: string[];
  /** Requested redeliveries whose redelivery failed too: the newest failed redelivery of each. */
  failed: DeliveryAttempt[];
}

export const succeeded = (a: Pick<DeliveryAttempt, 'statusCode'>) => a.statusCode >= 200 && a.statusCode < 300;

/**
 * Which deliveries to ask GitHub for again, from a hook's listed attempts and
 * what dockhook knows. A GUID is redelivered when none of its attempts
 * succeeded, dockhook has no build for it and never asked for it before (a
 * GUID is asked for once, whatever came of it). A GUID asked for earlier is
 * settled once the listing shows how its redelivery went.
 */
export function decideRedeliveries(attempts: readonly DeliveryAttempt[], known: KnownDeliveries): RecoveryDecision {
  const byGuid = new Map<string, DeliveryAttempt[]>();
  for (const a of attempts) {
    const list = byGuid.get(a.guid);
    if (list) list.push(a);
    else byGuid.set(a.guid, [a]);
  }
  const decision: RecoveryDecision = { redeliver: [], delivered: [], failed: [] };
  const firstSeen = new Map<string, number>();
  for (const [guid, list] of byGuid) {
    const arrived = list.some(succeeded) || known.stored.has(guid);
    const asked = known.redelivered.get(guid);
    if (asked) {
      if (asked.state !== 'requested') continue;
      if (arrived) {
        decision.delivered.push(guid);
        continue;
      }
      // The redelivery is an attempt made after the one that was redelivered (GitHub's ids grow).
      const ours = newest(list.filter((a) => a.redelivery && a.id > asked.attemptId && !succeeded(a)));
      if (ours) decision.failed.push(ours);
      continue;
    }
    if (!arrived) {
      decision.redeliver.push(newest(list)!);
      firstSeen.set(guid, Math.min(...list.map((a) => a.deliveredAt)));
    }
  }
  // In the order the events happened (their first attempts): a merge is redelivered before a later one.
  decision.redeliver.sort((a, b) => firstSeen.get(a.guid)! - firstSeen.get(b.guid)! || a.id - b.id);
  return decision;
}

function newest(list: DeliveryAttempt[]): DeliveryAttempt | undefined {
  let best: DeliveryAttempt | undefined;
  for (const a of list) if (!best || a.id > best.id) best = a;
  return best;
}
