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
echo "==> tests"
cargo test --all-targets
echo "==> all tests passed"
