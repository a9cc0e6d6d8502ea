#!/usr/bin/env bash
# Writes the registry's password file, auth/htpasswd, with a bcrypt entry for
# USER (the registry accepts bcrypt only). Use the same user and password as
# REGISTRY_USERNAME and REGISTRY_PASSWORD in .env.
#
#   scripts/make-htpasswd.sh dockhook                       # asks twice
#   printf '%s\n' "$REGISTRY_PASSWORD" | scripts/make-htpasswd.sh dockhook
#
# The password never goes on a command line (where `ps` shows it): it is read
# from the terminal or stdin and piped to the hashing tool. The first tool
# found is used:
#   1. htpasswd -B          Debian/Ubuntu: apt-get install apache2-utils
#   2. node + bcryptjs      this repository after `npm ci` (a dev dependency)
#   3. docker run httpd:2   needs Docker Hub
# HTPASSWD_TOOL=htpasswd|node|docker picks one. Other users already in the
# file are kept; USER's line is replaced. HTPASSWD_FILE=path writes elsewhere.
set -euo pipefail

repo_root="$(cd "$(dirname "$0")/.." && pwd)"
out="${HTPASSWD_FILE:-$repo_root/auth/htpasswd}"
user="${1:-}"
if [ -z "$user" ] || [ "$#" -ne 1 ]; then
  echo "usage: $0 USER   (the password is asked for, or read from stdin)" >&2
  exit 2
fi
case "$user" in
  *:* | *[[:space:]]*) echo "make-htpasswd: the user name may not contain ':' or spaces" >&2; exit 2 ;;
esac

if [ -t 0 ]; then
  read -rsp "password for $user: " password; echo >&2
  read -rsp "again: " again; echo >&2
  [ "$password" = "$again" ] || { echo "make-htpasswd: the passwords differ" >&2; exit 1; }
else
  IFS= read -r password || true
fi
[ -n "$password" ] || { echo "make-htpasswd: empty password" >&2; exit 1; }

tool="${HTPASSWD_TOOL:-}"
if [ -z "$tool" ]; then
  if command -v htpasswd >/dev/null 2>&1; then tool=htpasswd
  elif command -v node >/dev/null 2>&1 && (cd "$repo_root" && node -e "require.resolve('bcryptjs')" >/dev/null 2>&1); then tool=node
  elif command -v docker >/dev/null 2>&1; then tool=docker
  else
    echo "make-htpasswd: no bcrypt tool: install apache2-utils, or run npm ci here, or install Docker" >&2
    exit 1
  fi
fi

# Cost 10: htpasswd's default (5) is quick to brute-force.
hash_entry() {
  if [ "$tool" = htpasswd ]; then
    printf '%s\n' "$password" | htpasswd -niB -C 10 "$user"
  elif [ "$tool" = node ]; then
    printf '%s' "$password" | (cd "$repo_root" && node -e '
      const bcrypt = require("bcryptjs");
      let pw = "";
      process.stdin.on("data", (d) => (pw += d)).on("end", () => console.log(`${process.argv[1]}:${bcrypt.hashSync(pw, 10)}`));
    ' "$user")
  elif [ "$tool" = docker ]; then
    printf '%s\n' "$password" | docker run --rm -i --entrypoint htpasswd httpd:2 -niB -C 10 "$user"
  else
    echo "make-htpasswd: HTPASSWD_TOOL must be htpasswd, node or docker" >&2
    return 1
  fi
}

entry="$(hash_entry | head -n 1 | tr -d '\r')"
case "$entry" in
  "$user":\$2*) ;;
  *) echo "make-htpasswd: the tool did not print a bcrypt entry" >&2; exit 1 ;;
esac

mkdir -p "$(dirname "$out")"
tmp="$(mktemp "$out.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
if [ -f "$out" ]; then awk -F: -v u="$user" '$1 != u' "$out" >"$tmp"; fi
printf '%s\n' "$entry" >>"$tmp"
# Readable by the registry container (it runs as root and mounts the file read-only).
chmod 644 "$tmp"
mv "$tmp" "$out"
trap - EXIT
echo "make-htpasswd: wrote $user to $out" >&2
