import protobuf from 'protobufjs';

// The part of BuildKit's StatusResponse (moby/buildkit control.proto) a build log needs; protobuf skips the rest.
const SCHEMA = `
syntax = "proto3";
message StatusResponse { repeated Vertex vertexes = 1; repeated VertexLog logs = 3; repeated VertexWarning warnings = 4; }
message Timestamp { int64 seconds = 1; int32 nanos = 2; }
message Vertex { string digest = 1; string name = 3; bool cached = 4; Timestamp started = 5; Timestamp completed = 6; string error = 7; }
message VertexLog { string vertex = 1; int64 stream = 3; bytes msg = 4; }
message VertexWarning { string vertex = 1; bytes short = 3; }
`;
const StatusResponse = protobuf.parse(SCHEMA).root.lookupType('StatusResponse');

interface Status {
  vertexes?: { digest?: string; name?: string; cached?: boolean; started?: unknown; completed?: unknown; error?: string }[];
  logs?: { vertex?: string; msg?: Uint8Array }[];
  warnings?: { short?: Uint8Array }[];
}

/** A log line, or a step (vertex) that finished without an error. */
export type BuildKitEvent = { line: string } | { step: { name: string; cached: boolean } };

/**
 * Turns BuildKit's trace messages (base64 protobuf in `aux`) into log lines.
 * dockerode's own decoder prints a step's output as base64 text, which no one
 * can read at 2 a.m.; this decodes the bytes, names each step once, and joins
 * output split across messages into whole lines.
 */
export class BuildKitLog {
  private readonly named = new Set<string>();
  private readonly finished = new Set<string>();
  private readonly partial = new Map<string, string>();

  decode(aux: string): string[] {
    return this.decodeEvents(aux).flatMap((e) => ('line' in e ? [e.line] : []));
  }

  /**
   * The same lines, in the same order, with each step's end in between: a
   * vertex that finished, and whether it came from the cache.
   */
  decodeEvents(aux: string): BuildKitEvent[] {
    const status = StatusResponse.toObject(StatusResponse.decode(Buffer.from(aux, 'base64')), { defaults: false }) as Status;
    const events: BuildKitEvent[] = [];
    const line = (text: string) => events.push({ line: text });
    for (const v of status.vertexes ?? []) {
      const id = v.digest ?? '';
      if (!v.name) continue;
      if (v.started && !this.named.has(id)) {
        this.named.add(id);
        if (!v.cached) line(v.name);
      }
      if (v.completed && !this.finished.has(id)) {
        this.finished.add(id);
        if (v.cached) line(`CACHED ${v.name}`);
        if (v.error) line(`ERROR ${v.name}: ${v.error}`);
        else events.push({ step: { name: v.name, cached: Boolean(v.cached) } });
      }
    }
    for (const log of status.logs ?? []) {
      const vertex = log.vertex ?? '';
      const text = (this.partial.get(vertex) ?? '') + Buffer.from(log.msg ?? []).toString('utf8');
      const parts = text.split(/\r?\n/);
      this.partial.set(vertex, parts.pop() ?? '');
      parts.forEach(line);
    }
    for (const w of status.warnings ?? []) line(`WARNING: ${Buffer.from(w.short ?? []).toString('utf8')}`);
    return events;
  }

  /** Output that never got its final newline. */
  flush(): string[] {
    const rest = [...this.partial.values()].filter((t) => t.length > 0);
    this.partial.clear();
    return rest;
  }
}
