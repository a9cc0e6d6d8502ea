#!/usr/bin/env bash
# Makes sure a Docker engine answers, plus the tools dockhook's tests and demo use:
# docker-registry (the registry:2 server as a binary), busybox-static (the base
# image is made from it; nothing can be pulled from Docker Hub), chromium and
# docker-compose (browser and compose tests), podman (its test starts its
# own `podman system service`; none runs otherwise), postgresql (test/support/
# postgres.ts runs its own throwaway server from the binaries; the cluster
# Debian's postinst may start on 5432 is never used), and iproute2 (`ip`, for
# the second engine's bridge in test/support/second-engine.ts), and
# qemu-user-static with binfmt-support (update-binfmts): RUN steps of a
# foreign platform (linux/arm64, linux/arm/v7) run under QEMU through the
# kernel's binfmt_misc, which this script mounts and where it enables the
# qemu-aarch64 and qemu-arm handlers. As root on Debian/Ubuntu it installs what
# is missing and starts dockerd; elsewhere it says what to install.
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
[ -x /usr/bin/qemu-aarch64-static ] && [ -x /usr/bin/qemu-arm-static ] || need_pkgs+=(qemu-user-static)
# qemu-user-static only recommends it, and --no-install-recommends skips that.
[ -x /usr/sbin/update-binfmts ] || command -v update-binfmts >/dev/null 2>&1 || need_pkgs+=(binfmt-support)

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

# Emulation: binfmt_misc mounted, and an enabled kernel handler for each foreign
# architecture, whose interpreter exists and which has the F flag (the kernel
# opens the interpreter at registration), so it works inside containers too,
# whenever dockerd starts. Debian's qemu-user-static registers them that way.
binfmt=/proc/sys/fs/binfmt_misc
binfmt_fix="as root: mount -t binfmt_misc binfmt_misc $binfmt && update-binfmts --enable qemu-aarch64 && update-binfmts --enable qemu-arm"
if [ ! -e "$binfmt/status" ]; then
  if [ "$(id -u)" != "0" ]; then
    echo "ensure-docker: binfmt_misc is not mounted, so foreign-platform builds cannot run; $binfmt_fix" >&2
    exit 1
  fi
  mount -t binfmt_misc binfmt_misc "$binfmt" 2>/dev/null || {
    echo "ensure-docker: cannot mount binfmt_misc at $binfmt (no permission here?); foreign-platform builds need it: $binfmt_fix" >&2
    exit 1
  }
fi
[ "$(cat "$binfmt/status")" = "enabled" ] || { [ "$(id -u)" = "0" ] && echo 1 >"$binfmt/status"; } || true
for handler in qemu-aarch64 qemu-arm; do
  entry="$binfmt/$handler" interpreter="" usable=""
  if [ -e "$entry" ]; then
    interpreter=$(sed -n 's/^interpreter //p' "$entry")
    # F: without it the kernel looks the interpreter up inside each container, where it is not.
    [ -e "$interpreter" ] && grep -q '^flags: .*F' "$entry" && usable=1
    if [ -n "$usable" ] && [ "$(head -1 "$entry")" = "enabled" ]; then continue; fi
  fi
  if [ "$(id -u)" != "0" ]; then
    echo "ensure-docker: the binfmt_misc handler $handler is missing, disabled or without the F flag; $binfmt_fix" >&2
    exit 1
  fi
  if [ -n "$usable" ]; then
    echo 1 >"$entry" # registered but disabled
  else
    [ -e "$entry" ] && echo -1 >"$entry" # registered by something else (no F flag, or an interpreter that is not here): Debian's instead
    update-binfmts --enable "$handler" >/dev/null 2>&1 || true
  fi
  if [ "$(head -1 "$entry" 2>/dev/null)" != "enabled" ]; then
    echo "ensure-docker: could not enable the binfmt_misc handler $handler (update-binfmts --enable $handler; see update-binfmts --display $handler)" >&2
    exit 1
  fi
done

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
