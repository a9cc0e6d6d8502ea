import type { Logger } from '../log.js';
import type { Lease, Store } from '../store/store.js';
import { isStoreUnavailable } from '../store/store-errors.js';

/**
 * Renews the leases of the builds this worker runs, every third of the lease.
 * A build whose renewal says "no longer yours" (another worker took it over
 * after our lease ran out: a long stall, a lost store) is aborted here, so
 * two workers never push the same build at once for long. A store that cannot
 * be reached is not a lost lease: the renewal is tried again next tick.
 */
export class LeaseKeeper {
  private timer: NodeJS.Timeout | undefined;
  private readonly held = new Map<number, (reason: string) => void>();

  constructor(
    private readonly store: Store,
    private readonly lease: Lease,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.timer = setInterval(() => void this.renewAll(), Math.max(Math.floor(this.lease.ms / 3), 100));
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  hold(id: number, onLost: (reason: string) => void): void {
    this.held.set(id, onLost);
  }

  release(id: number): void {
    this.held.delete(id);
  }

  private async renewAll(): Promise<void> {
    for (const [id, onLost] of [...this.held]) {
      try {
        if (await this.store.renewLease(id, this.lease)) continue;
        this.held.delete(id);
        this.log.warn({ build: id }, 'lease lost: another worker has taken this build over; stopping it here');
        onLost('the lease on this build ran out and another worker took it over');
      } catch (err) {
        if (!isStoreUnavailable(err)) this.log.error({ err, build: id }, 'renewing a lease failed');
      }
    }
  }
}
