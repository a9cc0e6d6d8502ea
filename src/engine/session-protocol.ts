import protobuf from 'protobufjs';

/**
 * The messages a BuildKit client session speaks (moby/buildkit session/auth
 * auth.proto, session/filesync, and tonistiigi/fsutil types), only the parts
 * the engine calls. Field numbers are the wire contract.
 */
const SCHEMA = `
syntax = "proto3";
message CredentialsRequest { string Host = 1; }
message CredentialsResponse { string Username = 1; string Secret = 2; }
message Stat {
  string path = 1; uint32 mode = 2; uint32 uid = 3; uint32 gid = 4;
  int64 size = 5; int64 modTime = 6; string linkname = 7;
  int64 devmajor = 8; int64 devminor = 9; map<string, bytes> xattrs = 10;
}
message Packet { int32 type = 1; Stat stat = 2; uint32 ID = 3; bytes data = 4; }
`;
const root = protobuf.parse(SCHEMA).root;

export const PACKET_STAT = 0;
export const PACKET_REQ = 1;
export const PACKET_DATA = 2;
export const PACKET_FIN = 3;
export const PACKET_ERR = 4;

export interface Stat {
  path: string;
  /** Go's os.FileMode: permission bits plus type bits (ModeDir, ModeSymlink). */
  mode: number;
  uid: number;
  gid: number;
  size: number;
  /** Nanoseconds since the epoch. */
  modTime: number;
  linkname?: string;
}

export interface Packet {
  type: number;
  stat?: Stat;
  ID?: number;
  data?: Uint8Array;
}

/** Go's os.ModeDir and os.ModeSymlink. */
export const GO_MODE_DIR = 0x80000000;
export const GO_MODE_SYMLINK = 0x08000000;

function codec<T extends object>(name: string) {
  const type = root.lookupType(name);
  return {
    serialize: (value: T): Buffer => Buffer.from(type.encode(type.fromObject(value)).finish()),
    deserialize: (bytes: Buffer): T => type.toObject(type.decode(bytes), { longs: Number, defaults: true }) as T,
  };
}

export const credentialsRequest = codec<{ Host: string }>('CredentialsRequest');
export const credentialsResponse = codec<{ Username?: string; Secret?: string }>('CredentialsResponse');
export const packet = codec<Packet>('Packet');
