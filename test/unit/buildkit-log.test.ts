import assert from 'node:assert/strict';
import { it } from 'node:test';
import protobuf from 'protobufjs';
import { BuildKitLog } from '../../src/pipeline/buildkit-log.js';

// Encoded with the schema of moby/buildkit's control.proto, as the engine sends it in `aux`.
const root = protobuf.parse(`
syntax = "proto3";
message StatusResponse { repeated Vertex vertexes = 1; repeated VertexStatus statuses = 2; repeated VertexLog logs = 3; repeated VertexWarning warnings = 4; }
message Timestamp { int64 seconds = 1; int32 nanos = 2; }
message Vertex { string digest = 1; repeated string inputs = 2; string name = 3; bool cached = 4; Timestamp started = 5; Timestamp completed = 6; string error = 7; }
message VertexStatus { string ID = 1; string vertex = 2; string name = 3; int64 current = 4; int64 total = 5; }
message VertexLog { string vertex = 1; Timestamp timestamp = 2; int64 stream = 3; bytes msg = 4; }
message VertexWarning { string vertex = 1; int64 level = 2; bytes short = 3; }
`).root;
const Status = root.lookupType('StatusResponse');
const aux = (message: object) => Buffer.from(Status.encode(Status.fromObject(message)).finish()).toString('base64');
const t = { seconds: 1, nanos: 0 };

it('decodes step names, output bytes (split across messages) and errors into readable lines', () => {
  const log = new BuildKitLog();
  assert.deepEqual(log.decode(aux({ vertexes: [{ digest: 'sha256:a', name: '[2/3] RUN make', started: t }] })), ['[2/3] RUN make']);
  assert.deepEqual(log.decode(aux({ vertexes: [{ digest: 'sha256:a', name: '[2/3] RUN make', started: t }] })), [], 'a step is named once');
  assert.deepEqual(log.decode(aux({ logs: [{ vertex: 'sha256:a', stream: 1, msg: Buffer.from('\u001b[31mred\u001b[0m line one\nline t') }] })), ['\u001b[31mred\u001b[0m line one']);
  assert.deepEqual(log.decode(aux({ logs: [{ vertex: 'sha256:a', stream: 1, msg: Buffer.from('wo\n') }] })), ['line two']);
  assert.deepEqual(log.decode(aux({ vertexes: [{ digest: 'sha256:b', name: '[1/3] FROM busybox', started: t, completed: t, cached: true }] })), ['CACHED [1/3] FROM busybox']);
  assert.deepEqual(
    log.decode(aux({ vertexes: [{ digest: 'sha256:a', name: '[2/3] RUN make', started: t, completed: t, error: 'exit code: 2' }], warnings: [{ short: Buffer.from('deprecated') }] })),
    ['ERROR [2/3] RUN make: exit code: 2', 'WARNING: deprecated'],
  );
  log.decode(aux({ logs: [{ vertex: 'sha256:a', msg: Buffer.from('no newline at the end') }] }));
  assert.deepEqual(log.flush(), ['no newline at the end']);
});

it('decodeEvents: the same lines, with each step that finished (and whether from the cache) in between; a failed step is no finished step', () => {
  const log = new BuildKitLog();
  const events = log.decodeEvents(
    aux({
      vertexes: [
        { digest: 'sha256:a', name: '[2/3] RUN sleep 2', started: t, completed: t, cached: true },
        { digest: 'sha256:b', name: '[3/3] COPY a /a', started: t },
      ],
    }),
  );
  assert.deepEqual(events, [{ line: 'CACHED [2/3] RUN sleep 2' }, { step: { name: '[2/3] RUN sleep 2', cached: true } }, { line: '[3/3] COPY a /a' }]);
  assert.deepEqual(log.decodeEvents(aux({ vertexes: [{ digest: 'sha256:b', name: '[3/3] COPY a /a', started: t, completed: t }] })), [{ step: { name: '[3/3] COPY a /a', cached: false } }]);
  assert.deepEqual(log.decodeEvents(aux({ vertexes: [{ digest: 'sha256:c', name: '[1/1] RUN false', started: t, completed: t, error: 'exit code: 1' }] })), [
    { line: '[1/1] RUN false' },
    { line: 'ERROR [1/1] RUN false: exit code: 1' },
  ]);
});
