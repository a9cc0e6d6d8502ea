#!/usr/bin/env bash
# Makes sure a Docker engine answers, plus the tools dockhook's tests and demo use:
# docker-registry (the registry:2 server as a binary), busybox-static (the base
# image is made from it; nothing can be pulled from Docker Hub), chromium and
# docker-compose (browser and compose tests), podman (its test starts its
# own `podman system service`; none runs otherwise), postgresql (test/support/
# postgres.ts runs its own throwaway server from the binaries; the cluster
# Debian's postinst may start on 5432 is never used), and iproute2 (`ip`, for
# the second engine's bridge in test/support/second-engine.ts). As root on
# Debian/Ubuntu it installs what is missing and starts dockerd; elsewhere it
# says what to install.
set -euo pipefail

need_pkgs=()
command -v dockerd >/dev/null 2>&1 || docker version >/dev/null 2>&1 || need_pkgs+=(docker.io)
command -v docker-registry >/dev/null 2>&1 || need_pkgs+=(docker-registry)
[ -x /bin/busybox ] || command -v busybox >/dev/null 2>&1 || need_pkgs+=(busybox-static)
command -v chromium >/dev/null 2>&1 || need_pkgs+=(chromium)
command -v docker-compose >/dev/null 2>&1 || need_pkgs+=(docker-compose)
command -v podman >/dev/null 2>&1 || need_pkgs+=(podman)
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need_pkgs+=(postgresql)
[ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || command -v ip >/dev/null 2>&1 || need_pkgs+=(iproute2) # /usr/sbin: not on a user's PATH everywhere

if [ ${#need_pkgs[@]} -gt 0 ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "ensure-docker: installing ${need_pkgs[*]}" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}" >/dev/null
  else
    echo "ensure-docker: missing: ${need_pkgs[*]}" >&2
    echo "  install them (Debian/Ubuntu: sudo apt-get install ${need_pkgs[*]}) or start a Docker engine, then run this again" >&2
    exit 1
  fi
fi

if docker version >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" != "0" ]; then
  echo "ensure-docker: no Docker engine answers at ${DOCKER_HOST:-/var/run/docker.sock}." >&2
  echo "  start one (sudo systemctl start docker, or sudo dockerd &) and make sure you may use its socket (the docker group)" >&2
  exit 1
fi
echo "ensure-docker: starting dockerd" >&2
mkdir -p /var/log
nohup dockerd >/var/log/dockhook-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if docker version >/dev/null 2>&1; then
    echo "ensure-docker: engine up ($(docker version --format '{{.Server.Version}}'))" >&2
    exit 0
  fi
  sleep 1
done
echo "ensure-docker: dockerd did not answer within 60 s; see /var/log/dockhook-dockerd.log" >&2
tail -20 /var/log/dockhook-dockerd.log >&2 || true
exit 1
