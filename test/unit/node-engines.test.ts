import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { it } from 'node:test';
import semver from 'semver';

// The suite runs on both (.ci/run): Node 20 is these machines', Node 24 the active LTS and the image's.
const SUPPORTED_NODES = ['20.20.0', '24.0.0'];

for (const node of SUPPORTED_NODES) {
  it(`every package in the lockfile runs on Node ${node}`, () => {
    const lock = JSON.parse(readFileSync(new URL('../../package-lock.json', import.meta.url), 'utf8')) as {
      packages: Record<string, { version?: string; engines?: { node?: string } | string[] }>;
    };
    const refusing: string[] = [];
    for (const [path, entry] of Object.entries(lock.packages)) {
      const range = !Array.isArray(entry.engines) ? entry.engines?.node : undefined;
      if (!range || path === '') continue;
      if (!semver.satisfies(node, range)) refusing.push(`${path}@${entry.version}: node ${range}`);
    }
    assert.deepEqual(refusing, [], `packages that refuse Node ${node}`);
  });
}
