#!/usr/bin/env bash
# The interop tests (tests/interop.rs): ClawPair against the real OpenClaw from npm. Installs
# OpenClaw once (scripts/openclaw-peer.sh), builds the tests, then runs them inside a network
# namespace that has only `lo` and a private /tmp: OpenClaw looks up internet hosts when it
# starts and writes to fixed paths under /tmp, and neither may leave this run. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

peer=$(scripts/openclaw-peer.sh | tail -n 1)
cargo test --features mock-runtime --test interop --no-run
# Inside: loopback up, DNS pointed at loopback, a fresh /tmp; nothing reaches the network.
exec unshare --net --mount --propagation private -- env CLAWPAIR_OPENCLAW_HOME="$peer" sh -euc '
  mount -t tmpfs -o mode=1777 tmpfs /tmp
  echo "nameserver 127.0.0.1" > /tmp/resolv.conf
  mount --bind /tmp/resolv.conf /etc/resolv.conf
  ip link set lo up
  exec cargo test --offline --features mock-runtime --test interop -- --ignored --test-threads=2 "$@"
' interop "$@"
