import type { Redelivery, RedeliveryState } from './store.js';

/** A redeliveries row as either database returns it (PostgreSQL's BIGINTs already numbers, see pg-store.ts). */
export interface RedeliveryRow {
  guid: string;
  hook: string;
  attempt_id: number | string;
  state: RedeliveryState;
  requested_at: number | string;
  settled_at: number | string | null;
}

export function toRedelivery(r: RedeliveryRow): Redelivery {
  return {
    guid: r.guid,
    hook: r.hook,
    attemptId: Number(r.attempt_id),
    state: r.state,
    requestedAt: Number(r.requested_at),
    ...(r.settled_at == null ? {} : { settledAt: Number(r.settled_at) }),
  };
}
