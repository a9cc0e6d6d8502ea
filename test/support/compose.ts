import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** `docker-compose` (v1 or the v2 standalone) or the `docker compose` plugin, whichever answers. */
export async function findCompose(): Promise<string[]> {
  for (const cmd of [['docker-compose'], ['docker', 'compose']]) {
    try {
      await run(cmd[0], [...cmd.slice(1), 'version']);
      return cmd;
    } catch {
      // try the next one
    }
  }
  throw new Error('docker-compose is not installed: run `bash scripts/ensure-docker.sh` (it installs it), then run the tests again');
}
