import assert from 'node:assert/strict';

/** Octokit's log, silenced: the request-log plugin would print every 4xx/5xx a test provokes on purpose. */
export const quiet = { debug() {}, info() {}, warn() {}, error() {} };

export interface Rejection {
  status: number;
  response?: { data: any; headers: Record<string, string> };
}

/** The error of a request that must fail (its status, GitHub's body and headers); fails the test if it succeeded. */
export async function rejection(p: Promise<unknown>): Promise<Rejection> {
  try {
    await p;
  } catch (err) {
    return err as Rejection;
  }
  assert.fail('expected the request to fail');
}
