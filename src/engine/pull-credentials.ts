import { readFileSync } from 'node:fs';
import type { Logger } from '../log.js';

/**
 * Credentials the engine may use to pull base images during a build, host by
 * host: dockhook's own REGISTRY login, then the Docker CLI's config.json
 * (`auths` only; credential helpers are not run).
 */
export type PullCredential = { username: string; password: string } | { identitytoken: string };

export interface PullCredentials {
  /** The credential for a registry host as BuildKit names it (`127.0.0.1:5000`, `registry-1.docker.io`), or undefined. */
  forHost(host: string): PullCredential | undefined;
  /** X-Registry-Config for the classic builder: one auth config per registry. */
  registryConfig(): Record<string, Record<string, string>>;
  /** The hosts credentials are known for, for messages (never the credentials themselves). */
  hosts(): string[];
  /** Every secret value held, for the scrubber. */
  secrets(): string[];
  /** Where credentials came from, for messages. */
  sources: string;
}

// Docker Hub's historical key in config.json and the hosts BuildKit and the engine use for it.
const HUB_KEYS = new Set(['index.docker.io', 'docker.io', 'registry-1.docker.io']);
const HUB = 'docker.io';

/** config.json keys are URLs or bare hosts (`https://ghcr.io`, `ghcr.io/v1/`): reduce them to host[:port]. */
export function registryHostOf(key: string): string {
  const host = key
    .trim()
    .replace(/^[a-z]+:\/\//i, '')
    .replace(/\/.*$/, '')
    .toLowerCase();
  return HUB_KEYS.has(host) ? HUB : host;
}

interface ConfigFileEntry {
  auth?: string;
  username?: string;
  password?: string;
  identitytoken?: string;
}

interface DockerConfigFile {
  auths?: Record<string, ConfigFileEntry>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

function credentialOf(entry: ConfigFileEntry): PullCredential | undefined {
  if (entry.identitytoken) return { identitytoken: entry.identitytoken };
  if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon > 0) return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  return undefined;
}

export interface PullCredentialOptions {
  /** REGISTRY, and dockhook's login to it. */
  registry: string;
  registryAuth?: { username: string; password: string };
  /** $DOCKER_CONFIG/config.json, default ~/.docker/config.json. */
  dockerConfigFile: string;
  log: Logger;
  readFile?: (path: string) => string;
}

/**
 * Reads config.json once, at start. A missing file is normal (no other
 * registries); an unreadable or malformed one is logged and ignored rather
 * than stopping builds that need none of it.
 */
export function loadPullCredentials(o: PullCredentialOptions): PullCredentials {
  const byHost = new Map<string, PullCredential>();
  const read = o.readFile ?? ((path: string) => readFileSync(path, 'utf8'));
  let file: DockerConfigFile | undefined;
  try {
    file = JSON.parse(read(o.dockerConfigFile)) as DockerConfigFile;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'ENOENT') {
      // The message of a JSON error quotes the file's text, which holds credentials: say only where.
      const why = code ?? (err instanceof SyntaxError ? 'not valid JSON' : 'unreadable');
      o.log.warn({ file: o.dockerConfigFile, why }, 'cannot read the Docker config file; builds get pull credentials for REGISTRY only');
    }
  }
  const missing: string[] = [];
  for (const [key, entry] of Object.entries(file?.auths ?? {})) {
    const credential = entry && typeof entry === 'object' ? credentialOf(entry) : undefined;
    if (credential) byHost.set(registryHostOf(key), credential);
    else missing.push(registryHostOf(key));
  }
  const helpers = [...(file?.credsStore ? [`credsStore "${file.credsStore}"`] : []), ...Object.entries(file?.credHelpers ?? {}).map(([host, helper]) => `credHelpers "${helper}" for ${host}`)];
  if (helpers.length) {
    const lacking = [...new Set([...missing, ...Object.keys(file?.credHelpers ?? {}).map(registryHostOf)])].filter((h) => !byHost.has(h));
    o.log.warn(
      { file: o.dockerConfigFile, helpers, registriesWithoutCredentials: lacking },
      'the Docker config file names credential helpers, which dockhook does not run: put "auth" entries in its "auths" for the registries your Dockerfiles pull from',
    );
  }
  // dockhook's own login wins for its own registry.
  if (o.registryAuth) byHost.set(registryHostOf(o.registry), { ...o.registryAuth });

  return {
    forHost: (host) => byHost.get(registryHostOf(host)),
    registryConfig: () =>
      Object.fromEntries(
        [...byHost].map(([host, c]) => {
          // The engine matches keys by host; Docker Hub's is the historical URL.
          const key = host === HUB ? 'https://index.docker.io/v1/' : host;
          const entry: Record<string, string> = 'identitytoken' in c ? { identitytoken: c.identitytoken } : { username: c.username, password: c.password };
          return [key, { ...entry, serveraddress: key }];
        }),
      ),
    hosts: () => [...byHost.keys()].sort(),
    secrets: () => [...byHost.values()].flatMap((c) => ('identitytoken' in c ? [c.identitytoken] : [c.password])),
    sources: `REGISTRY_USERNAME/REGISTRY_PASSWORD for ${o.registry}, and the "auths" of ${o.dockerConfigFile} (DOCKER_CONFIG) for other registries`,
  };
}
