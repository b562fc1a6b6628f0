#!/usr/bin/env bash
# Refreshes docs/screenshots/ from the end-to-end run of the real app under Xvfb.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
dbus-run-session -- env NO_AT_BRIDGE=1 CLAWPAIR_SCREENSHOTS="$PWD/docs/screenshots" \
  xvfb-run -a -s "-screen 0 1280x1024x24" cargo test -p clawpair-app --test gui_e2e -- --ignored --test-threads=1
