#!/usr/bin/env bash
# Runs a command inside a network namespace whose only link is `lo`, with a private /tmp and
# DNS pointed at loopback: what OpenClaw runs in here (it looks up internet hosts when it starts
# and writes to fixed paths under /tmp) can neither reach the network nor touch the host's /tmp.
# Processes started inside share that loopback, so they can talk to each other. Needs root.
#
# A checkout under /tmp (and the `shared` folder beside it) stays where it is inside: it is
# carried over the private /tmp at the same path, so the command finds its sources.
#
#   scripts/loopback-ns.sh CMD [ARGS…]
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: scripts/loopback-ns.sh CMD [ARGS…]" >&2
  exit 64
fi
here=$(pwd -P)
shared=$(cd "$here/../shared" 2>/dev/null && pwd -P || true)
exec unshare --net --mount --propagation private -- sh -euc '
  here=$1 shared=$2
  shift 2
  under_tmp() { case "$1/" in /tmp/?*) return 0 ;; *) return 1 ;; esac; }
  # What lives under /tmp and must stay visible: moved aside before the private /tmp covers
  # it, then moved back to the same path.
  stash=$(mktemp -d /run/loopback-ns.XXXXXX)
  if under_tmp "$here"; then
    mkdir "$stash/here" && mount --bind "$here" "$stash/here"
  fi
  if [ -n "$shared" ] && under_tmp "$shared"; then
    mkdir "$stash/shared" && mount --bind "$shared" "$stash/shared"
  fi
  mount -t tmpfs -o mode=1777 tmpfs /tmp
  if [ -d "$stash/here" ]; then
    mkdir -p "$here" && mount --move "$stash/here" "$here"
  fi
  if [ -d "$stash/shared" ]; then
    mkdir -p "$shared" && mount --move "$stash/shared" "$shared"
  fi
  # Empty by now (never rm -r: a mount left behind would be the checkout itself).
  for d in "$stash/here" "$stash/shared"; do
    if [ -d "$d" ]; then rmdir "$d"; fi
  done
  rmdir "$stash"
  cd "$here"
  echo "nameserver 127.0.0.1" > /tmp/resolv.conf
  mount --bind /tmp/resolv.conf /etc/resolv.conf
  ip link set lo up
  exec "$@"
' loopback-ns "$here" "$shared" "$@"
