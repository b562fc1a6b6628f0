#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, checks that every program the
# suite runs is there, then formatting, lints, and every test (unit, integration, CLI, gateway,
# OpenClaw's own clients and gateway, the app end to end, the Debian package). Each build is
# made once: the lints share build scripts and macros with the tests, the end-to-end and
# package tests reuse the test build, and the package test checks the one release build.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

total=11
n=0
started=$SECONDS
step_started=$SECONDS
step() {
  n=$((n + 1))
  if [ "$n" -gt 1 ]; then printf '    (%ds)\n' $((SECONDS - step_started)); fi
  step_started=$SECONDS
  printf '[%d/%d] %s (at %dm%02ds)\n' "$n" "$total" "$1" $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60))
}

step "installing what is missing"
scripts/install-deps.sh
step "checking the programs the suite runs"
scripts/check-programs.sh
step "cargo fmt --check"
cargo fmt --all -- --check
step "the window's JavaScript: formatted and linted (biome ci)"
target/tools/biome/node_modules/.bin/biome ci --colors=off
step "cargo clippy, the workspace, all targets and features (-D warnings)"
cargo clippy --workspace --all-targets --all-features -- -D warnings
step "tests: the core (unit, integration, CLI, gateway), the app's window commands on the mock runtime"
cargo test --workspace --all-targets
step "fuzzing: every target in fuzz/ for 60s (cargo +nightly fuzz, the first frame, setup codes, state files)"
scripts/fuzz.sh 60
step "the desktop app end to end (Xvfb and a headless Wayland weston, a private D-Bus session, tauri-driver + WebKitWebDriver)"
dbus-run-session -- env NO_AT_BRIDGE=1 xvfb-run -a -s "-screen 0 1280x1024x24" \
  cargo test -p clawpair-app --test gui_e2e -- --ignored --test-threads=1
step "interop with the real OpenClaw 2026.9.6 from npm, and the app attached to it (a loopback-only network namespace)"
scripts/interop.sh
step "the Debian package: the release build and the .deb"
scripts/package-deb.sh
step "the Debian package: inspect it, run its binary"
cargo test -p clawpair-app --test package_deb -- --ignored
printf '    (%ds)\nall tests passed in %dm%02ds\n' $((SECONDS - step_started)) $(((SECONDS - started) / 60)) $(((SECONDS - started) % 60))
