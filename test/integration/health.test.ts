import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import express from 'express';
import type Docker from 'dockerode';
import { healthRouter, type HealthDeps } from '../../src/http/health.js';
import type { SqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { startEngineProxy } from '../support/engine-proxy.js';
import { startHarness } from '../support/harness.js';

describe('/healthz, /readyz and /metrics', () => {
  it('readyz is 200 only while the engine, the registry and the store all answer, and names the one that does not', async () => {
    const engine = await startEngineProxy();
    const h = await startHarness({ dockerSocket: engine.socketPath });
    try {
      const ready = await fetch(`${h.url}/readyz`);
      assert.equal(ready.status, 200);
      const { platforms, ...readyBody } = await ready.json();
      assert.deepEqual(readyBody, { ready: true, checks: { docker: 'ok', registry: 'ok', store: 'ok' } });
      // What the engine runs: its own platform, and what QEMU adds (scripts/ensure-docker.sh enables arm64 and arm).
      assert.match(platforms.native, /^linux\/[a-z0-9]+/);
      assert.ok(Array.isArray(platforms.emulated), JSON.stringify(platforms));
      if (platforms.native === 'linux/amd64') assert.ok(platforms.emulated.includes('linux/arm64'), JSON.stringify(platforms));
      assert.deepEqual(Object.keys(platforms).filter((k) => k !== 'problems'), ['native', 'emulated']);

      await h.registry.stop();
      const noRegistry = await fetch(`${h.url}/readyz`);
      assert.equal(noRegistry.status, 503);
      const body = await noRegistry.json();
      assert.deepEqual(body.failed, ['registry']);
      assert.match(body.checks.registry, /registry unreachable/);
      assert.equal((await fetch(`${h.url}/healthz`)).status, 200, 'healthz only says the process serves');
      await h.registry.start();

      await engine.down();
      const noEngine = await (await fetch(`${h.url}/readyz`)).json();
      assert.deepEqual(noEngine.failed, ['docker']);
      await engine.up();

      // SQLite itself refuses writes: what a read-only or full disk looks like from inside.
      const sqlite = h.service.store as SqliteStore;
      sqlite.db.pragma('query_only = ON');
      const noStore = await fetch(`${h.url}/readyz`);
      assert.equal(noStore.status, 503);
      assert.deepEqual((await noStore.json()).failed, ['store']);
      sqlite.db.pragma('query_only = OFF');
      assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
    } finally {
      await h.close();
      await engine.close();
    }
  });

  it('readyz lists the platforms without making readiness hang on emulation', async () => {
    let emulated: string[] | 'unknown' = [];
    let probes = 0;
    const deps = {
      docker: { ping: async () => 'OK' } as unknown as Docker,
      registry: { ping: async () => ({ ok: true, status: 200 }) },
      store: { checkWritable: async () => {} },
      platforms: async () => {
        probes++;
        return { native: 'linux/amd64', architecture: 'x86_64', emulated, problems: 'binfmt_misc is not mounted at /proc/sys/fs/binfmt_misc: no foreign platform can run' };
      },
    } as unknown as HealthDeps;
    const serve = async (d: HealthDeps) => {
      const app = express().use(healthRouter(d));
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, close: () => new Promise((resolve) => server.close(resolve)) };
    };
    const s = await serve(deps);
    try {
      const res = await fetch(`${s.url}/readyz`);
      assert.equal(res.status, 200, 'no emulation is not a readiness problem');
      assert.deepEqual((await res.json()).platforms, { native: 'linux/amd64', emulated: [], problems: 'binfmt_misc is not mounted at /proc/sys/fs/binfmt_misc: no foreign platform can run' });
      emulated = 'unknown';
      await fetch(`${s.url}/readyz`);
      assert.equal(probes, 1, 'docker info is asked at most every 30 s');
    } finally {
      await s.close();
    }
    const failing = await serve({ ...deps, platforms: async () => { throw new Error('info refused'); } });
    try {
      const res = await fetch(`${failing.url}/readyz`);
      assert.equal(res.status, 200, 'the docker check decides readiness, not the platforms probe');
      assert.deepEqual((await res.json()).platforms, { error: 'info refused' });
    } finally {
      await failing.close();
    }
    const receiver = await serve({ ...deps, role: 'receiver' });
    try {
      assert.equal((await (await fetch(`${receiver.url}/readyz`)).json()).platforms, undefined, 'a receiver builds nothing');
    } finally {
      await receiver.close();
    }
  });

  it('a registry that wants credentials counts as up (401 on /v2/)', async () => {
    const h = await startHarness({ registry: { auth: { username: 'u', password: 'p-123456' } } });
    try {
      assert.equal((await fetch(`${h.url}/readyz`)).status, 200);
    } finally {
      await h.close();
    }
  });

  it('metrics: deliveries and builds by outcome, build and push durations, queue depth, process metrics', async () => {
    const h = await startHarness();
    try {
      const repo = await h.createRepo('metrics-org', 'app', {
        'dockerInfo.json': '{"service_name": "metrics-app", "version": "1.0.0"}',
        Dockerfile: `FROM busybox:latest\nRUN echo ${randomUUID()}\n`,
      });
      const answer = await h.merge('metrics-org', 'app', repo.head());
      await h.waitForBuild(answer.body.build);
      await h.merge('metrics-org', 'app', repo.head());
      await h.deliver({ zen: 'hi', hook_id: 1 }, { event: 'ping' });
      await fetch(`${h.url}/webhook`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } });

      const res = await fetch(`${h.url}/metrics`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await res.text();
      const value = (line: RegExp) => Number(line.exec(text)?.[1]);
      assert.equal(value(/^dockhook_deliveries_total\{outcome="queued"\} (\d+)/m), 1);
      assert.equal(value(/^dockhook_deliveries_total\{outcome="duplicate"\} (\d+)/m), 1);
      assert.equal(value(/^dockhook_deliveries_total\{outcome="ignored"\} (\d+)/m), 1);
      assert.equal(value(/^dockhook_deliveries_total\{outcome="rejected"\} (\d+)/m), 1);
      assert.equal(value(/^dockhook_builds_total\{outcome="succeeded"\} (\d+)/m), 1);
      assert.equal(value(/^dockhook_build_duration_seconds_count (\d+)/m), 1);
      assert.equal(value(/^dockhook_push_duration_seconds_count (\d+)/m), 3, 'version, sha- and latest');
      assert.equal(value(/^dockhook_queue_depth\{state="queued"\} (\d+)/m), 0);
      assert.equal(value(/^dockhook_queue_depth\{state="running"\} (\d+)/m), 0);
      assert.match(text, /^process_resident_memory_bytes \d+/m);
      assert.match(text, /^nodejs_eventloop_lag_seconds /m);
    } finally {
      await h.close();
    }
  });
});
