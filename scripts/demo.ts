/**
 * `npm run demo`: the whole job on one machine, no GitHub account. Starts a
 * registry (left running so the pull line keeps working), a fake GitHub that
 * serves a small sample repository, and dockhook; sends a merged pull request
 * signed as GitHub signs it; waits for the push; proves the image pulls and runs.
 */
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { pino } from 'pino';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { startService } from '../src/service.js';
import { ensureBusyboxImage } from '../test/support/base-image.js';
import { mergedPullRequestPayload, postDelivery } from '../test/support/deliveries.js';
import { startFakeGitHub } from '../test/support/fake-github.js';
import { createGitRepo } from '../test/support/git-repo.js';

const run = promisify(execFile);
const DEMO_DIR = resolve('.demo');
const PORT = Number(process.env.DEMO_REGISTRY_PORT ?? 5055);
const REGISTRY = `127.0.0.1:${PORT}`;
const SECRET = 'demo-webhook-secret';
const TOKEN = 'ghp_demo_token';
const say = (text: string) => process.stdout.write(`${text}\n`);

async function registryAnswers(): Promise<boolean> {
  try {
    const res = await fetch(`http://${REGISTRY}/v2/`, { signal: AbortSignal.timeout(1000) });
    return res.status === 200;
  } catch {
    return false;
  }
}

/** A registry:2 server (Debian's docker-registry binary) that outlives the demo, so `docker pull` works afterwards. */
async function ensureRegistry(): Promise<string> {
  if (await registryAnswers()) return `already running at ${REGISTRY}`;
  const dir = join(DEMO_DIR, 'registry');
  await mkdir(dir, { recursive: true });
  const config = join(dir, 'config.yml');
  await writeFile(
    config,
    ['version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', `    rootdirectory: ${JSON.stringify(join(dir, 'data'))}`, '  delete:', '    enabled: true', 'http:', `  addr: ${JSON.stringify(REGISTRY)}`, ''].join('\n'),
  );
  const { openSync } = await import('node:fs');
  const out = openSync(join(dir, 'registry.log'), 'a');
  const child = spawn('docker-registry', ['serve', config], { detached: true, stdio: ['ignore', out, out] });
  child.unref();
  await writeFile(join(dir, 'pid'), String(child.pid));
  for (let i = 0; i < 100; i++) {
    if (await registryAnswers()) return `started at ${REGISTRY} (pid ${child.pid}; stop it with: kill ${child.pid})`;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the registry did not start on ${REGISTRY}; see ${join(dir, 'registry.log')} (set DEMO_REGISTRY_PORT if the port is taken)`);
}

async function main(): Promise<void> {
  say('dockhook demo: merge → image, on this machine');
  await ensureBusyboxImage();
  say(`• registry ${await ensureRegistry()}`);

  const github = await startFakeGitHub({ token: TOKEN });
  const version = `1.0.${Math.floor(Date.now() / 1000) % 100000}`;
  const repo = await createGitRepo({
    'dockerInfo.json': JSON.stringify({ service_name: 'demo-app', version }, null, 2),
    Dockerfile: 'FROM busybox:latest\nWORKDIR /app\nCOPY . .\nRUN echo "built by dockhook" > built.txt\nCMD ["cat", "/app/message.txt"]\n',
    'message.txt': `Hello from demo-app ${version}, built from a merged pull request.\n`,
    '.dockerignore': 'notes/\n',
    'notes/todo.md': 'not in the image\n',
  });
  github.addRepo('demo-org', 'demo-app', repo);
  say(`• fake GitHub at ${github.apiUrl} serving demo-org/demo-app @ ${repo.head().slice(0, 7)}`);

  const dataDir = join(DEMO_DIR, 'data');
  await rm(dataDir, { recursive: true, force: true });
  const config = loadConfig({ WEBHOOK_SECRET: SECRET, GITHUB_TOKEN: TOKEN, GITHUB_API_URL: github.apiUrl, REGISTRY, PORT: '0', HOST: '127.0.0.1', DATA_DIR: dataDir, LOG_LEVEL: 'info' });
  await mkdir(dataDir, { recursive: true });
  const logFile = join(dataDir, 'dockhook.log');
  const service = await startService(config, { log: createLogger('info', pino.destination({ dest: logFile, sync: true })) });
  say(`• dockhook at ${service.url} (its log: ${logFile})`);

  try {
    const payload = mergedPullRequestPayload({ owner: 'demo-org', repo: 'demo-app', sha: repo.head(), number: 1 });
    const answer = await postDelivery(`${service.url}/webhook`, SECRET, payload);
    say(`• POST /webhook (pull_request closed, merged, signed X-Hub-Signature-256) → ${answer.status} ${JSON.stringify(answer.body)}`);
    if (answer.status !== 202) throw new Error('dockhook did not queue the build');
    const id = answer.body.build as number;
    let build = (await service.store.get(id))!;
    while (build.state === 'queued' || build.state === 'running' || service.worker?.isRunning(id)) {
      await new Promise((r) => setTimeout(r, 200));
      build = (await service.store.get(id))!;
    }
    if (build.state !== 'succeeded') {
      say(await service.logs.read(id));
      throw new Error(`the build failed: ${build.failure}`);
    }
    for (const s of github.statusesFor(repo.head())) say(`• commit status on GitHub: ${s.state} — ${s.description}`);
    const ref = `${REGISTRY}/demo-app:${version}`;
    // Prove the pull line: drop the local copies, pull from the registry, run it.
    for (const p of build.pushed) await run('docker', ['rmi', '-f', p.ref]).catch(() => undefined);
    await run('docker', ['pull', '-q', ref]);
    const { stdout } = await run('docker', ['run', '--rm', '--network', 'none', ref]);
    say('');
    say(`Pushed: ${build.pushed.map((p) => `${p.ref} (${p.digest.slice(0, 19)}…)`).join('\n        ')}`);
    say(`Pull it:  docker pull ${ref}`);
    say(`Run it:   docker run --rm ${ref}   → ${stdout.trim()}`);
    say(`Build log: ${join(dataDir, 'logs', `${id}.log`)}`);
  } finally {
    await service.stop(0);
    await github.close();
    await repo.cleanup();
  }
  const pidFile = join(DEMO_DIR, 'registry', 'pid');
  if (existsSync(pidFile)) say(`\nThe registry keeps running for that pull line; stop it with: kill ${(await readFile(pidFile, 'utf8')).trim()}`);
}

main().catch((err) => {
  process.stderr.write(`demo failed: ${(err as Error).message}\n`);
  process.exit(1);
});
