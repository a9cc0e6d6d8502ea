import type { Logger } from '../log.js';
import type { Store } from './store.js';
import { isStoreUnavailable } from './store-errors.js';

/** What a running build calls on the store: its writes, and the two reads it cannot go on without. */
const RETRIED = [
  'expandGroup', 'setImage', 'claimLatest', 'claimVersion', 'releaseVersion', 'claimRetention', 'addNote', 'recordPush', 'recordPlatform', 'recordArtifact', 'createDeployment', 'finishDeployment', 'setDeploymentGithubId',
  'markSucceeded', 'markFailed', 'requeue', 'hasLaterLatest', 'get', 'listGroup', 'lastSuccess',
] as const;

export interface RetryOptions {
  /** Give up after this long: by then the lease has run out and another worker owns the build. */
  giveUpMs: number;
  log: Logger;
  sleep?: (ms: number) => Promise<void>;
}

/**
 * A worker's view of the store: what a running build writes is retried while
 * the store is unreachable, so a build that was running when PostgreSQL went
 * away still records its pushes and its end once it is back. Claims are not
 * retried (a worker without its store starts nothing new).
 */
export function withWriteRetries(store: Store, options: RetryOptions): Store {
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const wrapped = new Map<PropertyKey, unknown>();
  for (const name of RETRIED) {
    const original = (store[name] as (...args: unknown[]) => Promise<unknown>).bind(store);
    wrapped.set(name, async (...args: unknown[]) => {
      const started = Date.now();
      for (let delay = 250; ; delay = Math.min(delay * 2, 5000)) {
        try {
          return await original(...args);
        } catch (err) {
          if (!isStoreUnavailable(err) || Date.now() - started + delay > options.giveUpMs) throw err;
          options.log.warn({ op: name, retryInMs: delay }, 'the store cannot be reached; retrying the write');
          await sleep(delay);
        }
      }
    });
  }
  return new Proxy(store, {
    get(target, prop) {
      if (wrapped.has(prop)) return wrapped.get(prop);
      const value = Reflect.get(target, prop, target) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
