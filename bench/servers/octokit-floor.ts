/**
 * The floor for any Node webhook receiver: @octokit/webhooks' own Node
 * middleware on node:http with one handler. It verifies the signature and
 * parses the JSON, and stores nothing.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhooks, createNodeMiddleware } from '@octokit/webhooks';
import { serveRpc } from '../process.js';

const secret = process.env.WEBHOOK_SECRET;
if (!secret) throw new Error('WEBHOOK_SECRET is required');
const webhooks = new Webhooks({ secret });
let received = 0;
webhooks.on('pull_request', () => {
  received++;
});
const server = createServer(createNodeMiddleware(webhooks, { path: '/webhook' }));
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const { port } = server.address() as AddressInfo;

serveRpc(
  {
    received: () => received,
    stop: () => {
      server.closeAllConnections();
      server.close();
      setImmediate(() => process.exit(0));
    },
  },
  { url: `http://127.0.0.1:${port}`, pid: process.pid },
);
