/**
 * Runs steps one after another per key (a build's check run, a pull
 * request's comment), in the order they were asked for, within this
 * process. A failing step is handed to onError and does not stop the next.
 */
export function oneAtATime<K>(onError: (key: K, err: unknown) => void): (key: K, step: () => Promise<void>) => Promise<void> {
  const chains = new Map<K, Promise<void>>();
  return (key, step) => {
    const next = (chains.get(key) ?? Promise.resolve()).then(step).catch((err: unknown) => onError(key, err));
    chains.set(key, next);
    void next.then(() => {
      if (chains.get(key) === next) chains.delete(key);
    });
    return next;
  };
}
