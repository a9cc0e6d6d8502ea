import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import semver from 'semver';

// These machines (and the README's promise) run Node 20: no dependency may need a newer one.
const SUPPORTED_NODE = '20.20.0';

it('every package in the lockfile runs on Node 20', () => {
  const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as {
    packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
  };
  const refusing: string[] = [];
  for (const [path, entry] of Object.entries(lock.packages)) {
    const range = !Array.isArray(entry.engines) ? entry.engines?.node : undefined;
    if (!range || path === '') continue;
    if (!semver.satisfies(SUPPORTED_NODE, range)) refusing.push(`${path}@${entry.version}: node ${range}`);
  }
  assert.deepEqual(refusing, [], `packages that need a newer Node than ${SUPPORTED_NODE}`);
});
