import assert from 'node:assert/strict';
import { it } from 'node:test';
import { CacheTally } from '../../src/pipeline/cache-report.js';

it('classic builder: a step followed by " ---> Using cache" is a cached step; FROM is no step', () => {
  const tally = new CacheTally();
  const out = [
    'Step 1/4 : FROM busybox:latest',
    ' ---> 3f57d9401f8d',
    'Step 2/4 : RUN sleep 2 && echo base > /base',
    ' ---> Using cache',
    ' ---> 0a1b2c3d4e5f',
    'Step 3/4 : COPY app.txt /app.txt',
    ' ---> 9f8e7d6c5b4a',
    'Step 4/4 : CMD ["cat", "/app.txt"]',
    ' ---> Running in 1234',
    ' ---> Using cache', // printed by nothing real; a second " ---> Using cache" for one step counts once
    ' ---> Using cache',
  ].map((l) => tally.classicLine(l));
  assert.deepEqual(out.filter(Boolean), ['cached: [2/4] RUN sleep 2 && echo base > /base', 'cached: [4/4] CMD ["cat", "/app.txt"]']);
  assert.deepEqual(tally.report(), { cachedSteps: 2, totalSteps: 3, cached: ['[2/4] RUN sleep 2 && echo base > /base', '[4/4] CMD ["cat", "/app.txt"]'] });
  assert.equal(tally.summary(), 'layers from cache: 2 of 3 steps');
});

it('classic builder: "Using cache" right after a FROM step (multi-stage) belongs to no step', () => {
  const tally = new CacheTally();
  for (const l of ['Step 1/3 : FROM busybox AS build', 'Step 2/3 : RUN make', ' ---> Using cache', 'Step 3/3 : FROM busybox', ' ---> Using cache']) tally.classicLine(l);
  assert.equal(tally.summary(), 'layers from cache: 1 of 1 steps');
});

it('BuildKit: Dockerfile steps count (named stages too), FROM and internal vertexes do not', () => {
  const tally = new CacheTally();
  const out = [
    { name: '[internal] load build definition from Dockerfile', cached: false },
    { name: 'importing cache manifest from localhost:5000/api:latest', cached: false },
    { name: '[1/3] FROM docker.io/library/busybox:latest', cached: true },
    { name: '[build 2/3] RUN sleep 2 && echo base > /base', cached: true },
    { name: '[internal] load build context', cached: false },
    { name: '[stage-1 3/3] COPY app.txt /app.txt', cached: false },
    { name: 'exporting to image', cached: false },
  ].map((s) => tally.buildkitStep(s));
  assert.deepEqual(out.filter(Boolean), ['cached: [build 2/3] RUN sleep 2 && echo base > /base']);
  assert.equal(tally.summary(), 'layers from cache: 1 of 2 steps');
});

it('Podman (buildah): "STEP 2/3: RUN …" and "--> Using cache <id>"', () => {
  const tally = new CacheTally();
  const out = ['STEP 1/3: FROM busybox:latest', 'STEP 2/3: RUN sleep 1 && echo base > /base', '--> Using cache b8cc77947eebcafd4251df62622ed611e25c7b433f52976a139c0953221b8508', '--> b8cc77947ee', 'STEP 3/3: COPY app.txt /app.txt', 'COMMIT x'].map((l) =>
    tally.classicLine(l),
  );
  assert.deepEqual(out.filter(Boolean), ['cached: [2/3] RUN sleep 1 && echo base > /base']);
  assert.equal(tally.summary(), 'layers from cache: 1 of 2 steps');
});
