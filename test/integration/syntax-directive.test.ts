import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startHarness, type Harness } from '../support/harness.js';

const OWNER = 'octo-org';

// Docker Hub cannot be reached from here, as on an air-gapped host: the frontend image never arrives.
describe('a Dockerfile with a # syntax= line, where Docker Hub is unreachable', () => {
  for (const builder of ['buildkit', 'classic'] as const) {
    describe(`${builder} builder`, () => {
      let h: Harness;
      before(async () => {
        h = await startHarness({ env: { BUILDER: builder } });
      });
      after(async () => {
        await h?.close();
      });

      it(builder === 'buildkit' ? 'fails naming the directive and the two ways out' : 'builds: the classic builder reads the line as a comment', async () => {
        const name = `syntax-${builder}`;
        const repo = await h.createRepo(OWNER, name, {
          'dockerInfo.json': JSON.stringify({ service_name: name, version: '1.0.0' }),
          Dockerfile: '# syntax=docker/dockerfile:1\nFROM busybox:latest\nRUN echo ok > /ok\n',
        });
        const build = await h.waitForBuild((await h.merge(OWNER, name, repo.head())).body.build);
        if (builder === 'classic') {
          assert.equal(build.state, 'succeeded', build.failure);
          return;
        }
        assert.equal(build.state, 'failed');
        const failure = build.failure ?? '';
        assert.match(failure, /"# syntax=docker\/dockerfile:1" line/);
        assert.match(failure, /mirror the image into your registry/);
        assert.ok(failure.includes(`"BUILDKIT_SYNTAX": "${h.registry.host}/docker/dockerfile:1"`), failure);
        assert.match(failure, /delete the "# syntax=" line/);
      });
    });
  }
});
