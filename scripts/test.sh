#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, then formatting, lints, the
# core build without the GUI, and every test (unit, integration, CLI, gateway, GUI end to end).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
export PATH="$HOME/.cargo/bin:$PATH"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy (all targets, -D warnings)"
cargo clippy --all-targets -- -D warnings
echo "==> core and CLI without the GUI: build and lints"
cargo clippy --no-default-features --all-targets -- -D warnings
echo "==> tests (unit, integration, CLI, gateway; window commands on the mock runtime)"
cargo test --all-targets --features mock-runtime
echo "==> desktop app end to end (Xvfb, a private D-Bus session, tauri-driver + WebKitWebDriver)"
dbus-run-session -- env NO_AT_BRIDGE=1 xvfb-run -a -s "-screen 0 1280x1024x24" \
  cargo test --features mock-runtime --test gui_e2e -- --ignored --test-threads=1
echo "==> the Debian package: build, inspect, run the packaged binary"
scripts/package-deb.sh
cargo test --features mock-runtime --test package_deb -- --ignored
echo "==> all tests passed"
