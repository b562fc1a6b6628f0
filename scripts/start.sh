#!/usr/bin/env bash
# Installs what is missing, builds ClawPair, and starts it: the tray app when there is a
# display, else the headless gateway. Extra arguments go to clawpair (e.g. --hidden).
set -euo pipefail
cd "$(dirname "$0")/.."
CLAWPAIR_WITH_TEST_TOOLS=0 scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

if [ -n "${DISPLAY:-}" ] || [ -n "${WAYLAND_DISPLAY:-}" ]; then
  echo "==> building the tray app (release)"
  cargo build --release -p clawpair-app --features custom-protocol
  exec target/release/clawpair-app "$@"
else
  echo "==> no display: building the headless gateway (release)"
  cargo build --release -p clawpair-core
  exec target/release/clawpair gateway "$@"
fi
