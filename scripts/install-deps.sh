#!/usr/bin/env bash
# Installs what building and testing ClawPair needs on Debian/Ubuntu, skipping what is present:
# the Tauri system libraries, the Rust toolchain and its components, and (unless
# CLAWPAIR_WITH_TEST_TOOLS=0) every program the test suite runs, as listed in
# scripts/test-programs.txt, and the nightly toolchain its fuzzing step builds with. Safe to
# run again; does nothing when all is there.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# Libraries the build links against (no program to look for: asked of dpkg).
libraries=(
  build-essential pkg-config curl
  libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev libxdo-dev libssl-dev
)

missing=()
for p in "${libraries[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Programs: a package is installed when a program it provides is not on PATH.
if [ "${CLAWPAIR_WITH_TEST_TOOLS:-1}" != 0 ]; then
  while read -r program package _; do
    case "$program" in "" | "#"*) continue ;; esac
    case "$package" in - | rustup* | cargo:* | npm:*) continue ;; esac
    command -v "$program" >/dev/null 2>&1 && continue
    [[ " ${missing[*]} " == *" $package "* ]] || missing+=("$package")
  done <scripts/test-programs.txt
fi
if [ ${#missing[@]} -gt 0 ]; then
  echo "==> installing system packages: ${missing[*]}"
  sudo_cmd=()
  [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if ! command -v cargo >/dev/null 2>&1; then
  echo "==> installing the Rust toolchain (rustup)"
  curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
fi
if command -v rustup >/dev/null 2>&1; then
  for c in rustfmt clippy; do
    rustup component list --installed 2>/dev/null | grep -q "^$c" || rustup component add "$c"
  done
fi

if [ "${CLAWPAIR_WITH_TEST_TOOLS:-1}" != 0 ] && ! command -v tauri-driver >/dev/null 2>&1; then
  echo "==> installing tauri-driver"
  cargo install tauri-driver --locked --version '^2'
fi
# scripts/fuzz.sh: cargo-fuzz, and the nightly toolchain it builds with (sanitizer flags).
if [ "${CLAWPAIR_WITH_TEST_TOOLS:-1}" != 0 ]; then
  if ! rustup run nightly rustc --version >/dev/null 2>&1; then
    echo "==> installing the nightly Rust toolchain (for cargo fuzz)"
    rustup toolchain install nightly --profile minimal
  fi
  if ! command -v cargo-fuzz >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install cargo-fuzz --locked
  fi
fi
# Programs from npm (`npm:` in scripts/test-programs.txt), each pinned, under target/tools/NAME.
if [ "${CLAWPAIR_WITH_TEST_TOOLS:-1}" != 0 ]; then
  while read -r program package _; do
    case "$package" in npm:*) ;; *) continue ;; esac
    [ -x "target/tools/$program/node_modules/.bin/$program" ] && continue
    echo "==> installing $program from npm (${package#npm:})"
    mkdir -p "target/tools/$program"
    npm install --prefix "target/tools/$program" --no-save --no-audit --no-fund --loglevel=error "${package#npm:}"
  done <scripts/test-programs.txt
fi
