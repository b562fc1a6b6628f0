#!/usr/bin/env bash
# ClawPair's gateway beside OpenClaw's, in the same run (docs/BENCHMARKS.md): installs OpenClaw
# once (scripts/openclaw-peer.sh), builds the benchmark (release, no GUI libraries), then runs
# `clawpair-bench --peer openclaw` inside a loopback-only network namespace. Arguments go to
# the benchmark: `--quick` (under two minutes), `--keep`, `--connections N`. Needs root.
#
# Both gateways keep their state on the same disk as the repository (target/bench-tmp), not on
# the namespace's in-memory /tmp, so their durable writes cost what they cost for a user.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

peer=$(scripts/openclaw-peer.sh | tail -n 1)
cargo build --release -p clawpair-bench
work=$PWD/target/bench-tmp
mkdir -p "$work"
exec scripts/loopback-ns.sh env TMPDIR="$work" CLAWPAIR_OPENCLAW_HOME="$peer" \
  target/release/clawpair-bench --peer openclaw "$@"
