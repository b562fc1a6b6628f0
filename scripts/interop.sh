#!/usr/bin/env bash
# The interop tests: ClawPair against the real OpenClaw from npm (crates/core/tests/core/interop.rs), and the
# desktop app attached to it under Xvfb (tests/companion_e2e.rs). Installs OpenClaw once
# (scripts/openclaw-peer.sh), builds the tests, then runs them inside a network namespace that
# has only `lo` and a private /tmp: OpenClaw looks up internet hosts when it starts and writes
# to fixed paths under /tmp, and neither may leave this run. Needs root.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

peer=$(scripts/openclaw-peer.sh | tail -n 1)
cargo test -p clawpair-core --test core --no-run
cargo test -p clawpair-app --test companion_e2e --no-run
# Inside a loopback-only network namespace with a fresh /tmp (scripts/loopback-ns.sh): nothing
# reaches the network.
exec scripts/loopback-ns.sh env CLAWPAIR_OPENCLAW_HOME="$peer" sh -euc '
  cargo test --offline -p clawpair-core --test core -- --ignored --test-threads=2 interop:: "$@"
  exec dbus-run-session -- env NO_AT_BRIDGE=1 xvfb-run -a -s "-screen 0 1280x1024x24" \
    cargo test --offline -p clawpair-app --test companion_e2e -- --ignored --test-threads=1 "$@"
' interop "$@"
