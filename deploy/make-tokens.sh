#!/usr/bin/env bash
# Writes the token file the servers read (one random token granting the
# tenants named) unless it exists, and FILE.token, the token alone, for
# clients (the NBD bridge's token=+FILE.token); prints the token:
#
#   deploy/make-tokens.sh vm-1 vm-2                  # deploy/secrets/tokens, for compose
#   deploy/make-tokens.sh --file deploy/kubernetes/tokens vm-1 vm-2   # for kubectl -k
#
# The one step before `docker compose up` or `kubectl apply -k`: neither
# starts a server without it. The file is readable by its owner and the
# container's zpaged user (uid 10001) only through the directory's mode.
set -euo pipefail
file=$(dirname "$0")/secrets/tokens
if [ "${1:-}" = --file ]; then
  file=$2
  shift 2
fi
if [ $# -eq 0 ]; then
  echo "usage: $0 [--file PATH] TENANT..." >&2
  exit 2
fi
if [ -e "$file" ]; then
  echo "$file exists; add a line to it by hand: TOKEN TENANT[,TENANT...]" >&2
  exit 1
fi
mkdir -p "$(dirname "$file")"
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
printf '%s %s\n' "$token" "$(IFS=,; echo "$*")" >"$file"
# The container's user is not the file's owner: the file is readable, the
# directory is not open to other users.
chmod 644 "$file"
chmod 700 "$(dirname "$file")"
(umask 077 && printf '%s\n' "$token" >"$file.token")
echo "wrote $file and $file.token; clients' token: $token"
