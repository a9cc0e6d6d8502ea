import { rm } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface EngineProxy {
  /** unix socket path that forwards to the real engine while up */
  socketPath: string;
  down(): Promise<void>;
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A unix socket in front of the real Docker engine that a test can take away
 * and bring back: "engine unreachable" for real, without stopping dockerd.
 */
export async function startEngineProxy(target = '/var/run/docker.sock'): Promise<EngineProxy> {
  const socketPath = join(tmpdir(), `dockhook-engine-${process.pid}-${Date.now()}.sock`);
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const up = async () => {
    if (server) return;
    await rm(socketPath, { force: true });
    server = createServer((client) => {
      const engine = connect(target);
      sockets.add(client).add(engine);
      client.on('close', () => sockets.delete(client));
      engine.on('close', () => sockets.delete(engine));
      client.on('error', () => engine.destroy());
      engine.on('error', () => client.destroy());
      client.pipe(engine).pipe(client);
    });
    await new Promise<void>((resolve) => server!.listen(socketPath, resolve));
  };
  const down = async () => {
    const s = server;
    server = undefined;
    if (!s) return;
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => s.close(() => resolve()));
    await rm(socketPath, { force: true });
  };
  await up();
  return { socketPath, up, down, close: down };
}
