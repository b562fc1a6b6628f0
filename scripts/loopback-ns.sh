#!/usr/bin/env bash
# Runs a command inside a network namespace whose only link is `lo`, with a private /tmp and
# DNS pointed at loopback: what OpenClaw runs in here (it looks up internet hosts when it starts
# and writes to fixed paths under /tmp) can neither reach the network nor touch the host's /tmp.
# Processes started inside share that loopback, so they can talk to each other. Needs root.
#
#   scripts/loopback-ns.sh CMD [ARGS…]
set -euo pipefail
if [ $# -eq 0 ]; then
  echo "usage: scripts/loopback-ns.sh CMD [ARGS…]" >&2
  exit 64
fi
exec unshare --net --mount --propagation private -- sh -euc '
  mount -t tmpfs -o mode=1777 tmpfs /tmp
  echo "nameserver 127.0.0.1" > /tmp/resolv.conf
  mount --bind /tmp/resolv.conf /etc/resolv.conf
  ip link set lo up
  exec "$@"
' loopback-ns "$@"
