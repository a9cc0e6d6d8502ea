#!/bin/sh
# Starts dockhook's command as the non-root user `dockhook`, with the group
# that owns the mounted Docker socket added, so that nobody has to look up
# that group's id (it differs from host to host: 999, 998, 112, 0...).
#
# The container starts as root only to read the socket's group; the command
# never runs as root: setpriv switches user and groups and drops every
# capability before exec. Whoever can use the socket is root on the host in
# all but name anyway: run only images you trust with it mounted.
#
# Started as another user already (docker run --user, Kubernetes
# runAsNonRoot), it runs the command as is: give that user the socket's
# group yourself (--group-add "$(stat -c %g /var/run/docker.sock)").
set -eu

if [ "$(id -u)" != 0 ]; then
  exec "$@"
fi

# setpriv keeps root's HOME; the user's own (/app) is where the Docker CLI's ~/.docker/config.json would be.
export HOME=/app

socket=/var/run/docker.sock
case "${DOCKER_HOST:-}" in
  unix://*) socket=${DOCKER_HOST#unix://} ;;
esac

if [ -S "$socket" ]; then
  exec setpriv --reuid=dockhook --regid=dockhook --groups="$(stat -c %g "$socket")" --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
fi
# No socket (DOCKER_HOST is tcp://, or none mounted): no extra group.
exec setpriv --reuid=dockhook --regid=dockhook --clear-groups --inh-caps=-all --bounding-set=-all --no-new-privs -- "$@"
