import { randomUUID } from 'node:crypto';
import { Duplex } from 'node:stream';
import { TLSSocket } from 'node:tls';
import { Server, ServerCredentials, type ServerDuplexStream, type ServerUnaryCall, type sendUnaryData, type UntypedServiceImplementation } from '@grpc/grpc-js';
import type Docker from 'dockerode';
import type { PullCredentials } from './pull-credentials.js';
import { serveDiffCopy } from './session-filesync.js';
import { credentialsRequest, credentialsResponse, packet, type Packet } from './session-protocol.js';

/**
 * A BuildKit client session: the engine dials back through it to ask for
 * registry credentials (host by host) and for the build context and the
 * Dockerfile (file sync), as it does with the docker CLI. dockerode's own
 * session answers every host with one login and carries no files, which is
 * why dockhook has this one.
 */

export interface BuildSession {
  id: string;
  close(): void;
}

export interface BuildSessionOptions {
  credentials: PullCredentials;
  /** Folders the engine may ask for by name: `context` and `dockerfile`. */
  dirs: Record<string, string>;
  /** Called when serving a file sync failed (the build then fails with the engine's own message). */
  onError?: (err: Error) => void;
}

const AUTH = '/moby.filesync.v1.Auth';
const FILESYNC = '/moby.filesync.v1.FileSync';
const HEALTH = '/grpc.health.v1.Health';

/**
 * The engine checks the session's health every second and drops a session
 * whose check fails, "unimplemented" included (BuildKit's monitorHealth).
 * Without this a build that reached for its session more than a second in
 * (a loaded machine, a slow context) failed with "no active session for …"
 * or "context canceled". The answer is HealthCheckResponse{status: SERVING}:
 * field 1, varint 1.
 */
const SERVING = Buffer.from([0x08, 0x01]);
const healthCodec = { serialize: (value: Buffer) => value, deserialize: (bytes: Buffer) => bytes };

function authService(credentials: PullCredentials): UntypedServiceImplementation {
  return {
    Credentials(call: ServerUnaryCall<{ Host: string }, unknown>, callback: sendUnaryData<unknown>) {
      const found = credentials.forHost(call.request.Host);
      // No credential: an empty answer, so the engine pulls anonymously, as the docker CLI does.
      if (!found) return callback(null, {});
      if ('identitytoken' in found) return callback(null, { Secret: found.identitytoken });
      callback(null, { Username: found.username, Secret: found.password });
    },
  };
}

type Codec<T> = { serialize: (value: T) => Buffer; deserialize: (bytes: Buffer) => T };

/** A gRPC method whose request and response are one message type each. */
function method<Req, Res>(path: string, streaming: boolean, request: Codec<Req>, response: Codec<Res>) {
  return {
    path,
    requestStream: streaming,
    responseStream: streaming,
    requestSerialize: request.serialize,
    requestDeserialize: request.deserialize,
    responseSerialize: response.serialize,
    responseDeserialize: response.deserialize,
  };
}

const definition = { Credentials: method(`${AUTH}/Credentials`, false, credentialsRequest, credentialsResponse) };
const healthDefinition = { Check: method(`${HEALTH}/Check`, false, healthCodec, healthCodec) };
const fileSyncDefinition = { DiffCopy: method(`${FILESYNC}/DiffCopy`, true, packet, packet) };

/** The methods the session offers; the engine only calls file sync on a session that lists it. */
const METHODS = [`${AUTH}/Credentials`, `${FILESYNC}/DiffCopy`, `${HEALTH}/Check`];

/**
 * The stream gRPC serves the session on. Over TLS (DOCKER_HOST=tcp://…:2376)
 * the hijacked socket is a TLSSocket that negotiated no ALPN protocol, which
 * Node's http2 server takes for an unknown protocol and never starts a session
 * on (the engine then reports `connection closed`): gRPC gets a plain Duplex
 * over it instead. Data, end, close and errors go both ways; an error is left
 * to the session's own end (the engine reports the failed build).
 * A unix or plain TCP socket is handed over as it is.
 */
function forGrpc(socket: Duplex): Duplex {
  if (!(socket instanceof TLSSocket)) return socket;
  const plain = Duplex.from({ readable: socket, writable: socket });
  plain.on('error', () => {});
  socket.on('error', () => {});
  return plain;
}

export function openBuildSession(docker: Docker, o: BuildSessionOptions): Promise<BuildSession> {
  const id = randomUUID();
  const server = new Server();
  server.addService(definition, authService(o.credentials));
  server.addService(healthDefinition, {
    Check(_call: ServerUnaryCall<Buffer, Buffer>, callback: sendUnaryData<Buffer>) {
      callback(null, SERVING);
    },
  });
  server.addService(fileSyncDefinition, {
    DiffCopy(call: ServerDuplexStream<Packet, Packet>) {
      serveDiffCopy(call, o.dirs).catch((err: Error) => o.onError?.(err));
    },
  });
  // Anything else the engine may call (the token authority) gets "unimplemented", and it falls back to Credentials.

  return new Promise((resolve, reject) => {
    docker.modem.dial(
      {
        method: 'POST',
        path: '/session',
        hijack: true,
        headers: {
          Upgrade: 'h2c',
          'X-Docker-Expose-Session-Uuid': id,
          'X-Docker-Expose-Session-Name': 'dockhook',
          'X-Docker-Expose-Session-Sharedkey': id,
          'X-Docker-Expose-Session-Grpc-Method': METHODS,
        },
        statusCodes: { 101: true, 200: true, 404: 'the engine has no BuildKit session endpoint', 500: 'server error' },
      } as never,
      (err: Error | null, result: unknown) => {
        const socket = result as Duplex;
        if (err) return reject(err);
        const injector = server.createConnectionInjector(ServerCredentials.createInsecure());
        injector.injectConnection(forGrpc(socket));
        resolve({
          id,
          close() {
            server.forceShutdown();
            // Both directions: a session the engine still sees as healthy stays registered until its connection is gone.
            socket.destroy();
          },
        });
      },
    );
  });
}
