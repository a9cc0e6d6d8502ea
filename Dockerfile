# dockhook's own image. Three stages: the build (dev dependencies, tsc →
# dist/), the production node_modules (compiled here: better-sqlite3 is a
# native module), and a runtime with neither compilers nor dev dependencies.
#
#   docker build -t dockhook .            (or: docker-compose build)
#
# dockhook runs as the non-root user `dockhook` (uid 10001). It builds images
# through the host's engine, so it must be able to open /var/run/docker.sock,
# which belongs to root and a group whose id differs from host to host. The
# entrypoint (deploy/docker-entrypoint.sh) starts as root only to read that
# id, then switches to dockhook with that one group added and every
# capability dropped, so no DOCKER_GID setting is needed. Run with --user
# instead, the entrypoint leaves the user alone: add the socket's group with
# --group-add "$(stat -c %g /var/run/docker.sock)".
# Whoever can use the socket is root on the host in all but name: run only
# images you trust with it mounted.

# 24, the active Node LTS, is what this image is built and tested with (the compose
# rehearsal, test/rehearsal/); dockhook itself runs on >= 20, and its tests run on 20 and 24.
ARG NODE_VERSION=24

FROM node:${NODE_VERSION}-slim AS base
WORKDIR /app

# Compilers for native modules (better-sqlite3, when no prebuilt binary fits).
# nodedir points node-gyp at the headers that ship in the node image, so a
# from-source build needs no download from nodejs.org.
FROM base AS toolchain
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
ENV npm_config_nodedir=/usr/local

FROM toolchain AS build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build

FROM toolchain AS prod-deps
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund \
 && npm cache clean --force

FROM base AS runtime
ENV NODE_ENV=production \
    DATA_DIR=/data \
    HOST=0.0.0.0 \
    PORT=3000
# A fixed uid/gid, so the volume's owner is the same across rebuilds.
RUN groupadd --system --gid 10001 dockhook \
 && useradd --system --uid 10001 --gid dockhook --home-dir /app --no-create-home --shell /usr/sbin/nologin dockhook \
 && mkdir -p /data /auth \
 && chown dockhook:dockhook /data /auth
COPY --from=prod-deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY package.json ./
COPY deploy/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
# A new named volume takes its directory's owner from the image: dockhook can
# write /data, and compose's one-shot registry-auth (this image too) /auth.
VOLUME /data
EXPOSE 3000
# slim has no curl: node's fetch asks /healthz (the process serves; /readyz would also fail on a registry outage).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# A 4 MiB young generation (V8's default is 16): streaming a build context allocates
# buffers fast, and a smaller nursery frees them sooner (peak RSS 148 → 128 MiB on a
# 300 MiB context in bench/, same build time).
# A 200 MiB artifact download (GET /api/builds/<id>/artifacts/<name>) as a process's
# first registry request peaked at 146.0 MiB with the flag above alone, 109.1 MiB with
# the next three, at the same speed (bench/results/2026-12-02-multi-platform-artifact-rss*.md):
# - --expose-gc: every chunk streamed is a new buffer that dies at once, and V8 lets
#   about 30 MiB of them pile up before its own GC; with gc exposed the download asks
#   for a young-generation collection every 4 MiB (src/registry/blobs.ts), which keeps
#   that near 8 MiB and costs less CPU than the collections it replaces.
# - --no-wasm-tier-up --no-wasm-dynamic-tiering: the WebAssembly dockhook keeps running
#   is the HTTP parser of Node's fetch (undici's llhttp); compiling it with the optimizing
#   tier after a process's first registry or GitHub request takes about 28 MiB for a
#   moment (VmHWM +41 MiB instead of +12 for a first fetch on Node 20). The baseline
#   tier parses headers fast enough, and a body is not parsed byte by byte.
ENTRYPOINT ["docker-entrypoint.sh"]
CMD ["node", "--max-semi-space-size=4", "--expose-gc", "--no-wasm-tier-up", "--no-wasm-dynamic-tiering", "dist/main.js"]
